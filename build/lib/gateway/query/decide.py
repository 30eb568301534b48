"""Step 3, decide: what the principal may see, for its purpose, under the policy in force
when the request arrived (a DecisionSnapshot, compiled by the policy engine and cached)."""

from __future__ import annotations

from typing import ClassVar

from gateway.policy.engine import PolicyEngine
from gateway.query.state import QueryState

__all__ = ["Decide"]


class Decide:
    """Raises PolicyEngineError (fail closed) when the policy cannot be evaluated."""

    name: ClassVar[str] = "decide"
    span: ClassVar[bool] = True

    def __init__(self, engine: PolicyEngine) -> None:
        self._engine = engine

    def __call__(self, state: QueryState) -> QueryState:
        snapshot = self._engine.snapshot(
            state.need_principal(), state.request.purpose, state.context.received
        )
        return state.evolve(snapshot=snapshot)
