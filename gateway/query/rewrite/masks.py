"""Masking kinds: SQL expressions each backend evaluates, and their Python reference.

The rewrite replaces every protected table by a derived table whose select list applies one
mask per column, ``(SELECT <mask(col)> AS col, ... FROM source WHERE ...) AS alias``. This
module builds those ``<mask(col)>`` expressions as sqlglot ASTs for one target dialect
(``sqlite``, ``postgres``, ``mysql`` — also used for MariaDB — and ``duckdb``), and gives
the pure-Python value each backend must return (:func:`mask_value`), which the tests check
on the four real engines.

Kinds (``MaskSpec.kind``, optional ``:arg``; parameters ``kind:key=value;key=value``, see
``mask_params``), and what they guarantee on every backend:

=======================  ==================  ============================================
kind                     column types        result
=======================  ==================  ============================================
``partial``              text, integer       keep ``first`` (0) and ``last`` (0)
                                             characters; hide the rest with ``char``
                                             (``*``): one per hidden character
                                             (``fill=length``, the default) or exactly
                                             ``fill=k`` of them (length hidden)
``name``                 text                preset ``first=1;fill=2``: 张三丰 -> 张**
``id_number``            text                preset ``first=1;last=2;fill=15``
``phone``                text, integer       preset ``first=3;last=4;fill=4``
``bank_card``            text, integer       preset ``first=4;last=4;fill=8``
``address[:N]``          text                preset ``first=6;fill=4`` (``:N`` = first=N)
``email``                text                partial (``first=1;fill=3``) of the part
                                             before the first ``@``, the rest kept
``regex``                text                every match of ``pattern`` (portable subset,
                                             ``mask_regex``) replaced by ``replace``
                                             (``***``)
``month``                date, timestamp     the first day of the month, a date
``date_shift``           date, timestamp     moved by ``days`` at most, the same shift for
                                             every date of one value of column ``key``
``nullify``              all                 NULL, typed as the column where the engine
                                             allows
``constant[:t]``         all                 the text ``t`` (default ``***``)
``year``                 date, timestamp     the year, an integer
``bucket:W``             integer             text ``lo-hi``, ``lo = floor(v / W) * W``,
                                             ``hi = lo + W - 1`` (floor also for negatives)
``city``                 text                district -> city from ``[regions]``; else NULL
``pseudonym``            text, integer       first 32 lower-case hex digits of
                                             HMAC-SHA256(department key, value as UTF-8)
=======================  ==================  ============================================

Common rules: every mask maps NULL to NULL (``nullify`` maps everything to NULL); lengths
and substrings count characters (code points), never bytes, so Chinese text and characters
outside the BMP (e.g. 𠮷) are cut identically everywhere; text masks on an integer column
first render the integer as decimal text (Python ``str(int)``). A partial mask hides a value
of at most ``first + last`` characters entirely (``fill=length``: one ``char`` per
character, so ``''`` stays ``''``; ``fill=k``: the ``k`` characters), so a short value is
never revealed by the characters a mask keeps (``phone`` of ``'12345'`` is ``'****'``).

``date_shift`` adds ``(h % (2 * days + 1)) - days`` days, ``h`` the integer of the first 8
hex digits of HMAC-SHA256(date-shift key, key value as text); the date-shift key is
HMAC-SHA256(department pseudonym key, ``gateway/date-shift/v1``), so a consumer who sees
the pseudonym of the key column cannot compute the shift, and departments get different
shifts. Deterministic per row key (e.g. per person): intervals between the dates of one
person survive, which is what analyses of durations need; one shift in ``2 * days + 1`` is
zero (indistinguishable from the others). NULL key -> NULL. A date that a shift could move
outside 0001-01-01..9999-12-31 becomes NULL (the engines disagree beyond). The key column
must be a text or integer column of the same table (checked at load); it need not be
visible to the consumer.

Per-dialect choices (measured on PostgreSQL 15, MariaDB 10.11, SQLite 3.40, DuckDB 2.0):

- Concatenation is ``||`` everywhere except MySQL, which gets a plain ``CONCAT(...)``
  (``exp.Concat`` without ``coalesce``): MySQL's ``CONCAT`` returns NULL if any argument is
  NULL, which is exactly ``||`` elsewhere. SQLite < 3.44 has no ``concat()``.
- "last n characters" is ``RIGHT(x, n)`` except on SQLite (no ``RIGHT``), where it is
  ``SUBSTRING(x, -n)``; PostgreSQL's ``SUBSTRING`` with a negative start means something
  else, so it is never used there.
- The length-preserving filler is ``REPEAT(char, n)``, except on SQLite (no ``REPEAT``):
  ``REPLACE(HEX(ZEROBLOB(n)), '00', char)``. The length is ``CHAR_LENGTH`` on MySQL
  (``LENGTH`` counts bytes there), ``LENGTH`` elsewhere (characters).
- ``email`` finds the first ``@`` with ``POSITION``/``LOCATE``/``INSTR``/``STRPOS``.
- ``regex`` is ``REGEXP_REPLACE(x, p, r, 'g')`` on PostgreSQL and DuckDB,
  ``REGEXP_REPLACE(x, '(?-i)' || p, r)`` on MariaDB (case-sensitive whatever the
  collation) and the UDF ``gw_regexp_replace`` (Python ``re``) on SQLite, with ``p`` the
  canonical pattern of ``mask_regex`` that all four read alike.
- ``month``: ``CAST(DATE_TRUNC('month', x) AS DATE)`` (PostgreSQL, DuckDB),
  ``CAST(DATE_FORMAT(x, '%Y-%m-01') AS DATE)`` (MySQL), ``DATE(x, 'start of month')``
  (SQLite, ISO-8601 TEXT).
- ``date_shift``: the HMAC as for pseudonyms; hex to integer with ``CAST('x' || h AS
  BIT(32))`` (PostgreSQL), ``CONV(h, 16, 10)`` (MySQL), ``CAST('0x' || h AS BIGINT)``
  (DuckDB) or the UDF ``gw_hex_to_int`` (SQLite); then ``date + n`` (PostgreSQL, DuckDB
  dates), ``ts + n * INTERVAL '1 day'`` (timestamps), ``DATE_ADD`` (MySQL), ``DATE(x, n ||
  ' days')``/``DATETIME(...)`` (SQLite).
- ``bucket`` uses only ``%`` (truncating remainder on all four engines) and ``+``/``-``:
  ``lo = v - ((v % W) + W) % W``. Division is avoided because ``/`` truncates on PostgreSQL
  and SQLite but is exact on MariaDB and DuckDB. PostgreSQL and DuckDB compute in BIGINT so
  an INTEGER column near 2^31 cannot overflow; a value within W of the BIGINT limits still
  overflows (an error on PostgreSQL, MariaDB and DuckDB; SQLite silently switches to REAL
  and returns e.g. ``'9223372036854775000-9.22337203685478e+18'``), which no real amount
  or capital reaches.
- ``city`` compares exact strings. MariaDB's ``utf8mb4_bin`` is a PAD SPACE collation
  (``'历下区 ' = '历下区'``), so on MySQL the value is compared as UTF-8 bytes against
  ``UNHEX('<utf-8 of the district>')``, which is also independent of the column's and the
  connection's character sets.
- ``year`` is ``CAST(EXTRACT(YEAR FROM x) AS INT)`` on PostgreSQL (``EXTRACT`` returns
  numeric there), ``EXTRACT(YEAR FROM x)`` on MySQL and DuckDB, and
  ``CAST(STRFTIME('%Y', x) AS INTEGER)`` on SQLite, where dates are ISO-8601 TEXT (a text
  SQLite cannot read as a date gives NULL). A ``timestamp`` column is assumed to be without
  time zone: PostgreSQL would take the year of a ``timestamptz`` in the session time zone.
- ``nullify`` casts NULL to the column's type (BIGINT, TEXT, DECIMAL, DATE, TIMESTAMP,
  BOOLEAN) so that outer clauses still type-check on PostgreSQL and DuckDB (an untyped NULL
  in a derived table is ``text`` on PostgreSQL: ``WHERE col > 5`` would fail). MySQL gets
  its cast names (SIGNED, CHAR, DATETIME...); SQLite a bare NULL.
- String literals of our own (constants, districts, cities) are escaped by sqlglot. On MySQL
  they are read in the connection character set, which must be ``utf8mb4`` (it is what the
  MySQL backend uses), and a backslash in a ``constant`` relies on ``NO_BACKSLASH_ESCAPES``
  being off (sqlglot doubles it).

Pseudonyms are computed inside the backend, so they can be joined, grouped and filtered on
like any other column. HMAC(K, m) = H((K ⊕ opad) || H((K ⊕ ipad) || m)) with the two 64-byte
padded keys precomputed here:

- PostgreSQL: ``sha256(bytea)`` is built in (no pgcrypto needed):
  ``SUBSTRING(ENCODE(SHA256(DECODE('<opad>', 'hex') || SHA256(DECODE('<ipad>', 'hex') ||
  CONVERT_TO(x, 'UTF8'))), 'hex') FROM 1 FOR 32)``.
- MySQL/MariaDB: ``SHA2`` of a binary string hashes its bytes; the value is converted to
  utf8mb4 then to BINARY so the hashed bytes are its UTF-8 encoding whatever the column's
  character set: ``SUBSTRING(SHA2(CONCAT(UNHEX('<opad>'), UNHEX(SHA2(CONCAT(UNHEX('<ipad>'),
  CAST(CAST(x AS CHAR CHARACTER SET utf8mb4) AS BINARY)), 256))), 256), 1, 32)``.
- DuckDB: ``sha256`` accepts BLOB (checked on duckdb 2.0), so no UDF is needed:
  ``SUBSTRING(SHA256(UNHEX('<opad>') || UNHEX(SHA256(UNHEX('<ipad>') || ENCODE(x)))), 1, 32)``.
- SQLite: the UDF ``gw_hmac_sha256_hex(key_hex, value)`` from :func:`sqlite_functions`,
  which the SQLite backend must register: ``SUBSTRING(GW_HMAC_SHA256_HEX('<key>', x), 1, 32)``.

**The department's pseudonym key travels in the SQL text sent to the backend** (as the
padded keys, from which the key is trivially recovered), in every query that selects a
pseudonymised column (and the date-shift key derived from it, in every query that selects
a ``date_shift`` column; :func:`redact_key_material` removes both from the audit log and
traces). Whoever can read statement text on the database server — statement,
slow and general logs, the server log's ``STATEMENT:`` line after an error (on PostgreSQL
by default, and a consumer can provoke errors at will), ``pg_stat_activity``,
``performance_schema.events_statements_history`` — can compute that department's
pseudonyms and re-identify them by hashing candidate values (ID numbers have little
entropy). Why this is acceptable: those readers are the data owner's DBAs and operators,
who hold the raw values anyway; the key is one department's key derived one-way from the
master secret (:func:`derive_pseudonym_key`), so it reveals neither the master secret nor
another department's pseudonyms; and computing in the backend is what lets consumers join,
group and filter on pseudonyms without the gateway post-processing every row. It is not
acceptable if database logs are shipped where people without access to the raw data can
read them. How to limit it: no statement logging for the gateway's database role
(PostgreSQL, as superuser: ``ALTER ROLE <gateway role> SET log_statement = 'none'``,
``log_min_duration_statement = -1`` and ``log_min_error_statement = panic``; MariaDB: the
general log off, and the gateway's sessions out of the slow log, e.g. a large session
``long_query_time``); ``pg_stat_statements`` and ``performance_schema`` digests replace
constants by placeholders, so they do not hold the key; after a leak, rotate by moving to a
``v2`` derivation label (every pseudonym changes). SQLite and DuckDB run in the gateway's
own process, where the key already is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Final

from sqlglot import exp

from gateway.domain import MaskSpec
from gateway.errors import ConfigurationError
from gateway.query.rewrite.mask_params import (
    PRESETS,
    DateShift,
    Partial,
    RegexParams,
    date_shift_params,
    email_params,
    partial_params,
    regex_params,
)
from gateway.query.rewrite.mask_regex import canonical_pattern, sqlite_regexp_replace

__all__ = [
    "DIALECTS",
    "MASK_KINDS",
    "PSEUDONYM_HEX_CHARS",
    "MaskContext",
    "check_mask_spec",
    "derive_pseudonym_key",
    "mask_expression",
    "mask_value",
    "masked_type",
    "sqlite_functions",
]

#: Target dialects (sqlglot names) a mask expression can be generated for.
DIALECTS: Final = frozenset({"sqlite", "postgres", "mysql", "duckdb"})

_ALL_TYPES: Final = frozenset({"text", "integer", "decimal", "date", "timestamp", "boolean"})
_TEXT: Final = frozenset({"text"})
_TEXT_OR_INTEGER: Final = frozenset({"text", "integer"})
_DATES: Final = frozenset({"date", "timestamp"})

#: kind -> catalog column types it may be applied to.
_APPLIES_TO: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "partial": _TEXT_OR_INTEGER,
        "name": _TEXT,
        "id_number": _TEXT,
        "phone": _TEXT_OR_INTEGER,
        "bank_card": _TEXT_OR_INTEGER,
        "address": _TEXT,
        "email": _TEXT,
        "regex": _TEXT,
        "month": _DATES,
        "date_shift": _DATES,
        "nullify": _ALL_TYPES,
        "constant": _ALL_TYPES,
        "year": _DATES,
        "bucket": frozenset({"integer"}),
        "city": _TEXT,
        # Not decimal/date: their text form differs between engines (scale, DateStyle).
        "pseudonym": _TEXT_OR_INTEGER,
    }
)

#: Every masking kind this module implements.
MASK_KINDS: Final = frozenset(_APPLIES_TO)

#: Hex digits of the HMAC kept in a pseudonym (128 bits: collisions are negligible).
PSEUDONYM_HEX_CHARS: Final = 32

#: Label of the department-key derivation; bump the version to rotate every pseudonym.
_PSEUDONYM_LABEL: Final = b"gateway/pseudonym/v1/"
_PSEUDONYM_KEY_BYTES: Final = 32
_MIN_MASTER_SECRET_BYTES: Final = 32
_SHA256_BLOCK: Final = 64

_CONSTANT_DEFAULT: Final = "***"
_CONSTANT_MAX_CHARS: Final = 200
# Large enough for any amount in 分 or capital in 万元, small enough that (v % W) + W and
# lo + W - 1 stay far from the BIGINT limits for every realistic value.
_BUCKET_MAX_WIDTH: Final = 10**15
# At most 16 digits: every maximum below fits, and int() never sees a huge digit string.
_POSITIVE_INT: Final = re.compile(r"[1-9][0-9]{0,15}")

_SQLITE_HMAC_UDF: Final = "gw_hmac_sha256_hex"
_SQLITE_REGEXP_UDF: Final = "gw_regexp_replace"
_SQLITE_HEX_INT_UDF: Final = "gw_hex_to_int"
#: Label of the date-shift key, derived from the department's pseudonym key: a consumer who
#: sees the pseudonym of the key column must not be able to compute the shift from it.
_DATE_SHIFT_LABEL: Final = b"gateway/date-shift/v1"
#: Hex digits of the keyed hash that choose the shift (32 bits: uniform enough mod 7301).
_SHIFT_HEX_CHARS: Final = 8

#: Catalog type -> type name for a typed NULL (``nullify``), generated per dialect by sqlglot.
_NULL_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "text": "text",
        "integer": "bigint",
        "decimal": "decimal",
        "date": "date",
        "timestamp": "timestamp",
        "boolean": "boolean",
    }
)


@dataclass(frozen=True, slots=True)
class MaskContext:
    """What masks need beyond the column: the consumer's department key and the regions.

    Raises ConfigurationError if ``pseudonym_key`` is not 32 bytes.
    """

    #: 32-byte key of the *consumer's department* (see :func:`derive_pseudonym_key`).
    pseudonym_key: bytes
    #: District -> city (catalog ``[regions]``), for the ``city`` mask.
    regions: Mapping[str, str]

    def __post_init__(self) -> None:
        if not isinstance(self.pseudonym_key, bytes) or (
            len(self.pseudonym_key) != _PSEUDONYM_KEY_BYTES
        ):
            raise ConfigurationError(
                f"the pseudonym key must be {_PSEUDONYM_KEY_BYTES} bytes (use derive_pseudonym_key)"
            )


def derive_pseudonym_key(master_secret: bytes, department: str) -> bytes:
    """The 32-byte pseudonym key of ``department``:
    HMAC-SHA256(master_secret, b"gateway/pseudonym/v1/" + department as UTF-8).

    Deterministic, so a department's pseudonyms are stable across restarts and gateway
    instances, and one-way, so a leaked department key reveals neither the master secret
    nor another department's key. Raises ConfigurationError if the master secret is
    shorter than 32 bytes or the department code is empty.
    """
    if len(master_secret) < _MIN_MASTER_SECRET_BYTES:
        raise ConfigurationError(
            f"the pseudonym master secret must be at least {_MIN_MASTER_SECRET_BYTES} bytes"
        )
    if not department:
        raise ConfigurationError("a pseudonym key needs a department code")
    return hmac.new(
        master_secret, _PSEUDONYM_LABEL + department.encode("utf-8"), hashlib.sha256
    ).digest()


def check_mask_spec(spec: MaskSpec, column_type: str) -> None:
    """Check that ``spec`` is a known kind with a valid argument, applicable to a column of
    catalog type ``column_type``. Returns None; raises ConfigurationError naming the
    problem otherwise (unknown kind or type, missing/unexpected/invalid argument, kind not
    applicable to the type)."""
    if column_type not in _ALL_TYPES:
        raise ConfigurationError(
            f"unknown column type {column_type!r}; expected one of {sorted(_ALL_TYPES)}"
        )
    kind, arg = spec.kind, spec.arg
    applies = _APPLIES_TO.get(kind)
    if applies is None:
        raise ConfigurationError(
            f"unknown mask {str(spec)!r}; expected one of {sorted(MASK_KINDS)}"
        )
    if column_type not in applies:
        raise ConfigurationError(
            f"mask {str(spec)!r} does not apply to {column_type} columns "
            f"(only to: {', '.join(sorted(applies))})"
        )
    if kind in PRESETS:
        partial_params(spec)
    elif kind == "email":
        email_params(spec)
    elif kind == "regex":
        canonical_pattern(regex_params(spec).pattern)
    elif kind == "date_shift":
        date_shift_params(spec)
    elif kind == "bucket":
        if arg is None:
            raise ConfigurationError("mask 'bucket' needs a width, e.g. 'bucket:1000'")
        _positive_int(spec, _BUCKET_MAX_WIDTH)
    elif kind == "constant":
        if arg is not None:
            _check_constant(arg)
    elif arg is not None:
        raise ConfigurationError(f"mask {kind!r} takes no argument (got {str(spec)!r})")


def masked_type(spec: MaskSpec, column_type: str) -> str:
    """Catalog type of the masked output of ``spec`` on a ``column_type`` column: the
    column's own type for ``nullify`` and ``date_shift``, ``integer`` for ``year``,
    ``date`` for ``month``, ``text`` otherwise. Raises ConfigurationError like
    :func:`check_mask_spec`."""
    check_mask_spec(spec, column_type)
    if spec.kind in {"nullify", "date_shift"}:
        return column_type
    if spec.kind == "month":
        return "date"
    if spec.kind == "year":
        return "integer"
    return "text"


def mask_expression(
    spec: MaskSpec,
    column: exp.Expression,
    *,
    column_type: str,
    dialect: str,
    ctx: MaskContext,
) -> exp.Expression:
    """A new expression computing ``spec`` of ``column`` inside a ``dialect`` backend.

    Generate it with ``.sql(dialect=dialect)``; it evaluates to :func:`mask_value` of the
    column's value. ``column`` is copied wherever it is used, never attached to the result,
    so the caller may reuse it. Raises ConfigurationError for an invalid spec (see
    :func:`check_mask_spec`) or an unknown dialect.
    """
    check_mask_spec(spec, column_type)
    if dialect not in DIALECTS:
        raise ConfigurationError(
            f"no masks for dialect {dialect!r}; expected one of {sorted(DIALECTS)}"
        )
    kind = spec.kind
    if kind in PRESETS:
        return _partial(_as_text(column, column_type), partial_params(spec), dialect)
    if kind == "email":
        return _email(column.copy(), email_params(spec), dialect)
    if kind == "regex":
        return _regex(column.copy(), regex_params(spec), dialect)
    if kind == "month":
        return _month(column, dialect)
    if kind == "date_shift":
        return _date_shift(column, column_type, date_shift_params(spec), dialect, ctx)
    if kind == "nullify":
        return _typed_null(column_type, dialect)
    if kind == "constant":
        value = _CONSTANT_DEFAULT if spec.arg is None else spec.arg
        return exp.Case(
            ifs=[exp.If(this=exp.Is(this=column.copy(), expression=exp.Null()), true=exp.Null())],
            default=exp.Literal.string(value),
        )
    if kind == "year":
        return _year(column, dialect)
    if kind == "bucket":
        return _bucket(column, _positive_int(spec, _BUCKET_MAX_WIDTH), dialect)
    if kind == "city":
        return _city(column, ctx.regions, dialect)
    if kind == "pseudonym":
        return _pseudonym(column, column_type, dialect, ctx.pseudonym_key)
    # Unreachable: check_mask_spec rejected unknown kinds. Fail closed all the same.
    raise ConfigurationError(f"unknown mask {str(spec)!r}")


def mask_value(
    spec: MaskSpec, value: object, *, column_type: str, ctx: MaskContext, key: object = None
) -> object:
    """The value a backend returns for ``spec`` applied to ``value`` (pure Python).

    ``value`` is what the column holds: ``str`` for text, ``int`` for integer, a
    ``date``/``datetime`` or an ISO-8601 ``str`` (as SQLite stores them) for date and
    timestamp, anything for ``nullify``/``constant``. ``key`` is the row's value of the
    ``date_shift`` key column (``str`` or ``int``). Returns None for None. Raises
    ConfigurationError for an invalid spec, TypeError for a value of the wrong Python type.
    """
    check_mask_spec(spec, column_type)
    kind = spec.kind
    if kind == "nullify" or value is None:
        return None
    if kind == "constant":
        return _CONSTANT_DEFAULT if spec.arg is None else spec.arg
    if kind == "year":
        return _year_value(value)
    if kind == "month":
        return _month_value(value)
    if kind == "date_shift":
        return _date_shift_value(value, date_shift_params(spec).days, key, ctx)
    if kind == "bucket":
        width = _positive_int(spec, _BUCKET_MAX_WIDTH)
        number = _int_value(value)
        low = number // width * width  # Python's // is floor division, as intended
        return f"{low}-{low + width - 1}"
    text = _text_value(value, column_type)
    if kind in PRESETS:
        return _partial_value(text, partial_params(spec))
    if kind == "email":
        at = text.find("@")
        local, domain = (text, "") if at < 0 else (text[:at], text[at:])
        return _partial_value(local, email_params(spec)) + domain
    if kind == "regex":
        params = regex_params(spec)
        return sqlite_regexp_replace(canonical_pattern(params.pattern), params.replacement, text)
    if kind == "city":
        return ctx.regions.get(text)
    if kind == "pseudonym":
        digest = hmac.new(ctx.pseudonym_key, text.encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:PSEUDONYM_HEX_CHARS]
    raise ConfigurationError(f"unknown mask {str(spec)!r}")


def sqlite_functions() -> list[tuple[str, int, Callable[..., str | int | None]]]:
    """The ``(name, number of arguments, function)`` UDFs the SQLite backend must register
    with ``create_function(name, n, f, deterministic=True)`` before running masked SQL:
    ``gw_hmac_sha256_hex(key_hex, value)`` -> 64 lower-case hex digits of
    HMAC-SHA256(key, value as UTF-8), NULL for NULL; ``gw_regexp_replace(pattern,
    replacement, value)`` for the ``regex`` mask (see ``mask_regex``);
    ``gw_hex_to_int(hex)`` -> the integer of at most 15 hex digits (``date_shift``).
    They raise (failing the query) for a REAL value or a malformed key, rather than
    returning a value no other backend would produce. (The functions are typed
    ``Callable[..., str | int | None]``, narrower than ``Callable[..., object]``, so that
    ``sqlite3.Connection.create_function`` accepts them.)
    """
    return [
        (_SQLITE_HMAC_UDF, 2, _sqlite_hmac_sha256_hex),
        (_SQLITE_REGEXP_UDF, 3, sqlite_regexp_replace),
        (_SQLITE_HEX_INT_UDF, 1, _sqlite_hex_to_int),
    ]


# ------------------------------------------------------------------------------ helpers


def _positive_int(spec: MaskSpec, maximum: int) -> int:
    arg = spec.arg or ""
    # A regex, not int(): int() also accepts '+5', ' 5', '1_000' and non-ASCII digits.
    if not _POSITIVE_INT.fullmatch(arg) or int(arg) > maximum:
        raise ConfigurationError(
            f"mask {str(spec)!r}: the argument must be an integer from 1 to {maximum}"
        )
    return int(arg)


def _check_constant(arg: str) -> None:
    if not arg:
        raise ConfigurationError(
            "mask 'constant:' has an empty text; write 'constant' for the default '***'"
        )
    if len(arg) > _CONSTANT_MAX_CHARS:
        raise ConfigurationError(f"mask 'constant': at most {_CONSTANT_MAX_CHARS} characters")
    # Control and unassigned characters would be invisible in results and logs.
    if any(unicodedata.category(ch).startswith("C") for ch in arg):
        raise ConfigurationError("mask 'constant': the text may not contain control characters")


def _as_text(column: exp.Expression, column_type: str) -> exp.Expression:
    """A fresh copy of ``column`` as text: integers render as plain decimal digits on all
    four engines, identical to Python's ``str(int)``."""
    if column_type == "text":
        return column.copy()
    return exp.Cast(this=column.copy(), to=exp.DataType.build("text"))


