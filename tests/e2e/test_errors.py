"""Errors say why, in the caller's language (issue 10, point 8), over HTTP: unknown JSON
members and wrong content types are refused naming what to send, the 413 states the
limit, syntax errors never show the parser's internals, ``Accept-Language: zh-CN`` gives
Chinese titles and details, and a response says who truncated it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.audit.store.memory import MemoryAuditStore
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway

PURPOSE = "employment_subsidy_review"
MAX_BODY = 4096


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("errors")
    with running_gateway(
        "sqlite",
        demo_dsn("sqlite", tmp),
        tmp,
        audit=MemoryAuditStore(demo_signer()),
        settings_overrides={"max_body_bytes": MAX_BODY},
    ) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def bearer(gw: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.token('rsj-subsidy')}"}


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_unknown_members_are_refused_by_name(gw: Gateway, bearer: dict[str, str]) -> None:
    body = {"sql": "SELECT 1", "purpose": PURPOSE, "max_row": 5, "timeout": 1}
    resp = gw.client.post("/v1/query", json=body, headers=bearer)
    assert resp.status_code == 400, resp.text
    problem = resp.json()
    assert problem["code"] == "invalid_request"
    assert problem["unknown_members"] == ["max_row", "timeout"]
    assert "max_row, timeout" in problem["detail"] and "max_rows" in problem["detail"]
    assert problem["audit_id"]


def test_a_body_of_the_wrong_type_is_415_naming_the_type_to_send(
    gw: Gateway, bearer: dict[str, str]
) -> None:
    sent = b'{"sql": "SELECT 1", "purpose": "employment_subsidy_review"}'
    resp = gw.client.post(
        "/v1/query", content=sent, headers={**bearer, "Content-Type": "text/plain"}
    )
    assert resp.status_code == 415, resp.text
    problem = resp.json()
    assert problem["code"] == "unsupported_media_type"
    assert problem["accept"] == "application/json"
    assert "Content-Type: application/json" in problem["detail"]
    assert resp.headers["content-type"].startswith("application/problem+json")
    # The token endpoint takes a form (RFC 7523), not JSON.
    resp = gw.client.post("/v1/token", json={"grant_type": "client_credentials"})
    assert resp.status_code == 415, resp.text
    assert resp.json()["accept"] == "application/x-www-form-urlencoded"


def test_json_with_a_structured_suffix_is_json(gw: Gateway, bearer: dict[str, str]) -> None:
    sent = (
        b'{"sql": "SELECT COUNT(*) AS n FROM legal_person.enterprises", '
        b'"purpose": "employment_subsidy_review"}'
    )
    resp = gw.client.post(
        "/v1/query",
        content=sent,
        headers={**bearer, "Content-Type": "application/vnd.gateway+json; charset=utf-8"},
    )
    assert resp.status_code == 200, resp.text


def test_413_states_the_limit(gw: Gateway, bearer: dict[str, str]) -> None:
    sql = "SELECT 1 " + "-" * (MAX_BODY * 2)
    resp = gw.client.post("/v1/query", json={"sql": sql, "purpose": PURPOSE}, headers=bearer)
    assert resp.status_code == 413, resp.text[:300]
    problem = resp.json()
    assert problem["max_body_bytes"] == MAX_BODY
    assert str(MAX_BODY) in problem["detail"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name FROM population.people ORDER BY",
        "SELECT substring() FROM population.people",
        "SELECT name FROM population.people LIMIT",
        "SELECT * FROM population.people JOIN",
        "SELECT name FROM population.people WHERE age BETWEEN 1",
        "SELECT 'unclosed FROM population.people",
        "SELECT (name FROM population.people",
    ],
)
def test_syntax_errors_never_show_parser_internals(
    gw: Gateway, bearer: dict[str, str], sql: str
) -> None:
    for language in ("en", "zh-CN"):
        resp = gw.client.post(
            "/v1/query",
            json={"sql": sql, "purpose": PURPOSE},
            headers={**bearer, "Accept-Language": language},
        )
        assert resp.status_code == 400, resp.text
        problem = resp.json()
        assert problem["code"] == "sql_syntax"
        for internal in ("Required keyword", "<class", "sqlglot", "Token", "SENTINEL", "Expect"):
            assert internal not in resp.text, (sql, resp.text)


def test_a_syntax_error_says_where(gw: Gateway, bearer: dict[str, str]) -> None:
    resp = gw.client.post(
        "/v1/query",
        json={"sql": "SELECT name b c FROM population.people", "purpose": PURPOSE},
        headers=bearer,
    )
    problem = resp.json()
    assert (problem["line"], problem["column"]) == (1, 15)
    assert "near 'c'" in problem["detail"]


def test_chinese_titles_and_details_for_zh_cn_english_otherwise(
    gw: Gateway, bearer: dict[str, str]
) -> None:
    query = {"sql": "SELECT name FROM population.nowhere", "purpose": PURPOSE}
    zh = gw.client.post(
        "/v1/query", json=query, headers={**bearer, "Accept-Language": "zh-CN,zh;q=0.9"}
    )
    en = gw.client.post("/v1/query", json=query, headers={**bearer, "Accept-Language": "fr"})
    default = gw.client.post("/v1/query", json=query, headers=bearer)
    assert zh.status_code == en.status_code == default.status_code == 404
    assert zh.headers["content-language"] == "zh-CN"
    assert en.headers["content-language"] == default.headers["content-language"] == "en"
    assert "accept-language" in zh.headers["vary"].lower()
    assert zh.json()["title"] == "未知的数据集、表或字段"
    assert "数据目录中没有表 population.nowhere" in zh.json()["detail"]
    assert en.json()["title"] == "Unknown dataset, table or column"
    assert not _has_chinese(en.json()["detail"]) and en.json() == {
        **default.json(),
        "audit_id": en.json()["audit_id"],
        "trace_id": en.json()["trace_id"],
        "receipt": en.json()["receipt"],
    }
    # The code and the type stay the machine-readable, language-free part.
    assert zh.json()["code"] == en.json()["code"] == "unknown_object"


def test_framework_refusals_and_401_are_translated_too(gw: Gateway) -> None:
    zh = {"Accept-Language": "zh-CN"}
    unknown = gw.client.get("/v1/nowhere", headers=zh)
    assert unknown.status_code == 404 and unknown.json()["title"] == "未找到"
    assert _has_chinese(unknown.json()["detail"])
    method = gw.client.delete("/v1/query", headers=zh)
    assert method.status_code == 405 and _has_chinese(method.json()["detail"])
    anonymous = gw.client.post(
        "/v1/query", json={"sql": "SELECT 1", "purpose": PURPOSE}, headers=zh
    )
    assert anonymous.status_code == 401
    assert anonymous.json()["title"] == "未认证" and "POST /v1/token" in anonymous.json()["detail"]


def test_capped_by_policy_and_truncated_by_max_rows_are_told_apart(gw: Gateway) -> None:
    sql = "SELECT enterprise_id FROM legal_person.enterprises"
    by_policy = gw.query("tjj-stats", sql).json()
    assert by_policy["truncated"] is True
    assert by_policy["row_limit_by"] == "policy"
    assert by_policy["row_limit"] == by_policy["row_count"] == 1000
    by_request = gw.query("tjj-stats", sql, max_rows=3).json()
    assert (by_request["row_count"], by_request["truncated"]) == (3, True)
    assert (by_request["row_limit"], by_request["row_limit_by"]) == (3, "max_rows")
    # The query's own LIMIT is what it asked for: not a truncation.
    limited = gw.query("tjj-stats", sql + " LIMIT 2").json()
    assert (limited["row_count"], limited["truncated"]) == (2, False)
    assert limited["row_limit_by"] == "query"
