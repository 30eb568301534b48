"""Identifier redaction: which identifiers are recognised (with check digits computed here
by independent implementations), where, what is left alone, the token scheme, and speed."""

from __future__ import annotations

import hmac
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.identifiers import (
    IDENTIFIER_TOKEN_PREFIX,
    IDENTIFIER_TOKEN_RE,
    KINDS,
    IdentifierRedactor,
    classify,
    kind_named,
)

KEY = b"identifier-key-for-tests-0123456"
OTHER_KEY = b"another-identifier-key-0123456789"
R = IdentifierRedactor(KEY)

# -- independent check-digit implementations, from the standards' definitions -------------


def cn_id_check(first17: str) -> str:
    """ISO 7064 MOD 11-2 as GB 11643-1999 defines it: weights 2**(17 - i) mod 11 for the
    17 digits, check value a (X = 10) such that the weighted sum plus a is 1 mod 11."""
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    a = next(a for a in range(11) if (total + a) % 11 == 1)
    return "X" if a == 10 else str(a)


USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc_check(first17: str) -> str:
    """GB 32100-2015: weights 3**i mod 31, check value c with (sum + c) = 0 mod 31."""
    total = sum(USCC_CHARS.index(ch) * pow(3, i, 31) for i, ch in enumerate(first17))
    return USCC_CHARS[next(c for c in range(31) if (total + c) % 31 == 0)]


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number][::-1]
    doubled = [sum(divmod(d * 2, 10)) for d in digits[1::2]]
    return (sum(digits[0::2]) + sum(doubled)) % 10 == 0


def luhn_complete(partial: str) -> str:
    return partial + next(str(d) for d in range(10) if luhn_valid(partial + str(d)))


def token_by_hand(key: bytes, kind: str, canonical: str) -> str:
    message = b"gateway/identifier/v1\x00" + kind.encode() + b"\x00" + canonical.encode()
    return f"⟦id:{kind}:{hmac.new(key, message, 'sha256').hexdigest()[:20]}⟧"


# -- known valid examples ---------------------------------------------------------------

CN_ID = "110101199003077774"  # a Beijing (Dongcheng) ID; the check digit of 1990030777 is 4
STANDARD_CN_IDS = ["11010519491231002X", "440524188001010014"]  # GB 11643-1999's examples
USCC = "91350100M000100Y43"  # GB 32100-2015's example
PHONE = "13800138000"
CARDS = [
    "4111111111111111",  # Visa test number
    "5555555555554444",  # Mastercard test number
    "378282246310005",  # Amex test number (15 digits)
    "6200000000000005",  # UnionPay test number
    "4222222222222",  # 13-digit Visa test number
    "6222021001115111111",  # 19-digit UnionPay-shaped
]


def test_the_examples_are_valid_by_the_independent_checks() -> None:
    for cn_id in [CN_ID, *STANDARD_CN_IDS]:
        assert cn_id_check(cn_id[:17]) == cn_id[17]
    assert uscc_check(USCC[:17]) == USCC[17]
    assert all(luhn_valid(card) for card in CARDS)


# -- strategies of valid identifiers ------------------------------------------------------

REGIONS = ["110101", "110105", "310104", "440305", "510107", "650102", "820000", "130102"]


@st.composite
def cn_ids(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)))
    first17 = draw(st.sampled_from(REGIONS)) + born.strftime("%Y%m%d")
    first17 += draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    return first17 + cn_id_check(first17)


@st.composite
def old_cn_ids(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)))
    return (
        draw(st.sampled_from(REGIONS))
        + born.strftime("%y%m%d")
        + draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    )


@st.composite
def usccs(draw: st.DrawFn) -> str:
    first17 = (
        draw(st.sampled_from("159ANY"))
        + draw(st.sampled_from("1239"))
        + draw(st.sampled_from(REGIONS))
        + "".join(draw(st.lists(st.sampled_from(USCC_CHARS), min_size=9, max_size=9)))
    )
    return first17 + uscc_check(first17)


phones = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "37", "62", "622202", "9558"]))
    length = draw(st.integers(min_value=max(13, len(prefix) + 1), max_value=19))
    body = draw(st.from_regex(f"[0-9]{{{length - len(prefix) - 1}}}", fullmatch=True))
    return luhn_complete(prefix + body)


identifiers = st.one_of(cn_ids(), old_cn_ids(), usccs(), phones, cards())


# -- recognition ------------------------------------------------------------------------


def kind_of(value: str) -> str:
    found = classify(value)
    assert found is not None, value
    return found[0].name