def _prefix(text: exp.Expression, count: int) -> exp.Expression:
    return exp.Substring(
        this=text.copy(), start=exp.Literal.number(1), length=exp.Literal.number(count)
    )


def _suffix(text: exp.Expression, count: int, dialect: str) -> exp.Expression:
    if dialect == "sqlite":
        # SQLite has no RIGHT(); a negative start counts from the end, and a start before
        # the first character just returns the whole string, like RIGHT elsewhere.
        return exp.Substring(this=text.copy(), start=exp.Literal.number(-count))
    return exp.Right(this=text.copy(), expression=exp.Literal.number(count))


def _concat(parts: list[exp.Expression], dialect: str) -> exp.Expression:
    """Concatenation that is NULL if any part is NULL, on every dialect."""
    if dialect == "mysql":
        # Plain CONCAT (NULL if any argument is NULL); coalesce=False keeps sqlglot from
        # wrapping arguments in COALESCE.
        return exp.Concat(expressions=parts, safe=False, coalesce=False)
    result = parts[0]
    for part in parts[1:]:
        result = exp.DPipe(this=result, expression=part)
    return result


def _typed_null(column_type: str, dialect: str) -> exp.Expression:
    if dialect == "sqlite":
        # SQLite is dynamically typed; sqlglot would emit DATE(NULL) for a date cast.
        return exp.Null()
    return exp.Cast(this=exp.Null(), to=exp.DataType.build(_NULL_TYPES[column_type]))


