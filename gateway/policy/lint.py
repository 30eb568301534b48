"""The first pass of ``gateway check``: every mistake of a policy directory in one run,
each with ``file:line`` and, for a misspelt name, the closest known one.

Loading (:func:`gateway.policy.bundle.bundle_from_source`) stops at the first error —
right for start-up, where any error must stop the gateway, but an officer fixing a
directory wants them all. So this pass reads the files itself, unit by unit (a dataset,
a system, a policy line), and records what each unit's own validation says, plus what
loads but can only be a mistake: a purpose no catalog entry defines, a ``g`` line naming a
system nobody registered, a subject that is neither a system nor a role. It reuses the
loaders' validation, never restates it.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gateway.auth.systems import SystemRegistry
from gateway.catalog import Catalog
from gateway.catalog.load import parse_catalog
from gateway.domain import MaskSpec
from gateway.errors import ConfigurationError
from gateway.policy.check import Finding
from gateway.policy.engine import check_mask_on, normalise_line, parse_expiry
from gateway.policy.filters import parse_row_filter
from gateway.policy.versions import inline_keys

__all__ = ["lint_directory"]

_FIELDS = {"p": 9, "p2": 6, "p3": 6, "g": 3}
_RULE = re.compile(r"^(allow|deny|mask|mask:.+)$")

CheckMask = Callable[[MaskSpec, str], None]


def lint_directory(policy_dir: Path, check_mask: CheckMask) -> list[Finding]:
    """Every error found in ``policy_dir``'s catalog.toml, systems.toml and policy.csv."""
    findings: list[Finding] = []
    catalog_text = _read(policy_dir / "catalog.toml", findings)
    systems_text = _read(policy_dir / "systems.toml", findings)
    policy_text = _read(policy_dir / "policy.csv", findings)
    catalog = _lint_catalog(catalog_text, findings) if catalog_text is not None else None
    systems: set[str] = set()
    if systems_text is not None:
        systems = _lint_systems(systems_text, catalog, policy_dir, findings)
    if policy_text is not None and catalog is not None:
        _lint_policy(policy_text, catalog, systems, check_mask, findings)
    return findings


def _read(path: Path, findings: list[Finding]) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(Finding("error", path.name, f"cannot read it: {exc}", path.name))
        return None


def _error(findings: list[Finding], location: str, subject: str, message: str) -> None:
    findings.append(Finding("error", subject, message, location))


def _toml(text: str, name: str, findings: list[Finding]) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        _error(findings, f"{name}:{line}" if line else name, name, f"invalid TOML: {exc}")
        return None


def _line_of(text: str, *headers: str) -> int | None:
    """The line of the first ``[header]`` (or ``[[header]]``) found, most specific first."""
    for header in headers:
        pattern = re.compile(r"^\s*\[\[?\s*" + re.escape(header) + r"\s*\]\]?\s*$", re.M)
        match = pattern.search(text)
        if match is not None:
            return text.count("\n", 0, match.start()) + 1
    return None