def test_kinds() -> None:
    assert [k.name for k in KINDS] == ["cn_id", "uscc", "phone", "bank_card"]
    for cn_id in [CN_ID, *STANDARD_CN_IDS, "11010519491231002x"]:
        assert kind_of(cn_id) == "cn_id"
    assert kind_of(USCC) == "uscc"
    assert kind_of(USCC.lower()) == "uscc"
    assert kind_of(PHONE) == "phone"
    for card in CARDS:
        assert kind_of(card) == "bank_card"
    with pytest.raises(ValueError, match="unknown identifier kind"):
        kind_named("passport")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name FROM population.people WHERE id_number = '{v}'",
        "SELECT * FROM t WHERE id = {v} AND x = 1",
        "SELECT * FROM t WHERE id LIKE '%{v}%'",
        "SELECT * FROM t WHERE id LIKE '{v}%' OR id LIKE '_{v}'",
        "SELECT * FROM t WHERE note = '身份证号{v}的居民'",
        "SELECT * FROM t WHERE note = '证件：{v}，电话'",
        "SELECT * FROM t WHERE id IN ('{v}','{v}')",
        'SELECT * FROM t WHERE id = "{v}" -- {v}\n',
        "SELECT * FROM t WHERE id=({v})",
        "{v}",
        "x = -{v};",
        "/* {v} */",
        "WHERE id = '{v}'\tAND",
    ],
)
@pytest.mark.parametrize("value", [CN_ID, *STANDARD_CN_IDS, USCC, PHONE, *CARDS])
def test_identifiers_are_redacted_wherever_they_stand(sql: str, value: str) -> None:
    text = sql.format(v=value)
    out = R.redact(text)
    assert value not in out
    token = R.token(kind_of(value), value)
    assert out == text.replace(value, token)


@pytest.mark.parametrize(
    ("written", "kind", "canonical"),
    [
        ("11010519491231002x", "cn_id", "11010519491231002X"),
        ("110101900307777", "cn_id", "110101199003077774"),  # old 15-digit form
        ("91350100m000100y43", "uscc", USCC),
        ("8613800138000", "phone", PHONE),
        ("008613800138000", "phone", PHONE),
        ("138 0013 8000", "phone", PHONE),
        ("138-0013-8000", "phone", PHONE),
        ("4111 1111 1111 1111", "bank_card", "4111111111111111"),
        ("4111-1111-1111-1111", "bank_card", "4111111111111111"),
        ("2221000000000009", "bank_card", "2221000000000009"),  # Mastercard 2-series
        ("6222 0210 0111 5111 111", "bank_card", "6222021001115111111"),
        ("3782 822463 10005", "bank_card", "378282246310005"),
    ],
)
def test_every_spelling_gets_the_token_of_the_canonical_form(
    written: str, kind: str, canonical: str
) -> None:
    token = token_by_hand(KEY, kind, canonical)
    assert R.token(kind, written) == token
    assert R.token(kind, canonical) == token
    for text in [f"a = '{written}'", f"（{written}）", f"tel:+{written}"]:
        out = R.redact(text)
        assert token in out
        assert written not in out


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM t WHERE id = '110101199003077777'",  # bad check digit
        "SELECT * FROM t WHERE id = '110101199013077774'",  # month 13
        "SELECT * FROM t WHERE id = '110101199002307779'",  # 30 February
        "SELECT * FROM t WHERE id = '11010119900307777'",  # 17 digits
        "SELECT * FROM t WHERE id = '1101011990030777'",  # 16 digits, fails Luhn
        "SELECT * FROM t WHERE uscc = '91350100M000100Y44'",  # bad check char
        "SELECT * FROM t WHERE card = '4111111111111112'",  # fails Luhn
        "SELECT * FROM t WHERE phone = '12800138000'",  # no such mobile prefix
        "SELECT * FROM t WHERE phone = '1380013800'",  # 10 digits
        "SELECT * FROM t WHERE phone = '138001380001'",  # 12 digits
        "SELECT * FROM t WHERE ts > 1732388400001",  # epoch ms (passes Luhn)
        "SELECT * FROM t WHERE ts > 1732388400000001",  # epoch µs
        "SELECT * FROM t WHERE ts > 1732388400000000001",  # epoch ns
        "SELECT * FROM t WHERE ts > 1732388400",  # epoch s
        "SELECT * FROM t WHERE t > '2026-11-23T19:00:00.123456Z'",
        "SELECT * FROM t WHERE t > 20261123190000123",  # compact date-time
        "SELECT * FROM t WHERE t BETWEEN '2026-11-23' AND 20261231",
        "SELECT * FROM t WHERE amount > 1500.00 AND amount < 99999.99",
        "SELECT * FROM t WHERE amount = 12345678901237.50",  # integer part passes Luhn
        "SELECT * FROM t WHERE amount = 0.4111111111111111",  # so does the fraction
        "SELECT * FROM t WHERE x = 'a110101199003077774'",  # inside a longer run
        "SELECT * FROM t WHERE x = '110101199003077774b'",
        "SELECT * FROM t WHERE x = '1110101199003077774'",
        "SELECT * FROM t WHERE x = '0x4111111111111111'",
        # Luhn-valid, but no card scheme issues numbers starting 0 or 20..2220:
        "SELECT * FROM t WHERE n = 0000000000000 OR n = '0123456789012347'",
        "SELECT * FROM t WHERE n = 2100000000000005 OR n = 2220000000000000",
        "SELECT * FROM t WHERE audit_id = '0198f0c2-7a40-7000-8000-000000000001'",
        "WHERE h = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'",  # SHA-256
        "SELECT * FROM t WHERE d = '2026-11-23' AND n = 2026-11-23",
        "SELECT COUNT(*) FROM population.people WHERE district = '海淀区' LIMIT 100",
        "SELECT informationschema FROM t",  # 17 letters: not an identifier
        "",
    ],
)
def test_ordinary_text_and_near_misses_are_left_alone(text: str) -> None:
    assert R.redact(text) == text


