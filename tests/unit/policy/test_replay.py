"""RowCounter: replay's optional counting of the rows a plan would deliver."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from gateway.backends.base import BackendResult
from gateway.errors import QueryTimeoutError
from gateway.policy.replay import RowCounter


class _Backend:
    def __init__(self, rows: int, fail: bool = False) -> None:
        self.rows, self.fail, self.calls = rows, fail, 0

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> BackendResult:
        self.calls += 1
        if self.fail:
            raise QueryTimeoutError("slow")
        return cast(
            BackendResult, SimpleNamespace(rows=[(i,) for i in range(min(self.rows, max_rows))])
        )


def _explained(allowed: int) -> Any:
    plan = SimpleNamespace(backend="b", sql="SELECT 1", cap=SimpleNamespace(allowed=allowed))
    return SimpleNamespace(plan=plan)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_counts_what_the_consumer_would_get_within_the_row_budget() -> None:
    backend = _Backend(rows=50)
    counter = RowCounter({"b": cast(Any, backend)}, time_budget_s=5, max_rows=10)
    assert counter.count(_explained(allowed=3)) == 3  # truncated at the limit: 3 delivered
    assert counter.count(_explained(allowed=100)) == "> 10"  # the budget stopped the count
    assert counter.count(_explained(allowed=80)) == "> 10"
    assert counter.count(None) is None
    assert counter.count(cast(Any, SimpleNamespace(plan=None))) is None
    few = RowCounter({"b": cast(Any, _Backend(rows=2))}, time_budget_s=5, max_rows=10)
    assert few.count(_explained(allowed=100)) == 2


def test_a_spent_time_budget_counts_nothing_and_errors_are_named() -> None:
    clock = _Clock()
    backend = _Backend(rows=1)
    counter = RowCounter({"b": cast(Any, backend)}, time_budget_s=2, max_rows=10, clock=clock)
    assert counter.count(_explained(5)) == 1
    clock.now += 2.5
    assert counter.count(_explained(5)) is None
    assert backend.calls == 1
    slow = RowCounter({"b": cast(Any, _Backend(1, fail=True))}, time_budget_s=2, max_rows=10)
    assert slow.count(_explained(5)) == "error: query_timeout"


def test_replay_explains_as_the_system_a_token_would_carry() -> None:
    """The replayed caller is the live one, search path included (unqualified table
    names of an own-data deployment resolve the same in replay and explain)."""
    from gateway.auth.systems import RegisteredSystem
    from gateway.policy.replay import system_principal

    system = RegisteredSystem(
        system_id="civ-app",
        department="civ",
        name=cast(Any, "x"),
        attributes={"district": "d"},
        purposes=frozenset({"p"}),
        status="active",
        keys={},
        search_path=("civil",),
    )
    policy = cast(Any, SimpleNamespace(registry={"civ-app": system}))
    principal = system_principal(policy, "civ-app")
    assert principal == system.principal()
    assert principal is not None and principal.search_path == ("civil",)
    assert system_principal(policy, "nobody") is None
