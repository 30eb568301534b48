"""Check characters of Chinese identifiers: citizen ID numbers, unified social credit codes,
organisation codes and bank card numbers.

The ``*_check_char`` functions compute the final character from the payload; they raise
``ValueError`` when the payload itself is malformed, because that is a programming error in
the caller (they are never fed request input). The ``is_valid_*`` functions never raise:
any string that is not a well-formed identifier is simply ``False``.
"""

from __future__ import annotations

from datetime import date

__all__ = [
    "CREDIT_CODE_CHARSET",
    "credit_code_check_char",
    "id_number_check_char",
    "is_valid_bank_card",
    "is_valid_credit_code",
    "is_valid_id_number",
    "is_valid_organization_code",
    "luhn_check_digit",
    "organization_code_check_char",
]

# GB 11643-1999 §8.2: weight of position i (1-based, from the left) is 2^(18-i) mod 11.
_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
# Check value -> character; 10 is written as the Roman numeral X.
_ID_CHECK_CHARS = "10X98765432"

# Province-level codes of GB/T 2260 (first two digits of an administrative division code),
# plus 71/81/82 (Taiwan, Hong Kong, Macao) which appear in residence permits.
_PROVINCE_CODES = frozenset(
    {
        *("11", "12", "13", "14", "15"),
        *("21", "22", "23"),
        *("31", "32", "33", "34", "35", "36", "37"),
        *("41", "42", "43", "44", "45", "46"),
        *("50", "51", "52", "53", "54"),
        *("61", "62", "63", "64", "65"),
        *("71", "81", "82"),
    }
)

#: GB 32100-2015 character set: digits and capitals without I, O, Z, S, V (easily misread).
CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUES = {c: i for i, c in enumerate(CREDIT_CODE_CHARSET)}
# Weight of position i (0-based) is 3^i mod 31.
_CREDIT_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

# GB 11714-1997 organisation code: 8 body characters, weights below, MOD 11.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUES = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def id_number_check_char(first17: str) -> str:
    """Check character of a citizen ID number (GB 11643-1999, ISO 7064 MOD 11-2).

    Returns one of ``'0'``-``'9'`` or ``'X'``. Raises ValueError unless ``first17`` is
    exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("an ID number payload is exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def is_valid_id_number(s: str) -> bool:
    """True iff ``s`` is an 18-character citizen ID number: a known province code, a real
    calendar birth date (year 1800 or later), and the right check character. Only the
    upper-case ``X`` is accepted, as the standard writes it."""
    if len(s) != 18 or not s.isascii():
        return False
    body, check = s[:17], s[17]
    if not body.isdigit() or s[:2] not in _PROVINCE_CODES:
        return False
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    if born.year < 1800:
        return False
    return id_number_check_char(body) == check


def credit_code_check_char(first17: str) -> str:
    """Check character of a unified social credit code (GB 32100-2015).

    Returns a character of :data:`CREDIT_CODE_CHARSET`. Raises ValueError unless
    ``first17`` is 17 characters of that set.
    """
    if len(first17) != 17 or any(c not in _CREDIT_VALUES for c in first17):
        raise ValueError("a credit code payload is 17 characters of 0-9A-Z without I,O,Z,S,V")
    total = sum(_CREDIT_VALUES[c] * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def is_valid_credit_code(s: str) -> bool:
    """True iff ``s`` is 18 characters of the GB 32100 set, positions 3-8 (the
    administrative division code) are digits, and the check character matches.

    The embedded organisation code (positions 9-17) is not required to pass its own
    GB 11714 check: codes issued to some registrants (e.g. individual businesses) do not.
    Use :func:`is_valid_organization_code` on ``s[8:17]`` for that.
    """
    if len(s) != 18 or any(c not in _CREDIT_VALUES for c in s):
        return False
    if not s[2:8].isdigit():
        return False
    return credit_code_check_char(s[:17]) == s[17]


def organization_code_check_char(first8: str) -> str:
    """Check character of an organisation code (GB 11714-1997): ``'0'``-``'9'`` or ``'X'``.

    Raises ValueError unless ``first8`` is 8 ASCII digits or capital letters.
    """
    if len(first8) != 8 or any(c not in _ORG_VALUES for c in first8):
        raise ValueError("an organisation code payload is 8 ASCII digits or capitals")
    total = sum(_ORG_VALUES[c] * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    if value == 10:
        return "X"
    return "0" if value == 11 else str(value)


def is_valid_organization_code(s: str) -> bool:
    """True iff ``s`` is a 9-character organisation code whose last character checks."""
    if len(s) != 9 or any(c not in _ORG_VALUES for c in s[:8]):
        return False
    return organization_code_check_char(s[:8]) == s[8]


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn (ISO/IEC 7812-1) check.

    Raises ValueError unless ``payload`` is one or more ASCII digits.
    """
    if not payload or not (payload.isascii() and payload.isdigit()):
        raise ValueError("a Luhn payload is one or more ASCII digits")
    total = 0
    # Walking from the right, the digit next to the (future) check digit is doubled first.
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def is_valid_bank_card(s: str) -> bool:
    """True iff ``s`` is a 16- to 19-digit card number (the lengths China UnionPay issues)
    that passes the Luhn check."""
    if not 16 <= len(s) <= 19 or not (s.isascii() and s.isdigit()):
        return False
    return luhn_check_digit(s[:-1]) == s[-1]