@given(st.from_regex(r"[1-9][0-9]{16}", fullmatch=True))
def test_17_digit_numbers_are_not_ids(number: str) -> None:
    out = R.redact(f"WHERE n = {number}")
    # 13-19 digits can only ever be a card number, and only with a valid Luhn digit.
    assert out == f"WHERE n = {number}" or (luhn_valid(number) and "bank_card" in out)
    assert "cn_id" not in out


@given(st.integers(min_value=10**12, max_value=2_208_988_799_999))
def test_timestamps_are_left_alone(millis: int) -> None:
    # Unix time in ms, µs and ns from 2001-09-09 (the first 13-digit ms) to 2040.
    for value in (millis, millis * 1000 + 7, millis * 1_000_000 + 42):
        assert R.redact(f"WHERE ts >= {value}") == f"WHERE ts >= {value}"


@given(st.integers(min_value=0, max_value=10**10), st.integers(min_value=0, max_value=99))
def test_amounts_are_left_alone(units: int, cents: int) -> None:
    text = f"WHERE amount BETWEEN {units}.{cents:02d} AND {units + 1}"
    out = R.redact(text)
    # An 11-digit amount starting 13..19 is indistinguishable from a mobile number.
    assert out == text or re.fullmatch(r"1[3-9][0-9]{9}", str(units + 1))


# -- the token ----------------------------------------------------------------------------


def test_token_form_and_hmac() -> None:
    token = R.token("cn_id", CN_ID)
    assert token == token_by_hand(KEY, "cn_id", CN_ID)
    assert token.startswith(IDENTIFIER_TOKEN_PREFIX + "cn_id:")
    assert re.fullmatch(r"⟦id:cn_id:[0-9a-f]{20}⟧", token)
    assert IDENTIFIER_TOKEN_RE.fullmatch(token)
    assert R.token("cn_id", f"  {CN_ID}\n") == token


def test_token_rejects_what_redact_would_not_redact() -> None:
    with pytest.raises(ValueError, match="not a valid cn_id"):
        R.token("cn_id", "110101199003077777")
    with pytest.raises(ValueError, match="not a valid phone"):
        R.token("phone", "12345")
    with pytest.raises(ValueError, match="unknown identifier kind"):
        R.token("email", "a@b.c")


def test_redaction_is_deterministic_per_key_and_differs_across_keys() -> None:
    text = f"WHERE id = '{CN_ID}' OR phone = {PHONE}"
    assert R.redact(text) == IdentifierRedactor(KEY).redact(text)
    other = IdentifierRedactor(OTHER_KEY).redact(text)
    assert other != R.redact(text)
    assert IdentifierRedactor(OTHER_KEY).token("cn_id", CN_ID) in other


def test_kinds_are_separate_domains() -> None:
    # The same digits as two kinds give unrelated tokens (the kind is MACed too).
    assert R.token("bank_card", "4111111111111111")[-21:] != R.token("bank_card", CARDS[1])[-21:]
    digits = "110101199003077774"
    assert classify(digits) is not None
    tokens = {R.token(k.name, digits) for k in KINDS if k.canonical(digits) is not None}
    assert len({t.split(":")[-1] for t in tokens}) == len(tokens)


