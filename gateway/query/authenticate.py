"""Step 1, authenticate: the bearer access token (or a person's session acting through one
of their department's systems) -> the Principal it stands for."""

from __future__ import annotations

from typing import ClassVar

from gateway.auth.tokens import TokenService
from gateway.query.state import QueryState

__all__ = ["Authenticate"]


class Authenticate:
    """Raises AuthenticationError (one vague public message; the reason is audited)."""

    name: ClassVar[str] = "authenticate"
    span: ClassVar[bool] = True

    def __init__(self, tokens: TokenService) -> None:
        self._tokens = tokens

    def __call__(self, state: QueryState) -> QueryState:
        if state.authenticator is not None:
            return state.evolve(principal=state.authenticator())
        return state.evolve(principal=self._tokens.authenticate(state.authorization))
