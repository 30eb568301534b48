"""Decide: what a principal may see, compiled from casbin into a DecisionSnapshot.

pycasbin's ``enforce`` is a linear scan over every policy line (3–6 ms at 1k lines, see
research/tech-probe.md §3.2), so it is never called per request: a snapshot is compiled
once per (principal, purpose, policy version) and reused until a matched rule expires.

Casbin is wrapped, not exposed: there is no way to switch enforcement off, and every
default denies — a column with no matching rule, a dataset that is 不予共享, a row filter
that cannot be bound, a policy file that does not load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import casbin
from casbin.util import key_match

from gateway.cache import LruCache
from gateway.catalog import Catalog, SharingClass, Table
from gateway.domain import (
    ColumnAction,
    ColumnDecision,
    DecisionSnapshot,
    MaskSpec,
    Principal,
    TableDecision,
)
from gateway.errors import ConfigurationError, PolicyEngineError
from gateway.i18n import Message, msg
from gateway.policy.filters import RowFilterTemplate, parse_row_filter
from gateway.policy.grants import Grant, GrantSource, NoGrants
from gateway.query.rewrite.masks import mask_key_column

__all__ = ["CasbinPolicyEngine", "PolicyEngine", "PolicyFiles"]

ACTION = "select"


class PolicyEngine(Protocol):
    """The decision seam. Implementations must fail closed."""

    @property
    def version(self) -> str: ...

    def snapshot(self, principal: Principal, purpose: str, now: datetime) -> DecisionSnapshot:
        """Decisions for every catalog table. Raises PolicyEngineError if the policy
        cannot be evaluated."""
        ...


@dataclass(frozen=True, slots=True)
class PolicyFiles:
    model_text: str
    policy_text: str


@dataclass(frozen=True, slots=True)
class _Line:
    """A p2/p3 line, pre-parsed at load time."""

    sub: str
    dom: str
    obj: str
    purpose: str
    value: str
    expiry: str


def iso(now: datetime) -> str:
    """The timestamp format of the policy's expiry column; compared as strings."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expiry(text: str, where: str) -> datetime:
    """An expiry field's time (``never`` is read as :data:`PERMANENT` at load). Raises
    ConfigurationError naming ``where``."""
    return _parse_expiry(PERMANENT if text.lower() == "never" else text, where)


