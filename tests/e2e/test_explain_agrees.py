"""Explain never disagrees with the query path: over the whole attack corpus and every
legitimate query (SQLite), a query that explain says is refused is refused by
``POST /v1/query`` with the same status and code, and a query explain says is served is
either served with exactly the columns (and masks) explain named, or fails only where
explain cannot look — at execution on the backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.attack_corpus import Attack, build_attacks
from tests.e2e.harness import PURPOSES, Gateway
from tests.e2e.secrets_oracle import demo_world
from tests.e2e.test_legit_queries import CASES

#: Codes of refusals by steps before execution: explain must foresee every one of them.
PLAN_CODES = {
    "access_denied",
    "unknown_object",
    "unsupported_sql",
    "invalid_request",
    "purpose_not_allowed",
    "bad_request",
}


def _explainable(attack: Attack) -> bool:
    return (
        attack.auth == "token"
        and not attack.omit_purpose
        and set(attack.body) <= {"max_rows"}
        and isinstance(attack.purpose, str | None)
    )


QUERIES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        a.id,
        a.system,
        a.sql,
        {"purpose": PURPOSES[a.system] if a.purpose is None else a.purpose, **a.body},
    )
    for a in build_attacks(demo_world())
    if _explainable(a)
] + [(c.id, c.system, c.text(), {"purpose": PURPOSES[c.system]}) for c in CASES]


def test_the_property_covers_the_corpus() -> None:
    assert len(QUERIES) >= 300


@pytest.mark.parametrize(("qid", "system", "sql", "extra"), QUERIES, ids=[q[0] for q in QUERIES])
def test_explain_agrees_with_the_query(
    sqlite_gateway: Gateway, qid: str, system: str, sql: str, extra: dict[str, Any]
) -> None:
    gw = sqlite_gateway
    headers = {"Authorization": f"Bearer {gw.token(system)}"}
    explained = gw.client.post("/v1/explain", json={"sql": sql, **extra}, headers=headers)
    served = gw.client.post("/v1/query", json={"sql": sql, **extra}, headers=headers)
    if explained.status_code != 200:
        # The request itself is malformed (e.g. SQL too long): both refuse alike.
        assert explained.status_code == served.status_code, explained.text
        return
    verdict = explained.json()
    assert verdict["executed"] is False
    if verdict["verdict"] == "refused":
        refusal = verdict["refusal"]
        assert served.status_code == refusal["status"], (verdict, served.text)
        assert served.json()["code"] == refusal["code"]
        return
    if served.status_code == 200:
        assert served.json()["columns"] == verdict["columns"]
        assert served.json()["policy_version"] == verdict["policy_version"]
    else:
        assert served.json()["code"] not in PLAN_CODES, (verdict, served.text)