def _year(column: exp.Expression, dialect: str) -> exp.Expression:
    if dialect == "sqlite":
        return exp.Cast(
            this=exp.Anonymous(
                this="STRFTIME", expressions=[exp.Literal.string("%Y"), column.copy()]
            ),
            to=exp.DataType.build("int"),
        )
    year = exp.Extract(this=exp.var("YEAR"), expression=column.copy())
    if dialect == "postgres":
        # EXTRACT returns numeric on PostgreSQL >= 14; the catalog type is integer.
        return exp.Cast(this=year, to=exp.DataType.build("int"))
    return year


def _bucket(column: exp.Expression, width: int, dialect: str) -> exp.Expression:
    def value() -> exp.Expression:
        if dialect in {"postgres", "duckdb"}:
            # An INTEGER (int4) column would overflow in lo + W - 1 near 2^31.
            return exp.Cast(this=column.copy(), to=exp.DataType.build("bigint"))
        return column.copy()

    w = exp.Literal.number(width)
    # floor(v / W) * W == v - ((v % W) + W) % W with a truncating %, identical on all four
    # engines; parentheses are explicit because sqlglot prints the tree as built.
    positive_mod = exp.Mod(
        this=exp.Paren(
            this=exp.Add(
                this=exp.Paren(this=exp.Mod(this=value(), expression=w.copy())), expression=w.copy()
            )
        ),
        expression=w.copy(),
    )
    low = exp.Paren(this=exp.Sub(this=value(), expression=exp.Paren(this=positive_mod)))
    high = exp.Paren(this=exp.Add(this=low.copy(), expression=exp.Literal.number(width - 1)))
    text = exp.DataType.build("text")
    return _concat(
        [
            exp.Cast(this=low, to=text),
            exp.Literal.string("-"),
            exp.Cast(this=high, to=text.copy()),
        ],
        dialect,
    )