def _key_line(text: str, key: str) -> int | None:
    match = re.search(r"^\s*" + re.escape(key) + r"\s*=", text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _at(name: str, line: int | None) -> str:
    return f"{name}:{line}" if line else name


def _lint_catalog(text: str, findings: list[Finding]) -> Catalog | None:
    """Each dataset validated on its own; the catalog of the valid ones (None when the
    top level itself is wrong)."""
    raw = _toml(text, "catalog.toml", findings)
    if raw is None:
        return None
    datasets = raw.get("datasets", {})
    top = {k: v for k, v in raw.items() if k not in ("datasets", "search_path")}
    try:
        parse_catalog({**top, "datasets": {}}, origin="catalog.toml")
    except ConfigurationError as exc:
        _error(findings, "catalog.toml", "catalog.toml", exc.detail)
        return None
    good: dict[str, Any] = {}
    for name, dataset in datasets.items() if isinstance(datasets, dict) else ():
        try:
            parse_catalog({**top, "datasets": {name: dataset}}, origin="catalog.toml")
        except ConfigurationError as exc:
            table = re.search(r"datasets\.[a-z0-9_]+\.tables\.[a-z0-9_]+", exc.detail)
            headers = [table.group(0)] if table else []
            line = _line_of(text, *headers, f"datasets.{name}")
            _error(findings, _at("catalog.toml", line), f"datasets.{name}", exc.detail)
            continue
        good[name] = dataset
    try:
        return parse_catalog({**raw, "datasets": good}, origin="catalog.toml")
    except ConfigurationError as exc:  # the search path names a dataset in error above
        line = _key_line(text, "search_path")
        _error(findings, _at("catalog.toml", line), "search_path", exc.detail)
        return parse_catalog({**top, "datasets": good}, origin="catalog.toml")


def _lint_systems(
    text: str, catalog: Catalog | None, policy_dir: Path, findings: list[Finding]
) -> set[str]:
    """Each system validated on its own; the ids of every system the file declares (a
    broken entry is still a system policy lines may name: reported once, here)."""
    raw = _toml(text, "systems.toml", findings)
    if raw is None:
        return set()
    bases = [policy_dir.resolve(), policy_dir.resolve().parent]
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            inline_keys(line, bases)
        except ConfigurationError as exc:
            _error(findings, f"systems.toml:{number}", "public_key", exc.detail)
    # Reported line by line above; each system below then names its own missing key.
    with contextlib.suppress(ConfigurationError, tomllib.TOMLDecodeError):
        raw = tomllib.loads(inline_keys(text, bases))
    systems = raw.get("systems", {})
    if not isinstance(systems, dict):
        _error(findings, "systems.toml", "systems.toml", "[systems] must be a table")
        return set()
    for system_id, entry in systems.items():
        where = _at("systems.toml", _line_of(text, f"systems.{system_id}"))
        try:
            registry = SystemRegistry.parse(
                {"version": raw.get("version", 1), "systems": {system_id: entry}},
                base_dir=policy_dir.resolve(),
                known_departments=catalog.departments.keys() if catalog else None,
                known_purposes=catalog.purposes.keys() if catalog else None,
            )
        except ConfigurationError as exc:
            _error(findings, where, f"systems.{system_id}", _suggest_in(exc.detail, catalog))
            continue
        system = registry.systems[system_id]
        if catalog is not None:
            for dataset in system.search_path:
                if dataset not in catalog.datasets:
                    _error(
                        findings,
                        where,
                        f"systems.{system_id}.search_path",
                        f"unknown dataset {dataset!r}" + _close(dataset, catalog.datasets),
                    )
    return set(systems)


def _suggest_in(detail: str, catalog: Catalog | None) -> str:
    """``unknown department 'x'`` / ``unknown purpose 'x'`` with the closest known one."""
    match = re.search(r"unknown (department|purpose) '([^']*)'", detail)
    if match is None or catalog is None:
        return detail
    known = catalog.departments if match.group(1) == "department" else catalog.purposes
    return detail + _close(match.group(2), known)


def _close(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _lint_policy(
    text: str,
    catalog: Catalog,
    systems: set[str],
    check_mask: CheckMask,
    findings: list[Finding],
) -> None:
    lines = [
        (number, [f.strip() for f in raw.split(",")])
        for number, raw in enumerate(text.splitlines(), start=1)
        if raw.strip() and not raw.lstrip().startswith("#")
    ]
    # A role exists when some g line grants it; a subject that is neither a registered
    # system nor such a role matches no caller (a typo that silently grants nothing).
    roles = {fields[2] for _n, fields in lines if fields[0] == "g" and len(fields) > 2}
    for number, fields in lines:
        where = f"policy.csv:{number}"
        ptype = fields[0]
        expected = _FIELDS.get(ptype)
        if expected is None:
            _error(findings, where, ptype, f"unknown line type {ptype!r} (p, p2, p3 or g)")
            continue
        if ptype == "p" and len(fields) - 1 == 7:
            # The short form (no priority, no effect): checked as the engine reads it.
            fields = [ptype, *normalise_line(ptype, fields[1:])]
        if len(fields) - 1 != expected:
            _error(
                findings,
                where,
                ptype,
                f"a {ptype} line has {expected} fields after {ptype!r}"
                + (" (or 7: without priority and effect)" if ptype == "p" else "")
                + f", this one "
                f"{len(fields) - 1}: " + ", ".join(fields),
            )
            continue
        for message in _line_problems(ptype, fields[1:], catalog, systems, roles, check_mask):
            _error(findings, where, f"{ptype} line", message)


def _line_problems(
    ptype: str,
    values: list[str],
    catalog: Catalog,
    systems: set[str],
    roles: set[str],
    check_mask: CheckMask,
) -> list[str]:
    if ptype == "g":
        user, _role, dom = values
        out = _department(dom, catalog)
        if not user.startswith("role:") and user not in systems and user not in roles:
            out.append(
                f"g line names system {user!r}, which systems.toml does not register"
                + _close(user, systems)
            )
        return out
    if ptype == "p":
        priority, sub, dom, obj, act, purpose, rule, expiry, eft = values
        out = _subject(sub, systems, roles) + _department(dom, catalog)
        out += _purpose(purpose, catalog) + _expiry(expiry)
        if not priority.isdigit():
            out.append(f"priority {priority!r} must be an integer")
        if act != "select":
            out.append(f"action {act!r} must be select")
        if eft not in ("allow", "deny") or (rule == "deny") != (eft == "deny"):
            out.append("the last field is deny for a deny rule and allow otherwise")
        if not _RULE.match(rule):
            out.append(f"unknown rule {rule!r} (allow, mask, mask:<kind> or deny)")
        columns, problem = _columns(obj, catalog)
        table_name = obj.rpartition(".")[0]
        if problem:
            return [*out, problem]
        for ctype, default in columns:
            spec = MaskSpec.parse(rule[5:]) if rule.startswith("mask:") else default
            if rule == "mask" and default is None:
                out.append(f"rule mask but the catalog names no default_mask for {obj}")
                break
            if rule.startswith("mask") and spec is not None:
                try:
                    # The same check as at load (with date_shift's key column), so
                    # `gateway check` reports it even when other lines fail too.
                    check_mask_on(check_mask, spec, ctype, catalog.table(table_name), obj)
                except ConfigurationError as exc:
                    kinds = re.findall(r"'([a-z_]+)'", exc.detail.partition("expected")[2])
                    out.append(exc.detail + _close(spec.kind, kinds))
                    break
        return out
    sub, dom, obj, purpose, value, expiry = values
    out = _subject(sub, systems, roles) + _department(dom, catalog)
    out += _purpose(purpose, catalog) + _expiry(expiry)
    if ptype == "p3":
        if not value.isdigit() or int(value) <= 0:
            out.append(f"max rows {value!r} must be a positive integer")
        if obj.endswith(".*"):
            if obj[:-2] not in catalog.datasets:
                out.append(f"unknown dataset {obj[:-2]!r}" + _close(obj[:-2], catalog.datasets))
            return out
    table = catalog.table(obj)
    if table is None:
        out.append(f"unknown table {obj!r}" + _close(obj, _table_names(catalog)))
    elif ptype == "p2":
        try:
            parse_row_filter(value, table)
        except ConfigurationError as exc:
            out.append(exc.detail)
    return out


def _subject(sub: str, systems: set[str], roles: set[str]) -> list[str]:
    if sub in systems or sub in roles:
        return []
    if sub.startswith("role:"):
        return [f"role {sub!r} is held by no system (no g line grants it)" + _close(sub, roles)]
    return [
        f"subject {sub!r} is neither a registered system nor a role"
        + _close(sub, [*systems, *roles])
    ]


def _department(dom: str, catalog: Catalog) -> list[str]:
    if dom in catalog.departments:
        return []
    return [f"unknown department {dom!r}" + _close(dom, catalog.departments)]


def _purpose(purpose: str, catalog: Catalog) -> list[str]:
    if purpose == "*" or purpose in catalog.purposes:
        return []
    return [
        f"unknown purpose {purpose!r} (catalog.toml [purposes])" + _close(purpose, catalog.purposes)
    ]


def _expiry(expiry: str) -> list[str]:
    if expiry.lower() == "never":
        return []
    try:
        parse_expiry(expiry, "expiry")
    except ConfigurationError as exc:
        return [exc.detail]
    return []


def _table_names(catalog: Catalog) -> list[str]:
    return [t.qualified_name for t in catalog.tables()]


def _columns(obj: str, catalog: Catalog) -> tuple[list[tuple[str, MaskSpec | None]], str | None]:
    """(type, default mask) of each column ``obj`` names, or a problem with a suggestion."""
    table_name, _, column = obj.rpartition(".")
    table = catalog.table(table_name)
    if table is None:
        return [], f"unknown table {table_name!r}" + _close(table_name, _table_names(catalog))
    if column == "*":
        return [(c.type, c.default_mask) for c in table.columns.values()], None
    col = table.column(column)
    if col is None:
        return [], f"{table_name} has no column {column!r}" + _close(column, table.columns)
    return [(col.type, col.default_mask)], None
