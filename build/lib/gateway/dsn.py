"""Data source names: the one parser for every location the gateway is given.

Backends (``backends.toml``), the demo loader, the audit store, the replay cache and the
administration store all name their storage with one of these forms:

=====================================  =========  ==================================
form                                   kind       notes
=====================================  =========  ==================================
``memory:``                            memory     in-process, not durable (tests)
``sqlite:<path>``                      sqlite     a file; relative to the working dir
``duckdb:<path>``                      duckdb     a file
``postgresql://…`` / ``postgres://…``  postgres   a libpq URI; ``?schema=`` optional
``mysql://…`` / ``mariadb://…``        mysql      PyMySQL; one database in the path
=====================================  =========  ==================================

Each user says which kinds it accepts (``parse_dsn(text, kinds=...)``), so the messages
agree everywhere and a form accepted by one is accepted by all that support the kind.
Errors never echo the DSN: it may carry a password (:func:`redact_dsn` shows it safely).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from gateway.errors import ConfigurationError

__all__ = [
    "ALL_KINDS",
    "Dsn",
    "DsnKind",
    "MySQLParams",
    "parse_dsn",
    "redact_dsn",
]

DsnKind = Literal["memory", "sqlite", "duckdb", "postgres", "mysql"]

ALL_KINDS: Final[frozenset[DsnKind]] = frozenset(
    {"memory", "sqlite", "duckdb", "postgres", "mysql"}
)

_SCHEMES: Final[tuple[tuple[str, DsnKind], ...]] = (
    ("postgresql://", "postgres"),
    ("postgres://", "postgres"),
    ("mysql://", "mysql"),
    ("mariadb://", "mysql"),
    ("sqlite:", "sqlite"),
    ("duckdb:", "duckdb"),
)
_EXAMPLES: Final[dict[DsnKind, str]] = {
    "memory": "memory:",
    "sqlite": "sqlite:<path>",
    "duckdb": "duckdb:<path>",
    "postgres": "postgresql://user@host:5432/db",
    "mysql": "mysql://user@host:3306/db",
}
_SCHEME_RE: Final = re.compile(r"[a-z][a-z0-9+.-]*")
# PostgreSQL folds unquoted names to lower case and cuts them at 63 bytes (NAMEDATALEN).
_SCHEMA_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Query parameters whose values are secrets: libpq accepts ``password`` (and the client
# key's ``sslpassword``) in the URI query as well as in the user-info part.
_SECRET_PARAMETERS: Final = frozenset({"password", "sslpassword"})

_MYSQL_OPTIONS: Final = frozenset(
    {
        "unix_socket",
        "connect_timeout",
        "ssl_ca",
        "ssl_cert",
        "ssl_key",
        "ssl_verify_cert",
        "ssl_verify_identity",
    }
)


@dataclass(frozen=True, slots=True)
class MySQLParams:
    """Connection parameters of a ``mysql://`` / ``mariadb://`` DSN (for PyMySQL)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    unix_socket: str | None = None
    connect_timeout_s: float = 3.0
    ssl: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Dsn:
    """A parsed DSN. ``text`` is kept out of ``repr`` (it may hold a password); ``what``
    names the setting it came from in the messages of the methods below."""

    kind: DsnKind
    text: str = field(repr=False)
    what: str = field(default="DSN", compare=False)

    @property
    def path(self) -> Path:
        """The file of a ``sqlite:`` or ``duckdb:`` DSN, absolute against the current
        directory (so a later ``chdir`` cannot point it at another file)."""
        if self.kind not in ("sqlite", "duckdb"):
            raise ConfigurationError(f"{self.what}: a {self.kind} DSN names no file")
        raw = self.text.split(":", 1)[1].strip()
        return Path(raw).expanduser().absolute()

    def postgres_conninfo(self) -> tuple[str, str | None]:
        """``(libpq URI without the gateway's own 'schema' parameter, schema or None)``.

        The other query parameters reach libpq exactly as written (libpq reads ``+`` as
        a plus, not a space). Raises ConfigurationError for a repeated ``schema``
        parameter or one that is not a lowercase identifier (``[a-z_][a-z0-9_]*``, at
        most 63 characters), so it can be used as a schema name and in ``search_path``
        without quoting."""
        if self.kind != "postgres":
            raise ConfigurationError(f"{self.what}: a {self.kind} DSN is not a PostgreSQL URI")
        parts = urlsplit(self.text)
        pairs = _query_pairs(parts.query)
        schemas = [value for key, value, _ in pairs if key == "schema"]
        if len(schemas) > 1:
            raise ConfigurationError(f"{self.what}: more than one 'schema' parameter")
        if schemas and _SCHEMA_RE.fullmatch(schemas[0]) is None:
            raise ConfigurationError(
                f"{self.what}: the 'schema' parameter must be a lowercase identifier "
                "([a-z_][a-z0-9_]*, at most 63 characters)"
            )
        rest = "&".join(raw for key, _, raw in pairs if key != "schema")
        conninfo = urlunsplit(parts._replace(query=rest))
        return conninfo, (schemas[0] if schemas else None)

    def mysql_params(self) -> MySQLParams:
        """PyMySQL parameters. Raises ConfigurationError (without echoing the DSN)."""
        if self.kind != "mysql":
            raise ConfigurationError(f"{self.what}: a {self.kind} DSN is not a MariaDB/MySQL DSN")
        parts = urlsplit(self.text)
        try:
            port = parts.port or 3306
        except ValueError:
            raise ConfigurationError(f"{self.what}: the port is not a number") from None
        database = unquote(parts.path.lstrip("/"))
        if not database or "/" in database:
            raise ConfigurationError(
                f"{self.what}: a MariaDB/MySQL DSN names one database: mysql://user@host:3306/<db>"
            )
        options: dict[str, str] = {}
        for key, value, _ in _query_pairs(parts.query):
            if key not in _MYSQL_OPTIONS:
                raise ConfigurationError(
                    f"{self.what}: unknown option {key!r}; known: {sorted(_MYSQL_OPTIONS)}"
                )
            options[key] = value
        ssl: dict[str, Any] = {}
        for key in ("ssl_ca", "ssl_cert", "ssl_key"):
            if key in options:
                ssl[key.removeprefix("ssl_")] = options[key]
        for key in ("ssl_verify_cert", "ssl_verify_identity"):
            if key in options:
                flag = options[key].lower()
                if flag not in {"true", "false", "1", "0"}:
                    raise ConfigurationError(f"{self.what}: {key} must be true or false")
                ssl[key.removeprefix("ssl_")] = flag in {"true", "1"}
        try:
            connect_timeout = float(options.get("connect_timeout", "3"))
        except ValueError:
            raise ConfigurationError(f"{self.what}: connect_timeout is not a number") from None
        return MySQLParams(
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=database,
            unix_socket=options.get("unix_socket"),
            connect_timeout_s=connect_timeout,
            ssl=ssl or None,
        )


