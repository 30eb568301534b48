"""Plan: consumer SQL → the protected, transpiled SQL to run, with everything the audit
record and the response need. The stages run in the order written in ``STAGES``;
finished plans are cached by (SQL, principal, purpose, policy state, requested rows),
because parsing and rewriting is the gateway's main cost (research/tech-probe.md §2.6),
and by shape (the SQL with the literals compared with columns cut out, shape.py), so that
a new literal costs a cache hit and binding.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.schema import MappingSchema

from gateway.cache import LruCache
from gateway.catalog import Catalog
from gateway.domain import DecisionSnapshot, MaskSpec, Principal, ResultColumn
from gateway.errors import (
    AccessDeniedError,
    GatewayError,
    UnknownDatasetError,
    UnsupportedStatementError,
)
from gateway.i18n import msg
from gateway.policy.engine import snapshot_decisions
from gateway.query.describe import describe_columns
from gateway.query.parse import CONSUMER_DIALECT, parse_sql
from gateway.query.resolve import resolve_query, visible_schema
from gateway.query.rewrite.derive import build_derived_select, protect_tables
from gateway.query.rewrite.dialect import to_backend_sql
from gateway.query.rewrite.limit import LimitSource, RowCap, cap_row_limit
from gateway.query.rewrite.masks import (
    MaskContext,
    mask_expression,
    masked_type,
    redact_key_material,
)
from gateway.query.rewrite.portable import make_portable
from gateway.query.rewrite.recursion import is_recursive
from gateway.query.shape import Shape, Template, make_template, shape_of
from gateway.query.state import QueryState
from gateway.query.validate import check_query_is_allowed

__all__ = ["STAGES", "Plan", "PlanCacheStats", "PlanQuery", "Planner", "row_limit"]

#: The planning stages, in order (each is a telemetry span of the same name).
STAGES = ("parse", "validate", "resolve", "rewrite")

StageFactory = Callable[[str], AbstractContextManager[Any]]


@dataclass(frozen=True, slots=True)
class Plan:
    #: What runs on the backend. Carries the department's pseudonym key: never log it.
    sql: str
    #: ``sql`` with the key material redacted: for the audit record and trace spans.
    audit_sql: str
    backend: str
    dialect: str
    tables: tuple[str, ...]
    columns: tuple[ResultColumn, ...]
    cap: RowCap
    decisions: Mapping[str, str]
    rules: Mapping[str, str]
    row_filters: tuple[str, ...]
    policy_version: str
    #: Rules that granted columns of *conditional* datasets (approvals relied upon).
    grants: tuple[str, ...] = ()
    #: The SQL holds a bounded recursive CTE (rewrite/recursion.py): a backend failure
    #: may be the bound, which execute.py reports as such.
    recursive: bool = False


@dataclass(slots=True)
class PlanCacheStats:
    """Plan-cache lookups so far, for metrics (read at collection time). Incremented
    without a lock, like the audit committer's BatchStats: two threads may lose an
    increment between them now and then, which a hit *rate* does not notice, and the
    request path pays one integer addition instead of a metric call."""

    hits: int = 0
    misses: int = 0


class Planner:
    """Builds (and caches) plans. Pure CPU work: no I/O happens here."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        backend_dialects: Mapping[str, str],
        mask_context: Callable[[Principal], MaskContext],
        max_rows_ceiling: int,
        cache_size: int,
    ) -> None:
        self._catalog = catalog
        self._dialects = dict(backend_dialects)
        self._mask_context = mask_context
        self._ceiling = max_rows_ceiling
        self._plans: LruCache[Hashable, Plan] = LruCache(cache_size)
        #: Shape key -> its template, or False for a shape planned by text only.
        self._templates: LruCache[Hashable, Template | bool] = LruCache(cache_size)
        self._schemas: LruCache[Hashable, MappingSchema] = LruCache(max(64, cache_size // 8))
        self._derived: LruCache[Hashable, exp.Select] = LruCache(max(256, cache_size))
        self.cache_stats = PlanCacheStats()

    @property
    def cached_plans(self) -> int:
        """Plans in the cache now."""
        return len(self._plans)

    def plan(
        self,
        sql: str,
        principal: Principal,
        snapshot: DecisionSnapshot,
        *,
        requested_max_rows: int | None = None,
        stage: StageFactory | None = None,
    ) -> tuple[Plan, bool]:
        """Return (plan, cache_hit). Raises the ClientError subclasses of each stage."""
        stage = stage or _no_stage
        snap_key = (
            snapshot.policy_version,
            snapshot.principal_key,
            snapshot.purpose,
            snapshot.valid_until,
            snapshot.grants_epoch,
        )
        key = (sql, snap_key, requested_max_rows)
        cached = self._plans.get(key)
        if cached is not None:
            self.cache_stats.hits += 1
            return cached, True
        shape = shape_of(sql, CONSUMER_DIALECT)
        shape_key = (shape.key, snap_key, requested_max_rows) if shape is not None else None
        if shape is not None:
            template = self._templates.get(shape_key)
            if isinstance(template, Template):
                # Same shape, other literals: a cache hit plus binding (module shape.py).
                self.cache_stats.hits += 1
                return template.bind(shape.values), True
        self.cache_stats.misses += 1
        plan = self._guarded_build(sql, principal, snapshot, snap_key, requested_max_rows, stage)
        self._plans.put(key, plan)
        if shape is not None and self._templates.get(shape_key) is None:
            self._templates.put(
                shape_key,
                self._template(shape, plan, principal, snapshot, snap_key, requested_max_rows),
            )
        return plan, False

    def _template(
        self,
        shape: Shape,
        exact: Plan,
        principal: Principal,
        snapshot: DecisionSnapshot,
        snap_key: Hashable,
        requested_max_rows: int | None,
    ) -> Template | bool:
        """The shape's template, or False (remembered: plan this shape by text only)."""
        try:
            sentinel_plan = self._guarded_build(
                shape.sentinel_sql, principal, snapshot, snap_key, requested_max_rows, _no_stage
            )
        except GatewayError:
            return False
        return make_template(sentinel_plan, shape, exact) or False

    def _guarded_build(
        self,
        sql: str,
        principal: Principal,
        snapshot: DecisionSnapshot,
        snap_key: Hashable,
        requested_max_rows: int | None,
        stage: StageFactory,
    ) -> Plan:
        try:
            return self._build(sql, principal, snapshot, snap_key, requested_max_rows, stage)
        except RecursionError:
            # Pathologically nested SQL exhausts the parser's stack: refuse, don't crash.
            raise UnsupportedStatementError(
                "The query is nested too deeply; simplify it."
            ) from None

    def _build(
        self,
        sql: str,
        principal: Principal,
        snapshot: DecisionSnapshot,
        snap_key: Hashable,
        requested_max_rows: int | None,
        stage: StageFactory,
    ) -> Plan:
        with stage("parse"):
            query = parse_sql(sql)
        with stage("validate"):
            check_query_is_allowed(query)
        with stage("resolve"):
            schema = self._schema(snap_key, snapshot)
            resolved = resolve_query(
                query, snapshot, self._catalog, schema, search_path=principal.search_path
            )
            columns = describe_columns(resolved.query, snapshot, self._catalog, schema)
        with stage("rewrite"):
            dialect = self._dialects[resolved.backend]
            allowed, by = self._allowed_rows(snapshot, resolved.tables, requested_max_rows)
            protected = protect_tables(
                resolved.query,
                lambda name: self._derived_select(snap_key, snapshot, principal, name, dialect),
                dialect=dialect,
            )
            portable = make_portable(protected, dialect)
            cap = cap_row_limit(portable, allowed, by)
            backend_sql = to_backend_sql(portable, dialect)
        decisions = snapshot_decisions(snapshot, resolved.tables)
        rules = _rules(snapshot, resolved.tables)
        return Plan(
            sql=backend_sql,
            audit_sql=redact_key_material(backend_sql, self._mask_context(principal)),
            backend=resolved.backend,
            dialect=dialect,
            tables=resolved.tables,
            columns=columns,
            cap=cap,
            decisions=decisions,
            rules=rules,
            row_filters=tuple(f for t in resolved.tables for f in snapshot.tables[t].row_filters),
            policy_version=snapshot.policy_version,
            # The approvals relied upon (有条件共享): the audit record names each grant.
            grants=tuple(sorted({g for t in resolved.tables for g in snapshot.tables[t].grants})),
            recursive=is_recursive(portable),
        )

    def _allowed_rows(
        self, snapshot: DecisionSnapshot, tables: tuple[str, ...], requested: int | None
    ) -> tuple[int, LimitSource]:
        """Rows the response may return, and who set that: the smallest limit of *every*
        table the query reads, anywhere in it (design.md "Row limits"), each table's
        being its ``p3`` line or else the catalog default — so mentioning a table with a
        high limit can never lift the limit of another — then the ceiling, then the
        caller's request (which names the limit only when strictly lower)."""
        allowed = min(row_limit(self._catalog, snapshot, t) for t in tables)
        by = LimitSource.POLICY
        if self._ceiling < allowed:
            allowed, by = self._ceiling, LimitSource.CEILING
        if requested is not None and requested < allowed:
            allowed, by = requested, LimitSource.MAX_ROWS
        if allowed <= 0:
            raise AccessDeniedError(msg("No rows may be returned under this policy."))
        return allowed, by

    def _schema(self, snap_key: Hashable, snapshot: DecisionSnapshot) -> MappingSchema:
        schema = self._schemas.get_or_compute(
            snap_key, lambda: visible_schema(snapshot, self._catalog, _masked_type)
        )
        # A copy per plan: MappingSchema memoises lookups keyed by the query's own table
        # nodes, which qualify then mutates, so a shared instance only ever grows and its
        # lookups slow down with every new SQL text (measured: cold plans x3.8 after 2,000).
        return schema.copy()

    def _derived_select(
        self,
        snap_key: Hashable,
        snapshot: DecisionSnapshot,
        principal: Principal,
        name: str,
        dialect: str,
    ) -> exp.Select:
        key = (snap_key, principal.department, name, dialect)
        derived = self._derived.get(key)
        if derived is None:
            table = self._catalog.table(name)
            decision = snapshot.table(name)
            if table is None or decision is None:  # resolve checked both; stay closed
                raise UnknownDatasetError(f"Table {name} is not in the catalog.")
            ctx = self._mask_context(principal)

            def mask(ref: exp.Column, spec: MaskSpec, column_type: str) -> exp.Expr:
                return mask_expression(spec, ref, column_type=column_type, dialect=dialect, ctx=ctx)

            derived = build_derived_select(table, decision, mask)
            self._derived.put(key, derived)
        return derived


def row_limit(catalog: Catalog, snapshot: DecisionSnapshot, table: str) -> int:
    """The row limit of ``table`` for the snapshot's principal and purpose (before the
    gateway's ceiling): its ``p3`` limit, else the catalog default of its dataset."""
    decision = snapshot.table(table)
    if decision is not None and decision.max_rows is not None:
        return decision.max_rows
    return catalog.default_max_rows_of(table.split(".", 1)[0])


def _masked_type(spec: MaskSpec | None, column_type: str) -> str:
    return masked_type(spec, column_type) if spec is not None else column_type


def _rules(snapshot: DecisionSnapshot, tables: tuple[str, ...]) -> dict[str, str]:
    return {
        f"{t}.{c}": ", ".join(d.rule) if d.rule else "default deny"
        for t in tables
        for c, d in snapshot.tables[t].columns.items()
    }


def _no_stage(_name: str) -> AbstractContextManager[Any]:
    return nullcontext()


class PlanQuery:
    """Step 4, plan: the consumer's SQL -> the protected SQL for its backend (cached).
    Raises the ClientError subclasses of parse, validate, resolve and rewrite."""

    name: ClassVar[str] = "plan"
    #: Its own stages (parse, validate, resolve, rewrite) are the spans.
    span: ClassVar[bool] = False

    def __init__(self, stage: StageFactory) -> None:
        self._stage = stage

    def __call__(self, state: QueryState) -> QueryState:
        plan, hit = state.need_policy().planner.plan(
            state.request.sql,
            state.need_principal(),
            state.need_snapshot(),
            requested_max_rows=state.request.max_rows,
            stage=self._stage,
        )
        return state.evolve(plan=plan, plan_cache_hit=hit)