def _mysql_utf8_bytes(text: exp.Expression) -> exp.Expression:
    """``CAST(CAST(x AS CHAR CHARACTER SET utf8mb4) AS BINARY)``: the UTF-8 bytes of ``x``,
    whatever the column's character set."""
    utf8mb4 = exp.DataType(this=exp.DType.CHARACTER_SET, kind=exp.Var(this="utf8mb4"))
    return exp.Cast(this=exp.Cast(this=text, to=utf8mb4), to=exp.DataType.build("binary"))


def _city(column: exp.Expression, regions: Mapping[str, str], dialect: str) -> exp.Expression:
    if not regions:
        return _typed_null("text", dialect)
    subject: exp.Expression = column.copy()
    if dialect == "mysql":
        subject = _mysql_utf8_bytes(subject)
    ifs: list[exp.Expression] = []
    for district in sorted(regions):  # sorted: the same SQL text (and plan cache key) each time
        key: exp.Expression
        if dialect == "mysql":
            key = exp.Unhex(this=exp.Literal.string(district.encode("utf-8").hex()))
        else:
            key = exp.Literal.string(district)
        ifs.append(exp.If(this=key, true=exp.Literal.string(regions[district])))
    # Simple CASE: the subject is evaluated once; no WHEN matches NULL, so NULL -> NULL.
    return exp.Case(this=subject, ifs=ifs)