def parse_dsn(text: str, *, kinds: Iterable[DsnKind] = ALL_KINDS, what: str = "DSN") -> Dsn:
    """Parse ``text``; ``kinds`` are the kinds the caller supports and ``what`` names the
    setting in messages (e.g. ``"GATEWAY_AUDIT_DSN"``). Raises ConfigurationError for an
    unknown form, a kind the caller does not support, or a missing location."""
    accepted = frozenset(kinds)
    stripped = text.strip()
    kind: DsnKind | None = None
    rest = ""
    if stripped.lower() == "memory:":
        kind = "memory"
    else:
        lowered = stripped.lower()
        for prefix, candidate in _SCHEMES:
            if lowered.startswith(prefix):
                kind, rest = candidate, stripped[len(prefix) :].strip()
                break
    if kind is None:
        scheme = stripped.split(":", 1)[0].lower() if ":" in stripped else ""
        shown = f"scheme {scheme!r}" if _SCHEME_RE.fullmatch(scheme) else "its form"
        raise ConfigurationError(f"{what}: {shown} is not supported; {_expected(accepted)}")
    if kind not in accepted:
        raise ConfigurationError(
            f"{what}: a {kind} location is not supported here; {_expected(accepted)}"
        )
    if kind in ("sqlite", "duckdb"):
        if not rest or rest.startswith("//"):
            raise ConfigurationError(
                f"{what}: a {kind} DSN is '{kind}:<path>' (e.g. '{kind}:state/data.db'), "
                "without '//'"
            )
        if rest == ":memory:":
            raise ConfigurationError(f"{what}: an in-memory {kind} database keeps nothing")
    elif kind in ("postgres", "mysql") and not rest:
        raise ConfigurationError(f"{what}: the {kind} DSN lacks a host and database")
    return Dsn(kind=kind, text=stripped, what=what)


def _expected(kinds: frozenset[DsnKind]) -> str:
    return "use " + ", ".join(_EXAMPLES[k] for k in sorted(kinds))


def _query_pairs(query: str) -> list[tuple[str, str, str]]:
    """``(key, value, raw pair)`` of a URI query, percent-decoded but with ``+`` kept as
    a plus (libpq and PyMySQL option values are not form-encoded)."""
    out = []
    for raw in query.split("&"):
        if raw:
            key, _, value = raw.partition("=")
            out.append((unquote(key), unquote(value), raw))
    return out


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (in the user-info part and in a
    ``password`` or ``sslpassword`` query parameter), for logs and ``gateway check``."""
    if "://" not in dsn:
        return dsn
    parts = urlsplit(dsn)
    pairs = _query_pairs(parts.query)
    # Split by hand rather than through .hostname/.port, which fail on a malformed port
    # and drop an IPv6 literal's brackets; the host part is kept as written.
    userinfo, at, hostport = parts.netloc.rpartition("@")
    has_password = bool(at) and ":" in userinfo
    if not has_password and not any(key in _SECRET_PARAMETERS for key, _, _ in pairs):
        return dsn
    netloc = f"{userinfo.partition(':')[0]}:***@{hostport}" if has_password else parts.netloc
    query = "&".join(
        f"{raw.partition('=')[0]}=***" if key in _SECRET_PARAMETERS else raw
        for key, _, raw in pairs
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))
