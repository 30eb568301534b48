"""Logs operators can ship (issue 10, point 10): every line the gateway writes while
serving requests is one JSON object, refusals carry code, status, reason, request id and
audit id, the optional access log has one line per request, and consumer SQL never
reaches the server log, whatever path the request takes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway.audit.store.memory import MemoryAuditStore
from gateway.logs import configure_logging
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway

PURPOSE = "employment_subsidy_review"
MARKER = "zqxmarker7f3a"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("logs")
    with running_gateway(
        "sqlite",
        demo_dsn("sqlite", tmp),
        tmp,
        audit=MemoryAuditStore(demo_signer()),
        settings_overrides={"access_log": True},
    ) as gateway:
        yield gateway


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything logged at any level, through the gateway's own logging configuration
    (gateway/logs.py, as ``gateway serve`` sets it up), minus the test client's lines."""
    stream = io.StringIO()
    root = logging.getLogger()
    old_level = root.level
    levels = {name: logging.getLogger(name).level for name in ("casbin", "sqlglot")}
    configure_logging("DEBUG", stream)
    try:
        yield stream
    finally:
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    """The lines the gateway wrote (the test client, httpx, logs its own requests)."""
    found = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in found if not str(line["logger"]).startswith("httpx")]


def _text(stream: io.StringIO) -> str:
    return "\n".join(json.dumps(line, ensure_ascii=False) for line in _lines(stream))


#: SQL carrying the marker on every path a query can take: served, refused by each step,
#: unparseable, not a query (sqlglot's fallback logs the text it could not parse), an
#: identifier-shaped literal, and a backend error.
SQL = (
    f"SELECT name, '{MARKER}' AS m FROM population.people LIMIT 1",
    f"SELECT {MARKER} FROM population.people",
    f"SELECT name FROM population.{MARKER}",
    f"SELECT name FROM population.people WHERE name = '{MARKER}' AND",
    f"SELECT '{MARKER} FROM population.people",
    f"VACUUM {MARKER}",
    f"ALTER SYSTEM SET {MARKER} = 1",
    f"SELECT name FROM population.people WHERE id_number = '110101199003077774' "
    f"AND name = '{MARKER}'",
    f"SELECT CAST('{MARKER}' AS INTEGER) + 1 AS n FROM population.people LIMIT 1",
    f"SELECT name FROM population.people; SELECT '{MARKER}'",
)


@pytest.mark.parametrize("sql", SQL)
def test_consumer_sql_never_reaches_the_server_log(
    gw: Gateway, log_lines: io.StringIO, sql: str
) -> None:
    resp = gw.query("rsj-subsidy", sql)
    assert resp.status_code < 500 or resp.status_code == 502, resp.text[:300]
    text = _text(log_lines)
    assert text, "the request wrote no log line at all"
    assert MARKER not in text
    assert "110101199003077774" not in text


def test_a_refusal_line_has_code_status_reason_and_ids(gw: Gateway, log_lines: io.StringIO) -> None:
    resp = gw.client.post(
        "/v1/query",
        json={"sql": f"SELECT name FROM population.{MARKER}", "purpose": PURPOSE},
        headers={
            "Authorization": f"Bearer {gw.token('rsj-subsidy')}",
            "X-Request-Id": "req-logs-1",
        },
    )
    assert resp.status_code == 404
    refused = [line for line in _lines(log_lines) if line["message"] == "request refused"]
    assert len(refused) == 1
    line = refused[0]
    assert (line["code"], line["status"]) == ("unknown_object", 404)
    assert line["reason"] == (
        "Table {table} is not in the catalog. See GET /v1/catalog for the datasets you may query."
    )
    assert line["request_id"] == "req-logs-1"
    assert line["audit_id"] == resp.json()["audit_id"]
    assert line["trace_id"] == resp.json()["trace_id"]


def test_the_access_log_has_one_line_per_request(gw: Gateway, log_lines: io.StringIO) -> None:
    gw.client.get("/healthz", headers={"X-Request-Id": "req-logs-2"})
    gw.client.get("/v1/nowhere?q=secret", headers={"X-Request-Id": "req-logs-3"})
    access = [line for line in _lines(log_lines) if line["logger"] == "gateway.access"]
    assert [(a["url.path"], a["http.response.status_code"]) for a in access] == [
        ("/healthz", 200),
        ("/v1/nowhere", 404),
    ]
    assert access[1]["request_id"] == "req-logs-3"
    assert access[1]["audit_id"]
    assert "secret" not in _text(log_lines)
    for line in access:
        assert isinstance(line["duration_ms"], float | int)


def test_every_line_written_while_serving_is_json_with_the_request_id(
    gw: Gateway, log_lines: io.StringIO
) -> None:
    gw.client.post(
        "/v1/query",
        content=b"not json",
        headers={"Content-Type": "application/json", "X-Request-Id": "req-logs-4"},
    )
    lines = _lines(log_lines)  # json.loads of every line: fails on a plain-text one
    assert lines
    ours = [line for line in lines if str(line["logger"]).startswith("gateway")]
    assert ours and all(line.get("request_id") == "req-logs-4" for line in ours)