def _padded_keys(key: bytes) -> tuple[str, str]:
    """Hex of (K ⊕ ipad, K ⊕ opad) for HMAC-SHA256 (RFC 2104), K zero-padded to 64 bytes."""
    block = key.ljust(_SHA256_BLOCK, b"\x00")
    inner = bytes(b ^ 0x36 for b in block)
    outer = bytes(b ^ 0x5C for b in block)
    return inner.hex(), outer.hex()


def _pseudonym(
    column: exp.Expression, column_type: str, dialect: str, key: bytes
) -> exp.Expression:
    text = _as_text(column, column_type)
    hex_digest: exp.Expression
    if dialect == "sqlite":
        hex_digest = exp.Anonymous(
            this=_SQLITE_HMAC_UDF.upper(), expressions=[exp.Literal.string(key.hex()), text]
        )
    else:
        inner_hex, outer_hex = _padded_keys(key)
        # HMAC = H(outer || H(inner || message)), in each engine's own functions.
        if dialect == "postgres":
            message: exp.Expression = exp.Anonymous(
                this="CONVERT_TO", expressions=[text, exp.Literal.string("UTF8")]
            )
        elif dialect == "mysql":
            # CAST(... AS CHAR CHARACTER SET utf8mb4) also renders an integer as text.
            message = _mysql_utf8_bytes(column.copy())
        else:  # duckdb: ENCODE(VARCHAR) is its UTF-8 bytes as a BLOB
            message = exp.Anonymous(this="ENCODE", expressions=[text])
        inner = _raw_sha256(_concat([_hex_bytes(inner_hex, dialect), message], dialect), dialect)
        hex_digest = _hex_sha256(_concat([_hex_bytes(outer_hex, dialect), inner], dialect), dialect)
    return exp.Substring(
        this=hex_digest,
        start=exp.Literal.number(1),
        length=exp.Literal.number(PSEUDONYM_HEX_CHARS),
    )