def test_existing_tokens_are_kept_and_redaction_is_idempotent() -> None:
    once = R.redact(f"WHERE a = '{CN_ID}' AND b = '{PHONE}'")
    assert R.redact(once) == once
    foreign = IdentifierRedactor(OTHER_KEY).token("cn_id", CN_ID)
    assert R.redact(f"x = '{foreign}'") == f"x = '{foreign}'"
    # A token's 20 hex digits never look like an identifier either way.
    fake = "⟦id:phone:13800138000138001380⟧"
    assert R.redact(fake) == fake


def test_redact_optional() -> None:
    assert R.redact_optional(None) is None
    assert R.redact_optional(PHONE) == R.token("phone", PHONE)


def test_key_requirements() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        IdentifierRedactor(b"k" * 15)
    with pytest.raises(TypeError):
        IdentifierRedactor("k" * 32)  # type: ignore[arg-type]
    IdentifierRedactor(b"k" * 16)
    assert "k" * 16 not in repr(IdentifierRedactor(b"k" * 16))


# -- properties -----------------------------------------------------------------------------

filler = st.text(
    alphabet=st.sampled_from("SELCTWHRANDOfromwhe_ *=<>()'%,\n海淀区居民身份证"),
    max_size=30,
)
left_edges = st.sampled_from([" ", "'", "(", "%", "=", ",", "中", "\n", "（", "：", '"', "-", "+"])
right_edges = st.sampled_from([" ", "'", ")", "%", ",", "的", "\n", "）", ";", '"', "."])


@settings(max_examples=300)
@given(st.lists(st.tuples(filler, left_edges, identifiers, right_edges), max_size=4), filler)
def test_identifiers_never_survive_in_sql_ish_text(
    parts: list[tuple[str, str, str, str]], tail: str
) -> None:
    text = "".join(f"{before}{left}{value}{right}" for before, left, value, right in parts) + tail
    out = R.redact(text)
    for _, _, value, _ in parts:
        found = classify(value)
        assert found is not None
        kind, canonical = found
        assert value not in out
        assert canonical not in out
        assert R.token(kind.name, value) in out
    assert R.redact(out) == out


@given(identifiers)
def test_token_matches_what_redact_wrote(value: str) -> None:
    kind = kind_of(value)
    assert (
        R.redact(value) == R.token(kind, value) == token_by_hand(KEY, kind, kind_canonical(value))
    )


def kind_canonical(value: str) -> str:
    found = classify(value)
    assert found is not None
    return found[1]


@given(cn_ids())
def test_lowercase_x_and_old_ids(cn_id: str) -> None:
    assert R.redact(cn_id.lower()) == R.token("cn_id", cn_id)
    if cn_id[6:8] == "19":
        old = cn_id[:6] + cn_id[8:17]
        assert R.redact(old) == R.token("cn_id", cn_id)


@given(cn_ids(), st.integers(min_value=0, max_value=17), st.integers(min_value=1, max_value=9))
def test_a_changed_digit_breaks_the_id(cn_id: str, position: int, delta: int) -> None:
    # MOD 11-2 catches every single-digit error, so the changed number is no ID (it may
    # still be a Luhn-valid card number, or a USCC, by chance).
    digits = "0123456789X" if position == 17 else "0123456789"
    changed_char = digits[(digits.index(cn_id[position]) + delta) % len(digits)]
    changed = cn_id[:position] + changed_char + cn_id[position + 1 :]
    found = classify(changed)
    assert found is None or found[0].name != "cn_id"


# -- speed --------------------------------------------------------------------------------

SQL_300 = (
    "SELECT p.name, p.birth_date, a.amount FROM population.people p "
    "JOIN payments a ON a.pid = p.id "
    f"WHERE p.id_number = '{CN_ID}' AND p.phone LIKE '%{PHONE}%' "
    "AND p.district = '海淀区' AND a.t > '2026-11-23' "
    f"AND a.amount BETWEEN 1500.00 AND 99999.99 AND a.card = '{CARDS[0]}' "
    "ORDER BY 1 LIMIT 10"
)


def test_redaction_of_a_300_character_query_finds_exactly_its_identifiers() -> None:
    # Timing lives in benchmarks/ (never in a unit test): here only what it returns.
    assert 290 <= len(SQL_300) <= 310
    plain = SQL_300.replace(CN_ID, "x").replace(PHONE, "y").replace(CARDS[0], "z")
    redacted = R.redact(SQL_300)
    for secret in (CN_ID, PHONE, CARDS[0]):
        assert secret not in redacted
    assert R.redact(plain) == plain
