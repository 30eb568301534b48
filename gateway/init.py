"""``gateway init DIR``: a complete, commented starting configuration for a deployment on
the department's own database.

The catalog is drafted from the database itself by the same code as ``gateway catalog
import`` (gateway/catalog/introspect.py: tables, types, comments, identifiers recognised
on values sampled in memory), so the names consumers write are the names the database
has; each sensitivity and mask is a suggestion, commented with its reason, for review.
Every file says what to edit next.
Keys are generated in ``DIR/keys`` (the gateway's: token signing, audit log, audit
secret) and ``DIR/consumer-keys`` (one consumer system's key pair, to try the gateway
with before the real consumer sends its own public key). Nothing is ever overwritten.
The pseudonym secret is not generated: only a policy using the ``pseudonym`` mask needs
one (the gateway refuses to start without it then, and says how to create it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.catalog.introspect import Drafted, TableInfo, draft_tables, draft_toml, open_reader
from gateway.dsn import parse_dsn
from gateway.errors import ConfigurationError, GatewayError

__all__ = ["InitOptions", "InitResult", "init_deployment"]

#: What a deployment directory holds after ``gateway init`` (checked before writing).
FILES = ("catalog.toml", "systems.toml", "policy.csv", "backends.toml", "gateway.env")

#: Values of each text column looked at (in memory only) to recognise identifiers.
SAMPLE = 20


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


def _drafted(dsn: str, options: InitOptions) -> list[Drafted]:
    try:
        with open_reader(dsn) as reader:
            drafted = draft_tables(reader, options.tables, sample=SAMPLE)
    except GatewayError as exc:
        raise ConfigurationError(
            f"cannot read the tables of the database: {exc.internal_detail or exc.detail}"
        ) from None
    except Exception as exc:  # a driver's own error: say it
        raise ConfigurationError(f"cannot read the tables of the database: {exc}") from None
    found = {t.name.lower() for t, _ in drafted}
    missing = [t for t in (*options.tables, *options.not_shared) if t.lower() not in found]
    if missing:
        raise ConfigurationError(
            f"the database has no table(s) {', '.join(missing)}; it has: "
            + (", ".join(sorted(found)) or "none")
        )
    usable = [(t, c) for t, c in drafted if re.fullmatch(r"[a-z][a-z0-9_]*", t.name.lower())]
    if not usable:
        raise ConfigurationError("the database has no table with a plain identifier as its name")
    return usable


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
    drafted = _drafted(dsn, options)
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
        "catalog.toml": _catalog(options, drafted),
        "systems.toml": _systems(options),
        "policy.csv": _policy(options, drafted),
        "gateway.env": _env(directory),
    }
    for name, text in texts.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    (directory / "state").mkdir(exist_ok=True)
    return InitResult(directory, tuple(t for t, _ in drafted), tuple(written))


def _absolute_file_dsn(dsn: str) -> str:
    """A relative sqlite:/duckdb: path made absolute, so the configuration means the same
    file whatever directory the gateway is started from."""
    parsed = parse_dsn(dsn, kinds=("sqlite", "postgres", "mysql", "duckdb"), what="--backend")
    if parsed.kind in ("sqlite", "duckdb"):
        return f"{parsed.kind}:{parsed.path}"
    return dsn


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


def _catalog(options: InitOptions, drafted: Sequence[Drafted]) -> str:
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
"""
    ]
    # The dataset as `gateway catalog import` drafts it; unconditional, so that the policy
    # lines alone decide (conditional datasets also need approved applications).
    out.append(
        draft_toml(
            options.dataset,
            options.provider,
            "main",
            drafted,
            sharing_class="unconditional",
            not_shared={t.lower() for t in options.not_shared},
        )
    )
    return "\n".join(out)


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


def _policy(options: InitOptions, drafted: Sequence[Drafted]) -> str:
    role = f"role:{options.consumer_department}-reader"
    dept = options.consumer_department
    not_shared = {t.lower() for t in options.not_shared}
    lines = [
        f"""# Policy: who sees what. Lines are comma-separated; `#` starts a comment.
#
# p,  subject, department, dataset.table.column|dataset.table.*, select, purpose|*,
#     allow|mask|mask:<kind>|deny, expiry
#     The most specific matching line decides a column (one column before a whole
#     table), a deny before an allow on the same object; a column no line covers is
#     denied. expiry: an ISO-8601 UTC time, or `never` (a permanent rule). To order
#     rules by hand, put a priority first (lowest wins) and the effect last:
#     p, 5, <subject>, ..., deny, never, deny
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
    for table, columns in drafted:
        if table.name.lower() in not_shared:
            continue
        lines.append("\n")
        for column, suggestion in columns:
            rule = "mask" if suggestion.mask else "allow"
            obj = f"{options.dataset}.{table.name.lower()}.{column.name.lower()}"
            lines.append(f"p, {role}, {dept}, {obj}, select, *, {rule}, never\n")
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