def _hex_bytes(hex_text: str, dialect: str) -> exp.Expression:
    """A binary-string literal given as hex: ``DECODE('..', 'hex')`` (bytea) on PostgreSQL,
    ``UNHEX('..')`` on MySQL (binary string) and DuckDB (BLOB)."""
    if dialect == "postgres":
        return exp.Anonymous(
            this="DECODE", expressions=[exp.Literal.string(hex_text), exp.Literal.string("hex")]
        )
    return exp.Unhex(this=exp.Literal.string(hex_text))


def _hex_sha256(data: exp.Expression, dialect: str) -> exp.Expression:
    """Lower-case hex SHA-256 of the bytes ``data``."""
    if dialect == "postgres":
        return exp.Anonymous(
            this="ENCODE",
            expressions=[
                exp.Anonymous(this="SHA256", expressions=[data]),
                exp.Literal.string("hex"),
            ],
        )
    if dialect == "mysql":
        return exp.SHA2(this=data, length=exp.Literal.number(256))
    return exp.Anonymous(this="SHA256", expressions=[data])  # duckdb: BLOB -> hex VARCHAR


def _raw_sha256(data: exp.Expression, dialect: str) -> exp.Expression:
    """The 32-byte SHA-256 digest of the bytes ``data``, as a binary string."""
    if dialect == "postgres":
        return exp.Anonymous(this="SHA256", expressions=[data])  # sha256(bytea) -> bytea
    return exp.Unhex(this=_hex_sha256(data, dialect))


def _text_value(value: object, column_type: str) -> str:
    if column_type == "integer":
        return str(_int_value(value))
    if not isinstance(value, str):
        raise TypeError(f"a text column value must be str, got {type(value).__name__}")
    return value


def _int_value(value: object) -> int:
    # bool is an int subclass but never what an integer column holds.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"an integer column value must be int, got {type(value).__name__}")
    return value


def _year_value(value: object) -> int | None:
    if isinstance(value, date):  # datetime is a date subclass
        return value.year
    if isinstance(value, str):
        # SQLite's STRFTIME gives NULL for text it cannot read as a date.
        try:
            return date.fromisoformat(value[:10]).year
        except ValueError:
            return None
    raise TypeError(f"a date value must be date, datetime or str, got {type(value).__name__}")


def _sqlite_hmac_sha256_hex(key_hex: object, value: object) -> str | None:
    if key_hex is None or value is None:
        return None
    if not isinstance(key_hex, str):
        raise TypeError("gw_hmac_sha256_hex: the key must be hex text")
    data: bytes
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, int):
        data = str(value).encode("ascii")
    elif isinstance(value, bytes):
        data = value
    else:
        # A REAL's text differs between engines; refuse rather than produce a pseudonym
        # no other backend would.
        raise TypeError(f"gw_hmac_sha256_hex: cannot pseudonymise a {type(value).__name__}")
    return hmac.new(bytes.fromhex(key_hex), data, hashlib.sha256).hexdigest()


REDACTED_KEY = "<pseudonym key of the department>"


