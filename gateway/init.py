"""``gateway init DIR``: a complete, commented starting configuration for a deployment on
the department's own database.

The catalog is written from the database itself (its tables and column types), so the
names consumers write are the names the database has; sensitivities and masks are
*guessed* from column names and marked for review. Every file says what to edit next.
Keys are generated in ``DIR/keys`` (the gateway's: token signing, audit log, audit
secret) and ``DIR/consumer-keys`` (one consumer system's key pair, to try the gateway
with before the real consumer sends its own public key). Nothing is ever overwritten.
The pseudonym secret is not generated: only a policy using the ``pseudonym`` mask needs
one (the gateway refuses to start without it then, and says how to create it).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.backends import BackendConfig, open_backend
from gateway.dsn import parse_dsn
from gateway.errors import ConfigurationError, GatewayError

__all__ = ["InitOptions", "InitResult", "TableInfo", "init_deployment", "introspect"]

#: What a deployment directory holds after ``gateway init`` (checked before writing).
FILES = ("catalog.toml", "systems.toml", "policy.csv", "backends.toml", "gateway.env")

_INTROSPECT = {
    "sqlite": (  # read by _sqlite_columns, outside the backend
        "SELECT m.name, p.name, p.type FROM sqlite_master AS m "
        "JOIN pragma_table_info(m.name) AS p "
        "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' "
        "ORDER BY m.name, p.cid"
    ),
    "postgres": (
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ),
    "mysql": (
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = DATABASE() ORDER BY table_name, ordinal_position"
    ),
    "duckdb": (
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ),
}

# (pattern over the column name, sensitivity, default mask): a first guess for officers
# to review, never a decision (the policy lines decide).
_GUESSES: tuple[tuple[str, str, str | None], ...] = (
    (r"id_?(number|card|no)|sfz|identity", "sensitive_personal", "id_number"),
    (r"bank|card_?(no|number)|account_?no", "sensitive_personal", "bank_card"),
    (r"phone|mobile|tel", "personal", "phone"),
    (r"address|addr", "personal", "address"),
    (r"(^|_)name$|^name", "personal", "name"),
)


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    #: (column name, catalog type) in the database's order.
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class InitOptions:
    backend_dsn: str
    dataset: str = "shared"
    provider: str = "provider"
    consumer_department: str = "consumer"
    consumer_system: str = "consumer-app"
    purpose: str = "case_review"
    #: Only these tables (empty: every table of the database).
    tables: tuple[str, ...] = ()
    #: Tables published as 不予共享 (listed in the catalog, never served).
    not_shared: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InitResult:
    directory: Path
    tables: tuple[TableInfo, ...]
    written: tuple[Path, ...]


def catalog_type(database_type: str) -> str:
    """The catalog column type of a database type name (``varchar(20)``, ``BIGINT``, …)."""
    t = database_type.lower()
    if "bool" in t:
        return "boolean"
    if "timestamp" in t or "datetime" in t:
        return "timestamp"
    if t.startswith("date"):
        return "date"
    if "int" in t:
        return "integer"
    if any(k in t for k in ("dec", "numeric", "real", "double", "float", "money")):
        return "decimal"
    return "text"


def introspect(dsn: str, *, timeout_s: float = 10.0) -> tuple[TableInfo, ...]:
    """The tables (and views) of the database ``dsn`` names, with catalog column types.
    Raises ConfigurationError when it cannot be read."""
    parsed = parse_dsn(dsn, kinds=("sqlite", "postgres", "mysql", "duckdb"), what="--backend")
    if parsed.kind == "sqlite":
        rows = _sqlite_columns(parsed.path)
    else:
        backend = open_backend(BackendConfig("init", parsed.kind, dsn))
        try:
            rows = backend.execute(
                _INTROSPECT[parsed.kind], max_rows=100_000, timeout_s=timeout_s
            ).rows
        except GatewayError as exc:
            raise ConfigurationError(
                f"cannot read the tables of the database: {exc.internal_detail or exc.detail}"
            ) from None
        finally:
            backend.close()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        tables.setdefault(str(table), []).append((str(column), catalog_type(str(dtype or ""))))
    return tuple(TableInfo(name, tuple(cols)) for name, cols in tables.items())


def _sqlite_columns(path: Path) -> list[tuple[Any, ...]]:
    """SQLite's catalog, read directly: the gateway's SQLite backend forbids reading it
    (its authorizer refuses sqlite_master and pragmas to consumers' SQL)."""
    if not path.is_file():
        raise ConfigurationError(f"no SQLite database at {path}")
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            return conn.execute(_INTROSPECT["sqlite"]).fetchall()
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot read the tables of {path}: {exc}") from None


def init_deployment(directory: Path, options: InitOptions) -> InitResult:
    """Write the starting configuration into ``directory`` (created if missing). Raises
    ConfigurationError if any file exists already, or the database has no usable table."""
    from gateway.audit.evidence import write_audit_secret
    from gateway.audit.signing import new_log_signer, write_log_key
    from gateway.auth.keys import write_keypair

    directory = directory.absolute()
    existing = [n for n in (*FILES, "keys", "consumer-keys") if (directory / n).exists()]
    if existing:
        raise ConfigurationError(
            f"{directory} already holds {', '.join(existing)}; gateway init never overwrites "
            "a configuration (choose an empty directory)"
        )
    dsn = _absolute_file_dsn(options.backend_dsn)
    tables = _chosen(introspect(dsn), options)
    directory.mkdir(parents=True, exist_ok=True)
    keys = directory / "keys"
    written = [
        *write_keypair(keys, "gateway-signing", "EdDSA"),
        *write_log_key(keys, new_log_signer(f"audit.gateway.local/{directory.name or 'init'}")),
        write_audit_secret(keys),
        *write_keypair(directory / "consumer-keys", options.consumer_system, "EdDSA"),
    ]
    texts = {
        "backends.toml": _backends(dsn),
        "catalog.toml": _catalog(options, tables),
        "systems.toml": _systems(options),
        "policy.csv": _policy(options, tables),
        "gateway.env": _env(directory),
    }
    for name, text in texts.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    (directory / "state").mkdir(exist_ok=True)
    return InitResult(directory, tables, tuple(written))


def _absolute_file_dsn(dsn: str) -> str:
    """A relative sqlite:/duckdb: path made absolute, so the configuration means the same
    file whatever directory the gateway is started from."""
    parsed = parse_dsn(dsn, kinds=("sqlite", "postgres", "mysql", "duckdb"), what="--backend")
    if parsed.kind in ("sqlite", "duckdb"):
        return f"{parsed.kind}:{parsed.path}"
    return dsn


def _chosen(found: Sequence[TableInfo], options: InitOptions) -> tuple[TableInfo, ...]:
    by_name = {t.name.lower(): t for t in found}
    wanted = [t.lower() for t in options.tables] or sorted(by_name)
    missing = [t for t in (*wanted, *(n.lower() for n in options.not_shared)) if t not in by_name]
    if missing:
        raise ConfigurationError(
            f"the database has no table(s) {', '.join(missing)}; it has: "
            + (", ".join(sorted(by_name)) or "none")
        )
    usable = [by_name[t] for t in wanted if re.fullmatch(r"[a-z][a-z0-9_]*", t)]
    if not usable:
        raise ConfigurationError("the database has no table with a plain lower-case name")
    return tuple(usable)


def _guess(column: str, ctype: str) -> tuple[str, str | None]:
    if ctype == "text":
        for pattern, sensitivity, mask in _GUESSES:
            if re.search(pattern, column.lower()):
                return sensitivity, mask
    return "internal", None


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _backends(dsn: str) -> str:
    return f"""# Backends: the databases the gateway runs consumers' (rewritten) SQL on.
#
# [backends.<name>] with a `dsn`: sqlite:<path>, duckdb:<path>,
# postgresql://user:${{PASSWORD}}@host:5432/db (add ?schema=<name> for another schema),
# mysql://user:${{PASSWORD}}@host:3306/db. `${{VAR}}` and `${{VAR:-default}}` come from the
# environment; GATEWAY_BACKEND_MAIN_DSN replaces the DSN below entirely.
# Give the gateway an account that can only SELECT the published tables.

[backends.main]
dsn = {_q(dsn)}
"""


def _catalog(options: InitOptions, tables: Sequence[TableInfo]) -> str:
    not_shared = {t.lower() for t in options.not_shared}
    out = [
        f"""# Catalog (信息资源目录): what the gateway publishes. Written by `gateway init` from
# the database; REVIEW every `sensitivity` and `default_mask` (guessed from column names).
#
# sensitivity:   public | internal | personal | sensitive_personal (PIPL Art. 28)
# default_mask:  the mask policy lines with rule `mask` apply, e.g. name, id_number, phone,
#                bank_card, address, nullify, constant, year, bucket:500, city, pseudonym
# sharing_class: unconditional (无条件共享: the policy lines decide) | conditional
#                (有条件共享: also needs an approved application) | not_shared (不予共享:
#                listed, never served). A table may be stricter than its dataset.
# types:         text | integer | decimal | date | timestamp | boolean
#
# Run `gateway check` after every edit.

# The row limit of a table no p3 line in policy.csv limits.
default_max_rows = 1000

# Datasets whose tables consumers may name without `dataset.` (`residents` alone).
# A name found in two of them is refused as ambiguous; a system's own `search_path` in
# systems.toml replaces this one.
search_path = [{_q(options.dataset)}]

[departments.{options.provider}]
name = {{ zh = "数据提供部门", en = "Providing department" }}

[departments.{options.consumer_department}]
name = {{ zh = "数据使用部门", en = "Consuming department" }}

[purposes.{options.purpose}]
name = {{ zh = "业务核查", en = "Case review" }}
legal_basis = "(cite the regulation that allows this use)"

[datasets.{options.dataset}]
title = {{ zh = "共享数据", en = "Shared data" }}
owner = "{options.provider}"
backend = "main"
sharing_class = "unconditional"
grade = "general"
update_cycle = "daily"
description = {{ zh = "（请填写）", en = "(describe the dataset)" }}
"""
    ]
    for table in tables:
        extra = 'sharing_class = "not_shared"\n' if table.name.lower() in not_shared else ""
        out.append(
            f"""
[datasets.{options.dataset}.tables.{table.name.lower()}]
source = {_q(table.name)}
{extra}description = {{ zh = "{table.name}", en = "{table.name}" }}
columns = [
"""
        )
        for column, ctype in table.columns:
            sensitivity, mask = _guess(column, ctype)
            mask_text = f", default_mask = {_q(mask)}" if mask else ""
            out.append(
                f"  {{ name = {_q(column.lower())}, type = {_q(ctype)}, "
                f"sensitivity = {_q(sensitivity)}{mask_text}, description = {_q(column)} }},\n"
            )
        out.append("]\n")
    return "".join(out)


def _systems(options: InitOptions) -> str:
    sid = options.consumer_system
    return f"""# Registered consumer systems (接入系统登记表).
#
# department:  a department code from catalog.toml
# attributes:  values row filters may use as {{principal.<name>}} (e.g. district)
# purposes:    purpose codes from catalog.toml the system may declare
# status:      "active" | "suspended"
# search_path: (optional) datasets whose tables it names without `dataset.`
# keys:        alg = "EdDSA" | "ES256"; public_key = a path relative to THIS file, or a PEM
#
# The key below was generated by `gateway init` to try the gateway; in production each
# consumer generates its own key pair and sends only the public key
# (`gateway keys generate`, then `gateway systems register`).

version = 1

[systems.{sid}]
department = "{options.consumer_department}"
name = {{ zh = "数据使用系统", en = "Consumer system" }}
attributes = {{}}
purposes = ["{options.purpose}"]
status = "active"

[[systems.{sid}.keys]]
alg = "EdDSA"
public_key = "consumer-keys/{sid}.pub.pem"
"""


def _policy(options: InitOptions, tables: Sequence[TableInfo]) -> str:
    role = f"role:{options.consumer_department}-reader"
    dept = options.consumer_department
    not_shared = {t.lower() for t in options.not_shared}
    lines = [
        f"""# Policy: who sees what. Lines are comma-separated; `#` starts a comment.
#
# p,  priority, subject, department, dataset.table.column|dataset.table.*, select,
#     purpose|*, allow|mask|mask:<kind>|deny, expiry, allow|deny (deny only for deny)
#     The matching line with the LOWEST priority number decides a column; a column no
#     line covers is denied. expiry: an ISO-8601 UTC time, or `never` (a permanent rule).
# p2, subject, department, dataset.table, purpose|*, row filter (SQL), expiry
#     e.g. p2, {role}, {dept}, {options.dataset}.<table>, *, district = {{principal.district}},
#          never
# p3, subject, department, dataset.table|dataset.*, purpose|*, max rows, expiry
# g,  system id, role, department
#
# Written by `gateway init`: the consumer's role reads every column of every shared
# table, personal columns masked with the catalog's default mask. Narrow it before use.

g, {options.consumer_system}, {role}, {dept}
"""
    ]
    for table in tables:
        if table.name.lower() in not_shared:
            continue
        lines.append("\n")
        for column, ctype in table.columns:
            _sensitivity, mask = _guess(column, ctype)
            rule = "mask" if mask else "allow"
            obj = f"{options.dataset}.{table.name.lower()}.{column.lower()}"
            lines.append(f"p, 10, {role}, {dept}, {obj}, select, *, {rule}, never, allow\n")
    return "".join(lines)


def _env(directory: Path) -> str:
    return f"""# Environment of this deployment: `set -a; . {directory / "gateway.env"}; set +a`
# (or systemd EnvironmentFile=). See README "Settings" for every variable.
GATEWAY_POLICY_DIR={directory}
GATEWAY_KEY_DIR={directory / "keys"}
GATEWAY_STATE_DIR={directory / "state"}
# The public URL consumers use (https behind TLS); unset, `gateway serve` derives it from
# GATEWAY_HOST/GATEWAY_PORT.
# GATEWAY_ISSUER=https://gateway.example.gov.cn
"""
