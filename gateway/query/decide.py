"""Step 3, decide: what the principal may see, for its purpose, under the policy version
the request is decided under (a DecisionSnapshot, compiled by that version's engine and
cached)."""

from __future__ import annotations

from typing import ClassVar

from gateway.query.state import QueryState

__all__ = ["Decide"]


class Decide:
    """Raises PolicyEngineError (fail closed) when the policy cannot be evaluated."""

    name: ClassVar[str] = "decide"
    span: ClassVar[bool] = True

    def __call__(self, state: QueryState) -> QueryState:
        snapshot = state.need_policy().engine.snapshot(
            state.need_principal(), state.request.purpose, state.context.received
        )
        return state.evolve(snapshot=snapshot)