def redact_key_material(sql: str, ctx: MaskContext) -> str:
    """``sql`` with every literal that carries the department's pseudonym key (the key
    itself for the SQLite UDF, the HMAC pads elsewhere) replaced by a marker.

    The backend needs the key to compute pseudonyms; nobody else does. Whoever holds the
    key can recompute the pseudonym of any candidate ID number (a small space) and undo
    the pseudonymisation, so the SQL written to the audit log and to trace spans must
    not carry it.
    """
    secrets: list[str] = []
    for key in (ctx.pseudonym_key, _date_shift_key(ctx)):
        secrets.extend((key.hex(), *_padded_keys(key)))
    for secret in secrets:
        sql = re.sub(re.escape(secret), REDACTED_KEY, sql, flags=re.IGNORECASE)
    return sql


# ------------------------------------------------------------- partial, email, regex, dates


def _length(text: exp.Expression) -> exp.Expression:
    # exp.Length is CHAR_LENGTH on MySQL (LENGTH counts bytes there), LENGTH elsewhere:
    # characters (code points) on all four engines.
    return exp.Length(this=text.copy())


def _repeat(char: str, count: exp.Expression, dialect: str) -> exp.Expression:
    """``count`` copies of ``char`` ('' for a count <= 0)."""
    if dialect == "sqlite":
        # SQLite has no REPEAT: ZEROBLOB(n) is n zero bytes, HEX() makes them n '00' pairs.
        zeros = exp.Anonymous(
            this="HEX", expressions=[exp.Anonymous(this="ZEROBLOB", expressions=[count])]
        )
        return exp.Anonymous(
            this="REPLACE",
            expressions=[zeros, exp.Literal.string("00"), exp.Literal.string(char)],
        )
    return exp.Anonymous(this="REPEAT", expressions=[exp.Literal.string(char), count])


def _partial(text: exp.Expression, p: Partial, dialect: str) -> exp.Expression:
    """CASE WHEN t IS NULL THEN NULL WHEN len(t) <= first + last THEN <all hidden>
    ELSE prefix || filler || suffix END."""
    keep = p.first + p.last
    filler: exp.Expression
    if p.fill is None:
        hidden_all = _repeat(p.char, _length(text), dialect)
        filler = _repeat(
            p.char, exp.Sub(this=_length(text), expression=exp.Literal.number(keep)), dialect
        )
    else:
        hidden_all = exp.Literal.string(p.char * p.fill)
        filler = exp.Literal.string(p.char * p.fill)
    parts: list[exp.Expression] = []
    if p.first:
        parts.append(_prefix(text, p.first))
    parts.append(filler)
    if p.last:
        parts.append(_suffix(text, p.last, dialect))
    body = _concat(parts, dialect) if len(parts) > 1 else parts[0]
    return exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=text.copy(), expression=exp.Null()), true=exp.Null()),
            exp.If(
                this=exp.LTE(this=_length(text), expression=exp.Literal.number(keep)),
                true=hidden_all,
            ),
        ],
        default=body,
    )


def _partial_value(text: str, p: Partial) -> str:
    hidden = len(text) - p.first - p.last
    if hidden <= 0:
        return p.char * (len(text) if p.fill is None else p.fill)
    filler = p.char * (hidden if p.fill is None else p.fill)
    return text[: p.first] + filler + (text[-p.last :] if p.last else "")


def _email(text: exp.Expression, p: Partial, dialect: str) -> exp.Expression:
    """The partial mask of the part before the first ``@``, the rest kept as is; a value
    without ``@`` is masked whole."""
    at = exp.StrPosition(this=text.copy(), substr=exp.Literal.string("@"))
    no_at = exp.EQ(this=at, expression=exp.Literal.number(0))
    local = exp.Case(
        ifs=[exp.If(this=no_at.copy(), true=text.copy())],
        default=exp.Substring(
            this=text.copy(),
            start=exp.Literal.number(1),
            length=exp.Sub(this=at.copy(), expression=exp.Literal.number(1)),
        ),
    )
    domain = exp.Case(
        ifs=[exp.If(this=no_at.copy(), true=exp.Literal.string(""))],
        default=exp.Substring(this=text.copy(), start=at.copy()),
    )
    return _concat([_partial(local, p, dialect), domain], dialect)


def _regex(text: exp.Expression, params: RegexParams, dialect: str) -> exp.Expression:
    pattern = canonical_pattern(params.pattern)
    replacement = exp.Literal.string(params.replacement)
    if dialect == "sqlite":
        return exp.Anonymous(
            this=_SQLITE_REGEXP_UDF.upper(),
            expressions=[exp.Literal.string(pattern), replacement, text],
        )
    if dialect == "mysql":
        # MariaDB's REGEXP_REPLACE replaces every match; it follows the column's collation
        # (case-insensitive for *_ci), so case sensitivity is switched on in the pattern.
        return exp.Anonymous(
            this="REGEXP_REPLACE",
            expressions=[text, exp.Literal.string("(?-i)" + pattern), replacement],
        )
    return exp.Anonymous(
        this="REGEXP_REPLACE",
        expressions=[text, exp.Literal.string(pattern), replacement, exp.Literal.string("g")],
    )


def _month(column: exp.Expression, dialect: str) -> exp.Expression:
    date_type = exp.DataType.build("date")
    if dialect == "sqlite":
        # Dates are ISO-8601 TEXT; DATE() gives NULL for a text it cannot read.
        return exp.Anonymous(
            this="DATE", expressions=[column.copy(), exp.Literal.string("start of month")]
        )
    if dialect == "mysql":
        formatted = exp.Anonymous(
            this="DATE_FORMAT", expressions=[column.copy(), exp.Literal.string("%Y-%m-01")]
        )
        return exp.Cast(this=formatted, to=date_type)
    truncated = exp.Anonymous(
        this="DATE_TRUNC", expressions=[exp.Literal.string("month"), column.copy()]
    )
    return exp.Cast(this=truncated, to=date_type)