def _parse_expiry(text: str, where: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ConfigurationError(
            f"{where}: expiry {text!r} must be an ISO-8601 UTC timestamp like "
            "2027-01-01T00:00:00Z, or never"
        ) from None


class CasbinPolicyEngine:
    """PolicyEngine over a casbin RBAC-with-domains model (see policies/model.conf)."""

    def __init__(
        self,
        catalog: Catalog,
        files: PolicyFiles,
        *,
        version: str,
        check_mask: Callable[[MaskSpec, str], None],
        cache_size: int = 1024,
        grants: GrantSource | None = None,
    ) -> None:
        self._catalog = catalog
        self._version = version
        #: Approved applications: conditional datasets are served only under one.
        self._grants: GrantSource = grants or NoGrants()
        self._compile_lock = threading.Lock()
        self._enforcer = _load_enforcer(files)
        self._cache: LruCache[tuple[object, ...], DecisionSnapshot] = LruCache(cache_size)
        self._filters = [_line(r, "p2") for r in self._enforcer.get_named_policy("p2")]
        self._limits = [_line(r, "p3") for r in self._enforcer.get_named_policy("p3")]
        self._templates: dict[str, RowFilterTemplate] = {}
        validate_policy(self._enforcer, catalog, check_mask)
        for line in self._filters:
            table = catalog.table(line.obj)
            if table is None:  # validate_policy refused this already; stay closed anyway
                raise ConfigurationError(f"p2 line names unknown table {line.obj!r}")
            self._templates[line.value] = parse_row_filter(line.value, table)

    @property
    def version(self) -> str:
        return self._version

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def policy_lines(self, ptype: str) -> list[list[str]]:
        """The loaded lines of one policy type (``p``, ``p2``, ``p3``, ``g``), for
        ``gateway check`` and explain views."""
        if ptype.startswith("g"):
            return [list(r) for r in self._enforcer.get_named_grouping_policy(ptype)]
        return [list(r) for r in self._enforcer.get_named_policy(ptype)]

    def snapshot(self, principal: Principal, purpose: str, now: datetime) -> DecisionSnapshot:
        # The grants' counter is part of the key: an approval, revocation or expiry makes
        # every cached decision of the old state unreachable at once.
        epoch = self._grants.epoch()
        key = (principal.cache_key(), purpose, epoch)
        cached = self._cache.get(key)
        # A snapshot is used only until its earliest matched rule expires; then it is
        # compiled again (and replaces the stale entry).
        if cached is not None and (cached.valid_until is None or now < cached.valid_until):
            return cached
        # One compilation at a time: casbin is not thread-safe, and its matcher evaluation
        # (simpleeval, ast.parse) run in several threads at once has raised CPython's
        # "AST constructor recursion depth mismatch" under load (a 503 for that request).
        # Compiling is rare (snapshots are cached), so the lock costs nothing warm.
        with self._compile_lock:
            cached = self._cache.get(key)
            if cached is not None and (cached.valid_until is None or now < cached.valid_until):
                return cached
            try:
                snap = replace(self._compile(principal, purpose, now), grants_epoch=epoch)
            except (ConfigurationError, PolicyEngineError):
                raise
            except Exception as exc:  # casbin raised: fail closed
                raise PolicyEngineError(
                    "The access policy could not be evaluated; no data was served.",
                    internal_detail=f"{type(exc).__name__}: {exc}",
                ) from exc
            self._cache.put(key, snap)
        return snap

    # -- compilation -------------------------------------------------------------------

    def policy_snapshot(
        self, principal: Principal, purpose: str, now: datetime
    ) -> DecisionSnapshot:
        """What the policy files alone decide, before any grant narrows or refuses a
        conditional dataset: what a grantee would get (for ``gateway check`` and officers'
        explanations). Never used to serve data."""
        with self._compile_lock:
            return self._compile(principal, purpose, now, grants_apply=False)

    def _compile(
        self, principal: Principal, purpose: str, now: datetime, *, grants_apply: bool = True
    ) -> DecisionSnapshot:
        now_s = iso(now)
        subjects = self._subjects(principal)
        expiries: list[str] = []
        tables: dict[str, TableDecision] = {}
        grants = self._grants.grants_of(principal.department)
        for table in self._catalog.tables():
            decision = self._decide_table(table, principal, subjects, purpose, now_s, expiries)
            sharing = self._catalog.sharing_class_of(table)
            if grants_apply and sharing is SharingClass.CONDITIONAL:
                decision = _under_grant(decision, table, principal, purpose, now, grants, expiries)
            tables[table.qualified_name] = decision
        future = [e for e in expiries if e > now_s]
        return DecisionSnapshot(
            policy_version=self._version,
            principal_key=principal.cache_key(),
            purpose=purpose,
            tables=tables,
            valid_until=_parse_expiry(min(future), "policy") if future else None,
        )

    def _subjects(self, principal: Principal) -> frozenset[str]:
        roles = self._enforcer.get_implicit_roles_for_user(principal.system, principal.department)
        return frozenset([principal.system, *roles])

    def _decide_table(
        self,
        table: Table,
        principal: Principal,
        subjects: frozenset[str],
        purpose: str,
        now_s: str,
        expiries: list[str],
    ) -> TableDecision:
        if self._catalog.sharing_class_of(table) is SharingClass.NOT_SHARED:
            deny = {
                c: ColumnDecision(c, ColumnAction.DENY, rule=("catalog", "not_shared"))
                for c in table.columns
            }
            own = table.sharing_class is SharingClass.NOT_SHARED
            return TableDecision(
                table.dataset,
                table.name,
                deny,
                refusal=(
                    f"table {table.qualified_name} is not shared (不予共享)"
                    if own
                    else f"dataset {table.dataset} is not shared (不予共享)"
                ),
            )
        columns: dict[str, ColumnDecision] = {}
        for col in table.columns.values():
            obj = f"{table.qualified_name}.{col.name}"
            ok, rule = self._enforcer.enforce_ex(
                principal.system, principal.department, obj, ACTION, purpose, now_s
            )
            columns[col.name] = _column_decision(col.name, col.default_mask, ok, rule)
            if rule:
                expiries.append(rule[7])
        matched_filters = self._matching(
            self._filters, table.qualified_name, principal, subjects, purpose, now_s, exact=True
        )
        self._cross_check(matched_filters, "2", principal, table.qualified_name, purpose, now_s)
        expiries.extend(line.expiry for line in matched_filters)
        refusal = None
        bound: list[str] = []
        for line in matched_filters:
            try:
                bound.append(self._templates[line.value].bind(principal.template_values()))
            except KeyError as missing:
                refusal = (
                    f"table {table.qualified_name} has a row filter that needs the attribute "
                    f"{missing.args[0]!r}, which system {principal.system} does not have"
                )
        limits = self._matching(
            self._limits, table.qualified_name, principal, subjects, purpose, now_s, exact=False
        )
        expiries.extend(line.expiry for line in limits)
        # No matching p3 line: the catalog's default is the table's limit (design.md "Row
        # limits"), so every table a query reads has a limit of its own.
        max_rows = min(
            (int(line.value) for line in limits),
            default=self._catalog.default_max_rows_of(table.dataset),
        )
        return TableDecision(
            table.dataset,
            table.name,
            columns,
            row_filters=tuple(bound),
            max_rows=max_rows,
            refusal=refusal,
        )

    @staticmethod
    def _matching(
        lines: Iterable[_Line],
        obj: str,
        principal: Principal,
        subjects: frozenset[str],
        purpose: str,
        now_s: str,
        *,
        exact: bool,
    ) -> list[_Line]:
        # The same predicate as m2/m3 in model.conf; casbin's enforce returns only the first
        # match, and every filter must apply, so the lines are enumerated here and the
        # result is cross-checked against casbin (see _cross_check).
        return [
            line
            for line in lines
            if line.sub in subjects
            and line.dom == principal.department
            and (line.obj == obj if exact else key_match(obj, line.obj))
            and line.purpose in ("*", purpose)
            and now_s < line.expiry
        ]

    def _cross_check(
        self,
        matched: list[_Line],
        ctx: str,
        principal: Principal,
        obj: str,
        purpose: str,
        now_s: str,
    ) -> None:
        context = self._enforcer.new_enforce_context(ctx)
        casbin_says = self._enforcer.enforce(
            context, principal.system, principal.department, obj, purpose, now_s
        )
        if casbin_says != bool(matched):
            raise PolicyEngineError(
                "The access policy could not be evaluated consistently; no data was served.",
                internal_detail=f"p{ctx} enumeration disagrees with casbin for {obj}",
            )


def _under_grant(
    decision: TableDecision,
    table: Table,
    principal: Principal,
    purpose: str,
    now: datetime,
    grants: Iterable[Grant],
    expiries: list[str],
) -> TableDecision:
    """A conditional dataset's table (有条件共享): refused without a grant covering the
    caller's system, purpose and this moment; otherwise the policy's decision narrowed by
    the newest such grant — columns it does not grant are denied, its masks replace the
    policy's, its row filter is ANDed, its row cap lowers the limit. Never wider than the
    policy: a column the policy denies stays denied."""
    name = table.qualified_name
    for grant in grants:
        # A grant that starts later makes this snapshot stale when it starts.
        if grant.valid_from is not None and grant.valid_from > now:
            expiries.append(iso(grant.valid_from))
    covering = [
        g
        for g in grants
        if g.covers(
            department=principal.department,
            system=principal.system,
            purpose=purpose,
            table=name,
            now=now,
        )
    ]
    if not covering:
        denied = {
            c: ColumnDecision(c, ColumnAction.DENY, rule=("grant", "none"))
            for c in decision.columns
        }
        return replace(
            decision,
            columns=denied,
            refusal=_no_grant_reason(name, table.dataset, principal, purpose, now, grants),
        )
    grant = max(covering, key=lambda g: (g.valid_from or now, g.id))
    if grant.valid_until is not None:
        expiries.append(iso(grant.valid_until))
    granted = grant.columns.get(name, frozenset())
    columns: dict[str, ColumnDecision] = {}
    for column, d in decision.columns.items():
        if d.action is ColumnAction.DENY:
            columns[column] = d
        elif column not in granted:
            columns[column] = ColumnDecision(
                column, ColumnAction.DENY, rule=("grant", grant.id, "not granted")
            )
        elif (mask := grant.masks.get(f"{name}.{column}")) is not None:
            columns[column] = ColumnDecision(
                column, ColumnAction.MASK, mask, rule=("grant", grant.id, f"mask:{mask}")
            )
        else:
            columns[column] = d
    refusal = decision.refusal
    row_filters = decision.row_filters
    template_text = grant.row_filters.get(name)
    if template_text is not None:
        try:
            bound = parse_row_filter(template_text, table).bind(principal.template_values())
            row_filters = (*row_filters, bound)
        except (KeyError, ConfigurationError) as problem:
            refusal = (
                f"grant {grant.id} has a row filter on {name} that cannot be applied to "
                f"system {principal.system} ({problem})"
            )
    limits = [n for n in (decision.max_rows, grant.row_cap) if n is not None]
    return replace(
        decision,
        columns=columns,
        row_filters=row_filters,
        max_rows=min(limits) if limits else None,
        refusal=refusal,
        grants=(grant.id,),
    )


def _no_grant_reason(
    name: str,
    dataset: str,
    principal: Principal,
    purpose: str,
    now: datetime,
    grants: Iterable[Grant],
) -> Message:
    """Why a conditional table is refused: the grant that covered it has expired (which
    one, and when: the consumer asks for a renewal), or no grant ever covered it."""
    expired = [
        g
        for g in grants
        if g.valid_until is not None
        and g.valid_until <= now
        and g.department == principal.department
        and principal.system in g.systems
        and g.purpose == purpose
        and name in g.columns
    ]
    if expired:
        latest = max(expired, key=lambda g: (g.valid_until or now, g.id))
        return msg(
            "the grant {grant} (application {application}) for table {table} expired at "
            "{expired_at}; ask for a renewal with POST /v1/applications/{application}/renewal",
            grant=latest.id,
            application=latest.application_id,
            table=name,
            expired_at=iso(latest.valid_until or now),
        )
    return msg(
        "table {table} is shared on condition (有条件共享) and no approved application "
        "covers system {system} for purpose {purpose!r}; apply with POST /v1/applications "
        "(dataset {dataset}) or ask your department's applicant (申请人)",
        table=name,
        system=principal.system,
        purpose=purpose,
        dataset=dataset,
    )


def _column_decision(
    column: str, default_mask: MaskSpec | None, ok: bool, rule: list[str]
) -> ColumnDecision:
    if not ok or not rule:
        return ColumnDecision(column, ColumnAction.DENY, rule=tuple(rule))
    text = rule[6].strip()
    if text == "allow":
        return ColumnDecision(column, ColumnAction.ALLOW, rule=tuple(rule))
    if text == "mask":
        if default_mask is None:  # validate_policy refuses this at load; stay closed anyway
            return ColumnDecision(column, ColumnAction.DENY, rule=tuple(rule))
        return ColumnDecision(column, ColumnAction.MASK, default_mask, rule=tuple(rule))
    if text.startswith("mask:"):
        return ColumnDecision(
            column, ColumnAction.MASK, MaskSpec.parse(text[len("mask:") :]), rule=tuple(rule)
        )
    return ColumnDecision(column, ColumnAction.DENY, rule=tuple(rule))


def _line(row: list[str], ptype: str) -> _Line:
    if len(row) != 6:
        raise ConfigurationError(f"{ptype} line {', '.join(row)!r} must have 6 fields")
    sub, dom, obj, purpose, value, expiry = (v.strip() for v in row)
    _parse_expiry(expiry, f"{ptype} line for {obj}")
    return _Line(sub, dom, obj, purpose, value, expiry)


#: The casbin model the package ships (policy directories need no copy; one there wins).
MODEL_CONF = Path(__file__).with_name("model.conf")

#: The expiry a permanent rule (``never``) stands for: later than any request's time.
PERMANENT = "9999-12-31T23:59:59Z"
_EXPIRY_FIELD = {"p": 7, "p2": 5, "p3": 5}


#: Priorities a short p line gets (lowest wins): the more specific object first, and at
#: the same specificity a denial before an allow or mask.
_SPECIFIC_PRIORITY: Final[dict[str, int]] = {"column": 10, "table": 20, "wider": 30}
_DENY_BONUS: Final = 5


def implied_priority(obj: str, rule: str) -> int:
    """The priority of a column rule written without one: 10 for one column
    (``ds.t.col``), 20 for a table (``ds.t.*``), 30 for anything wider; 5 less for a
    deny rule, so that ``deny`` beats ``allow`` on the same object while a rule naming one
    column still beats a table-wide one."""
    parts = obj.split(".")
    if len(parts) == 3 and "*" not in parts[2]:
        specific = _SPECIFIC_PRIORITY["column"]
    elif len(parts) == 3 and parts[2] == "*" and "*" not in parts[1]:
        specific = _SPECIFIC_PRIORITY["table"]
    else:
        specific = _SPECIFIC_PRIORITY["wider"]
    return specific - (_DENY_BONUS if rule == "deny" else 0)


def normalise_line(ptype: str, values: list[str]) -> list[str]:
    """A policy line as the casbin model reads it, from the shorter forms officers may
    write: ``never`` in the expiry field (a permanent rule needs no invented far-future
    date, which readers then mistake for a real deadline), and a ``p`` line without the
    priority and the effect (``p, sub, dom, obj, select, purpose, rule, expiry``): the
    priority follows from the object (:func:`implied_priority`) and the effect from the
    rule (deny for ``deny``, allow otherwise), so nobody manages numbers or writes
    ``deny`` twice unless they want to."""
    if ptype == "p" and len(values) == 7:
        sub, dom, obj, act, purpose, rule, expiry = values
        effect = "deny" if rule == "deny" else "allow"
        values = [
            str(implied_priority(obj, rule)),
            sub,
            dom,
            obj,
            act,
            purpose,
            rule,
            expiry,
            effect,
        ]
    index = _EXPIRY_FIELD.get(ptype)
    if index is not None and len(values) > index and values[index].lower() == "never":
        values = [*values[:index], PERMANENT, *values[index + 1 :]]
    return values


def _load_enforcer(files: PolicyFiles) -> casbin.Enforcer:
    try:
        model = casbin.Enforcer.new_model(text=files.model_text)
        enforcer = casbin.Enforcer(model)
        # casbin logs every enforce() at INFO/WARNING; decisions are audited instead. A
        # detached logger silences it without touching the process-wide logging tree.
        enforcer.logger = logging.Logger("gateway.policy.casbin", level=logging.CRITICAL)
        adapter_lines = [
            line
            for line in files.policy_text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        for raw in adapter_lines:
            fields = [f.strip() for f in raw.split(",")]
            ptype, values = fields[0], normalise_line(fields[0], fields[1:])
            if ptype.startswith("p"):
                enforcer.get_model().add_policy("p", ptype, values)
            elif ptype.startswith("g"):
                enforcer.get_model().add_policy("g", ptype, values)
            else:
                raise ConfigurationError(f"policy line {raw!r}: unknown type {ptype!r}")
        enforcer.build_role_links()
        enforcer.get_model().sort_policies_by_priority()
    except ConfigurationError:
        raise
    except Exception as exc:
        raise ConfigurationError(f"the casbin model or policy does not load: {exc}") from exc
    return enforcer


def validate_policy(
    enforcer: casbin.Enforcer, catalog: Catalog, check_mask: Callable[[MaskSpec, str], None]
) -> None:
    """Refuse, at load, every policy line that would silently match nothing or
    misbehave: unknown objects (a typo must not open or close anything unnoticed),
    unknown rules and masks, malformed limits and expiries."""
    _validate_default_masks(catalog, check_mask)
    for row in enforcer.get_named_policy("p"):
        if len(row) != 9:
            raise ConfigurationError(f"p line {', '.join(row)!r} must have 9 fields")
        priority, _sub, _dom, obj, act, _purpose, rule, expiry, eft = row
        where = f"p line for {obj}"
        if not priority.isdigit():
            raise ConfigurationError(f"{where}: priority {priority!r} must be an integer")
        if act != ACTION:
            raise ConfigurationError(f"{where}: action must be {ACTION!r}")
        if eft not in ("allow", "deny"):
            raise ConfigurationError(f"{where}: effect must be allow or deny")
        if (rule == "deny") != (eft == "deny"):
            raise ConfigurationError(f"{where}: rule deny needs effect deny and vice versa")
        _parse_expiry(expiry, where)
        for column_type, default_mask in _objects(catalog, obj, where):
            if rule in ("allow", "deny"):
                continue
            if rule == "mask":
                if default_mask is None:
                    raise ConfigurationError(
                        f"{where}: rule 'mask' but the catalog names no default_mask; "
                        "write mask:<kind>"
                    )
            elif rule.startswith("mask:"):
                spec = MaskSpec.parse(rule[len("mask:") :])
                check_mask_on(
                    check_mask, spec, column_type, catalog.table(obj.rpartition(".")[0]), where
                )
            else:
                raise ConfigurationError(f"{where}: unknown rule {rule!r} (allow|mask[:kind]|deny)")
    for row in enforcer.get_named_policy("p2"):
        line = _line(row, "p2")
        if catalog.table(line.obj) is None:
            raise ConfigurationError(f"p2 line names unknown table {line.obj!r}")
    for row in enforcer.get_named_policy("p3"):
        line = _line(row, "p3")
        if not line.value.isdigit() or int(line.value) <= 0:
            raise ConfigurationError(f"p3 line for {line.obj}: max_rows must be a positive integer")
        if not any(key_match(t.qualified_name, line.obj) for t in catalog.tables()):
            raise ConfigurationError(f"p3 line names nothing in the catalog: {line.obj!r}")


def _validate_default_masks(catalog: Catalog, check_mask: Callable[[MaskSpec, str], None]) -> None:
    """Every default_mask of the catalog, used by a rule or not: an officer's typo is
    reported where it was written, not when a rule first says ``mask``."""
    for table in catalog.tables():
        for col in table.columns.values():
            if col.default_mask is not None:
                where = f"catalog column {table.qualified_name}.{col.name} default_mask"
                check_mask_on(check_mask, col.default_mask, col.type, table, where)


def check_mask_on(
    check_mask: Callable[[MaskSpec, str], None],
    spec: MaskSpec,
    column_type: str,
    table: Table | None,
    where: str,
) -> None:
    """``spec`` on a column of ``table``, including the other column it reads (the key of
    ``date_shift``), which must be a text or integer column of the same table."""
    try:
        check_mask(spec, column_type)
        key = mask_key_column(spec)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    if key is None or table is None:
        return
    key_col = table.column(key)
    if key_col is None or key_col.type not in ("text", "integer"):
        raise ConfigurationError(
            f"{where}: mask {str(spec)!r} needs key={key} to be a text or integer column "
            f"of {table.qualified_name} (columns: {', '.join(table.columns)})"
        )


def _objects(catalog: Catalog, obj: str, where: str) -> list[tuple[str, MaskSpec | None]]:
    """(type, default mask) of every catalog column ``obj`` names; raises if none."""
    dataset, _, rest = obj.partition(".")
    table_name, _, column = rest.partition(".")
    table = catalog.table(f"{dataset}.{table_name}")
    if table is None:
        raise ConfigurationError(f"{where}: unknown table {dataset}.{table_name}")
    if column == "*":
        return [(c.type, c.default_mask) for c in table.columns.values()]
    col = table.column(column)
    if col is None:
        raise ConfigurationError(f"{where}: {table.qualified_name} has no column {column!r}")
    return [(col.type, col.default_mask)]


def snapshot_decisions(snapshot: DecisionSnapshot, tables: Iterable[str]) -> Mapping[str, str]:
    """Flatten the decisions on ``tables`` for the audit record."""
    out: dict[str, str] = {}
    for name in tables:
        td = snapshot.table(name)
        if td is None:
            continue
        for col, d in td.columns.items():
            out[f"{name}.{col}"] = (
                f"mask:{d.mask}" if d.action is ColumnAction.MASK else d.action.value
            )
    return out
