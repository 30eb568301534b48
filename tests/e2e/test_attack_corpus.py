"""The attack corpus (tests/e2e/attack_corpus.py) against the real gateway on every backend.

For every attack: the outcome is the expected one (served / refused with its code / failed
closed), a served body is strict JSON and passes the entry's exact check, and no forbidden
string (tests/e2e/secrets_oracle.py) appears anywhere in the response — status line,
headers, body, error text. For every probe pair: both answers are identical, so the probe
learns nothing about the guessed value.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from tests.e2e.attack_corpus import (
    FAMILIES,
    Attack,
    Probe,
    build_attacks,
    build_probes,
    family_counts,
    picks,
)
from tests.e2e.harness import PURPOSES, Gateway
from tests.e2e.secrets_oracle import (
    SYSTEMS,
    demo_world,
    find_leaks,
    forbidden_for,
    masked_view,
    names_an_engine,
    response_text,
)

ATTACKS = build_attacks(demo_world())
PROBES = build_probes(demo_world())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _request_body(attack: Attack | Probe, sql: str) -> dict[str, Any]:
    body: dict[str, Any] = {"sql": sql}
    if isinstance(attack, Attack):
        if not attack.omit_purpose:
            body["purpose"] = PURPOSES[attack.system] if attack.purpose is None else attack.purpose
        body.update(attack.body)
    else:
        body["purpose"] = PURPOSES[attack.system]
    return body


def _send(gateway: Gateway, attack: Attack | Probe, sql: str) -> httpx.Response:
    auth = attack.auth if isinstance(attack, Attack) else "token"
    if auth == "token-exchange":
        return gateway.token_response(
            {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": gateway.assertion(attack.system),
            }
        )
    headers: dict[str, str] = {}
    if auth == "token":
        headers["Authorization"] = f"Bearer {gateway.token(attack.system)}"
    elif auth == "garbage":
        headers["Authorization"] = "Bearer not.a.token"
    elif auth == "assertion":
        headers["Authorization"] = f"Bearer {gateway.assertion(attack.system)}"
    elif auth != "none":
        raise ValueError(f"unknown auth mode {auth!r}")
    return gateway.client.post("/v1/query", json=_request_body(attack, sql), headers=headers)


def _json(resp: httpx.Response) -> Mapping[str, Any] | None:
    try:
        parsed = json.loads(resp.text, parse_constant=_reject_constant)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _outcome_problem(
    resp: httpx.Response, body: Mapping[str, Any] | None, expected: str
) -> str | None:
    """None if the response is one of the ``|``-separated expected outcomes."""
    status = resp.status_code
    code = body.get("code") if body is not None else None
    for option in expected.split("|"):
        kind, _, want_code = option.partition(":")
        if kind == "served" and status == 200:
            return None
        if kind == "refused" and 400 <= status < 500 and want_code in ("", code):
            return None
        if kind == "failed" and status >= 500 and want_code in ("", code):
            return None
    return f"expected {expected}, got {status} {code}"


def _describe(gateway: Gateway, sql: str, resp: httpx.Response) -> str:
    return f"[{gateway.backend}] {sql}\n -> {resp.status_code} {resp.text[:600]}"


def _check_response(
    gateway: Gateway, attack: Attack | Probe, sql: str, resp: httpx.Response
) -> Mapping[str, Any] | None:
    """Assert the common properties of any answer; return the parsed JSON body."""
    request = json.dumps(_request_body(attack, sql), ensure_ascii=False)
    leaks = find_leaks(response_text(resp), forbidden_for(attack.system), request)
    assert not leaks, f"LEAK {leaks[:10]}\n{_describe(gateway, sql, resp)}"
    body = _json(resp)
    assert body is not None, f"the body is not strict JSON\n{_describe(gateway, sql, resp)}"
    if resp.status_code != 200:
        assert resp.headers.get("content-type", "").startswith("application/problem+json"), (
            _describe(gateway, sql, resp)
        )
        assert isinstance(body.get("code"), str), _describe(gateway, sql, resp)
        assert "rows" not in body, _describe(gateway, sql, resp)
        # A consumer never learns which engine is behind the gateway (issue 8).
        engine = names_an_engine(body, request)
        assert engine is None, f"{engine}\n{_describe(gateway, sql, resp)}"
    return body


def test_corpus_shape() -> None:
    """At least 150 attacks over all ten families, 20 probe pairs, and enough legitimate
    queries that refusing everything cannot pass."""
    assert len(ATTACKS) >= 150
    assert len({a.id for a in ATTACKS}) == len(ATTACKS)
    assert len({p.id for p in PROBES}) == len(PROBES) >= 20
    counts = family_counts(ATTACKS)
    assert set(counts) == set(FAMILIES), counts
    assert all(n >= 10 for n in counts.values()), counts
    assert {a.system for a in ATTACKS} >= set(SYSTEMS)
    served = [a for a in ATTACKS if a.expect == "served"]
    refused = [a for a in ATTACKS if a.expect.startswith("refused")]
    assert len(served) >= 60 and len(refused) >= 60, (len(served), len(refused))
    assert sum(1 for a in served if a.check is not None) >= 50
    assert all(p.true_sql != p.false_sql for p in PROBES)


@pytest.mark.parametrize("system", SYSTEMS)
def test_oracle_accepts_everything_the_system_may_see(system: str) -> None:
    """No false positives: the whole masked view of each table (what SELECT * may serve)
    passes the scan, so a leak the oracle reports is a real one."""
    forbidden = forbidden_for(system)
    for table, rows in masked_view(system).items():
        text = json.dumps([list(r.values()) for r in rows], ensure_ascii=False)
        assert find_leaks(text, forbidden, f"SELECT * FROM {table}") == [], table


def _fake_response(payload: Any, *, escaped: bool) -> httpx.Response:
    content = json.dumps(payload, ensure_ascii=escaped).encode("utf-8")
    return httpx.Response(400, content=content, headers={"content-type": "application/json"})


def test_oracle_catches_every_kind_of_leak() -> None:
    """No false negatives on the kinds it knows: each planted value is reported, also
    inside longer text and behind JSON \\u escapes."""
    world = demo_world()
    pk = picks(world)
    outsider, insider = pk.sz, pk.lx
    street_part = insider[6][6:].split("号")[0] + "号"
    planted = {
        "raw id": f"id {outsider[2]}",
        "raw phone glued": f"x{insider[5]}y",
        "bank card": pk.grant_lx[4],
        "name": f"姓名{insider[1]}",
        "address": f"住址{street_part}",
        "outsider pseudonym": world.pseudonym("rsj", outsider[2]),
        "other department's pseudonym": world.pseudonym("ybj", insider[2]).upper(),
        "key material": world.keys["rsj"].hex(),
        "case record": world.data.incidents[0][2],
        "outsider birth date": next(
            p[3].isoformat()
            for p in world.data.people
            if p[7] != "历下区" and p[3].isoformat() in forbidden_for("rsj-subsidy").dates
        ),
        "filtered-out district": "市中区",
    }
    sql = "SELECT * FROM population.people"
    for kind, value in planted.items():
        for escaped in (False, True):
            text = response_text(_fake_response({"detail": value}, escaped=escaped))
            assert find_leaks(text, forbidden_for("rsj-subsidy"), sql), (kind, escaped)
    # A binary cell is sent as base64: decoded before the scan.
    b64 = base64.b64encode(insider[2].encode()).decode()
    text = response_text(_fake_response({"rows": [[b64]]}, escaped=False))
    assert find_leaks(text, forbidden_for("rsj-subsidy"), sql)
    # The city mask's published mapping (in a receipt's rewritten SQL) names every
    # district; only its exact arms are set aside, a district elsewhere still counts.
    arm = "CASE d WHEN '市中区' THEN '济南市' END"
    assert find_leaks(arm, forbidden_for("rsj-subsidy"), sql) == []
    assert find_leaks(f"{arm} WHERE d = '市中区'", forbidden_for("rsj-subsidy"), sql)
    # Echoing the attacker's own input is not a leak.
    assert find_leaks(f"bad id {outsider[2]}", forbidden_for("rsj-subsidy"), outsider[2]) == []
    # Birth dates are forbidden to tjj-stats, which sees only the year.
    assert find_leaks(insider[3].isoformat(), forbidden_for("tjj-stats"), sql)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
def test_attack(gateway: Gateway, attack: Attack) -> None:
    started = time.perf_counter()
    resp = _send(gateway, attack, attack.sql)
    elapsed = time.perf_counter() - started
    body = _check_response(gateway, attack, attack.sql, resp)
    problem = _outcome_problem(resp, body, attack.expected(gateway.backend))
    assert problem is None, f"{problem}\n{_describe(gateway, attack.sql, resp)}"
    if attack.max_seconds is not None:
        assert elapsed < attack.max_seconds, (
            f"took {elapsed:.1f}s\n{_describe(gateway, attack.sql, resp)}"
        )
    if resp.status_code == 200 and attack.check is not None and attack.auth == "token":
        assert body is not None
        wrong = attack.check(body)
        assert wrong is None, f"{wrong}\n{_describe(gateway, attack.sql, resp)}"


def _answer(resp: httpx.Response, body: Mapping[str, Any] | None) -> tuple[Any, ...]:
    if body is None:
        return (resp.status_code, None)
    return (
        resp.status_code,
        body.get("code"),
        body.get("rows"),
        body.get("row_count"),
        body.get("truncated"),
        json.dumps(body.get("columns"), sort_keys=True),
    )


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.id)
def test_probe_pair(gateway: Gateway, probe: Probe) -> None:
    true_resp = _send(gateway, probe, probe.true_sql)
    false_resp = _send(gateway, probe, probe.false_sql)
    true_body = _check_response(gateway, probe, probe.true_sql, true_resp)
    false_body = _check_response(gateway, probe, probe.false_sql, false_resp)
    problem = _outcome_problem(true_resp, true_body, probe.expected(gateway.backend))
    assert problem is None, f"{problem}\n{_describe(gateway, probe.true_sql, true_resp)}"
    assert _answer(true_resp, true_body) == _answer(false_resp, false_body), (
        "LEAK: the answer depends on the guessed value\n"
        f"{_describe(gateway, probe.true_sql, true_resp)}\n"
        f"{_describe(gateway, probe.false_sql, false_resp)}"
    )


def test_cached_plans_do_not_cross_systems(gateway: Gateway) -> None:
    """The same SQL from systems of one department (different districts) and of another
    department (other masks, other key): each answer is computed for its own principal,
    even when the plan cache already holds the text."""
    sql = "SELECT district, count(*), min(id_number) FROM population.people GROUP BY district"
    expected = {
        system: rows
        for system in ("rsj-subsidy", "rsj-portal", "ybj-insurance")
        for rows in [masked_view(system)["population.people"]]
    }
    for _round in range(2):
        for system, rows in expected.items():
            resp = gateway.query(system, sql)
            assert resp.status_code == 200, resp.text
            (district,) = {r["district"] for r in rows}
            want = [[district, len(rows), min(str(r["id_number"]) for r in rows)]]
            assert resp.json()["rows"] == want, (system, gateway.backend, resp.text[:300])