def _month_value(value: object) -> object:
    if isinstance(value, date):  # datetime is a date subclass
        return date(value.year, value.month, 1)
    if isinstance(value, str):
        try:
            first = date.fromisoformat(value[:10]).replace(day=1)
        except ValueError:
            return None
        return first.isoformat()  # SQLite returns TEXT
    raise TypeError(f"a date value must be date, datetime or str, got {type(value).__name__}")


def _date_shift_key(ctx: MaskContext) -> bytes:
    return hmac.new(ctx.pseudonym_key, _DATE_SHIFT_LABEL, hashlib.sha256).digest()


def _shift_days(
    column: exp.Expression, params: DateShift, dialect: str, ctx: MaskContext
) -> exp.Expression:
    """(int(first 8 hex digits of HMAC(date-shift key, key value)) % (2N + 1)) - N."""
    table = column.args.get("table")
    key_ref = exp.Column(
        this=exp.to_identifier(params.key, quoted=True),
        table=table.copy() if isinstance(table, exp.Identifier) else None,
    )
    digest = _pseudonym(key_ref, "integer", dialect, _date_shift_key(ctx))
    head = exp.Substring(
        this=digest, start=exp.Literal.number(1), length=exp.Literal.number(_SHIFT_HEX_CHARS)
    )
    number: exp.Expression
    bigint = exp.DataType.build("bigint")
    if dialect == "sqlite":
        number = exp.Anonymous(this=_SQLITE_HEX_INT_UDF.upper(), expressions=[head])
    elif dialect == "postgres":
        bits = exp.DataType.build("bit(32)", dialect="postgres")
        number = exp.Cast(
            this=exp.Cast(this=exp.DPipe(this=exp.Literal.string("x"), expression=head), to=bits),
            to=bigint,
        )
    elif dialect == "mysql":
        conv = exp.Anonymous(
            this="CONV", expressions=[head, exp.Literal.number(16), exp.Literal.number(10)]
        )
        number = exp.Cast(this=conv, to=bigint)
    else:  # duckdb reads '0x...' as hexadecimal
        number = exp.Cast(this=exp.DPipe(this=exp.Literal.string("0x"), expression=head), to=bigint)
    span = 2 * params.days + 1
    shifted = exp.Sub(
        this=exp.Paren(this=exp.Mod(this=number, expression=exp.Literal.number(span))),
        expression=exp.Literal.number(params.days),
    )
    return exp.Cast(this=exp.Paren(this=shifted), to=exp.DataType.build("int"))


def _date_shift(
    column: exp.Expression, column_type: str, params: DateShift, dialect: str, ctx: MaskContext
) -> exp.Expression:
    days = _shift_days(column, params, dialect, ctx)
    shifted: exp.Expression
    if dialect == "sqlite":
        modifier = exp.DPipe(this=days, expression=exp.Literal.string(" days"))
        function = "DATE" if column_type == "date" else "DATETIME"
        shifted = exp.Anonymous(this=function, expressions=[column.copy(), modifier])
    elif dialect == "mysql":
        shifted = exp.DateAdd(this=column.copy(), expression=days, unit=exp.Var(this="DAY"))
    elif column_type == "date":  # date + integer is a date on PostgreSQL and DuckDB
        shifted = exp.Add(this=column.copy(), expression=days)
    else:
        one_day = exp.Interval(this=exp.Literal.string("1 day"))
        shifted = exp.Add(this=column.copy(), expression=exp.Mul(this=days, expression=one_day))
    # A date that could leave 0001-01-01 .. 9999-12-31 becomes NULL: engines disagree
    # beyond (an error on PostgreSQL, NULL on MariaDB, year 10000 on DuckDB).
    low, high = _shift_bounds(params.days)

    def bound(day: date) -> exp.Expression:
        literal = exp.Literal.string(day.isoformat())
        if dialect == "sqlite":  # ISO-8601 TEXT compares in date order
            return literal
        return exp.Cast(this=literal, to=exp.DataType.build("date"))

    outside = exp.Or(
        this=exp.LT(this=column.copy(), expression=bound(low)),
        expression=exp.GTE(this=column.copy(), expression=bound(high + timedelta(days=1))),
    )
    return exp.Case(ifs=[exp.If(this=outside, true=exp.Null())], default=shifted)


def _shift_bounds(days: int) -> tuple[date, date]:
    """The first and last day a date may have for a shift of up to ``days`` to stay in
    0001-01-01 .. 9999-12-31."""
    return date.min + timedelta(days=days), date.max - timedelta(days=days)


def _date_shift_value(value: object, days: int, key: object, ctx: MaskContext) -> object:
    if key is None:
        return None
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise TypeError(f"a date_shift key must be str or int, got {type(key).__name__}")
    low, high = _shift_bounds(days)
    day = _day_of(value)
    if day is None or not low <= day <= high:
        return None
    digest = hmac.new(_date_shift_key(ctx), str(key).encode("utf-8"), hashlib.sha256)
    offset = timedelta(days=int(digest.hexdigest()[:_SHIFT_HEX_CHARS], 16) % (2 * days + 1) - days)
    if isinstance(value, datetime | date):
        return value + offset
    if isinstance(value, str):  # SQLite: ISO-8601 TEXT in, TEXT out
        try:
            if len(value) <= 10:
                return (date.fromisoformat(value) + offset).isoformat()
            moment = datetime.fromisoformat(value) + offset
        except ValueError:
            return None
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    raise TypeError(f"a date value must be date, datetime or str, got {type(value).__name__}")


def _day_of(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    raise TypeError(f"a date value must be date, datetime or str, got {type(value).__name__}")


def _sqlite_hex_to_int(text: object) -> int | None:
    if text is None:
        return None
    if not isinstance(text, str) or not 0 < len(text) <= 15:
        raise TypeError("gw_hex_to_int: expects 1 to 15 hex digits")
    return int(text, 16)


def mask_key_column(spec: MaskSpec) -> str | None:
    """The other column of the same table that ``spec`` reads (``date_shift``'s key),
    or None. Raises ConfigurationError for an invalid ``date_shift``."""
    return date_shift_params(spec).key if spec.kind == "date_shift" else None
