"""JSON log lines: fields, trace correlation, exceptions, and uvicorn's loggers."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

from gateway.errors import ConfigurationError
from gateway.logs import (
    JsonFormatter,
    begin_request,
    configure_logging,
    current_request,
    end_request,
    log_unexpected,
    uvicorn_log_config,
)
from gateway.settings import TelemetrySettings
from gateway.telemetry import build_telemetry
from gateway.telemetry.otel import OtelTelemetry

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_TOUCHED = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "sqlglot")


@contextmanager
def preserved_logging() -> Iterator[None]:
    """Put back the handlers, levels and propagation of the loggers a test reconfigures.

    Used inside a test body, not as a fixture: pytest swaps its own capture handlers on the
    root logger between setup, call and teardown, so a list saved during fixture setup
    would bring back handlers pytest has already removed.
    """
    saved = []
    for name in _TOUCHED:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.level, logger.propagate))
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


@pytest.fixture(autouse=True)
def remove_json_handlers() -> Iterator[None]:
    """configure_logging only adds a handler and sets the root level: undo just that."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(root.handlers):
        if isinstance(handler.formatter, JsonFormatter):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    return out


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed on its own (so a multi-line entry fails)."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_is_one_json_object_with_the_base_fields(stream: io.StringIO) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    logging.getLogger("gateway.test").info("hello %s", "world")
    logging.getLogger("gateway.test").debug("multi\nline")

    first, second = lines(stream)
    assert first == {
        "time": first["time"],
        "level": "INFO",
        "logger": "gateway.test",
        "message": "hello world",
    }
    assert RFC3339_UTC.match(first["time"])
    when = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert before <= when <= datetime.now(UTC)
    assert second["message"] == "multi\nline"
    assert second["level"] == "DEBUG"


def test_level_filters_lower_records() -> None:
    out = io.StringIO()
    configure_logging("warning", stream=out)
    logging.getLogger("gateway.test").info("dropped")
    logging.getLogger("gateway.test").warning("kept")
    assert [line["message"] for line in lines(out)] == ["kept"]


def test_extra_fields_are_top_level_and_never_replace_ours(stream: io.StringIO) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    logging.getLogger("gateway.test").warning(
        "backend slow",
        extra={"backend": "pg", "elapsed_s": 2.5, "level": "mine", "at": when, "tags": {"a"}},
    )
    [line] = lines(stream)
    assert line["backend"] == "pg"
    assert line["elapsed_s"] == 2.5
    assert line["level"] == "WARNING"
    assert line["extra.level"] == "mine"
    assert line["at"] == "2026-01-02T03:04:05+00:00"
    assert line["tags"] == ["a"]


def test_trace_and_span_ids_come_from_the_current_span(stream: io.StringIO) -> None:
    spans = InMemorySpanExporter()
    telemetry = OtelTelemetry.from_settings(TelemetrySettings(), span_exporter=spans)
    log = logging.getLogger("gateway.test")
    log.info("outside")
    with telemetry.request_span("POST /v1/query"), telemetry.stage("decide") as stage:
        log.info("inside")
    telemetry.shutdown()

    outside, inside = lines(stream)
    assert "trace_id" not in outside and "span_id" not in outside
    context = stage.get_span_context()
    assert inside["trace_id"] == format_trace_id(context.trace_id)
    assert inside["span_id"] == format_span_id(context.span_id)
    [decide] = [s for s in spans.get_finished_spans() if s.name == "gateway.decide"]
    assert decide.context.span_id == context.span_id


def test_without_tracing_logs_still_share_the_requests_trace_id(stream: io.StringIO) -> None:
    telemetry = build_telemetry(TelemetrySettings())  # exports nothing: NoopTelemetry
    with telemetry.request_span("POST /v1/query"):
        logging.getLogger("gateway.test").info("inside")
        audit_trace_id = telemetry.current_trace_id()
    [line] = lines(stream)
    assert line["trace_id"] == audit_trace_id


def test_an_exception_is_logged_as_fields_on_one_line(stream: io.StringIO) -> None:
    def fail() -> None:
        raise ValueError("bad value")

    try:
        fail()
    except ValueError:
        logging.getLogger("gateway.test").exception("query failed", extra={"code": 7})

    [line] = lines(stream)
    assert line["message"] == "query failed"
    assert line["level"] == "ERROR"
    assert line["exc_type"] == "ValueError"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert "in fail" in line["exc"]
    assert line["exc"].endswith("ValueError: bad value")
    assert line["code"] == 7


def test_a_library_exception_type_is_qualified(stream: io.StringIO) -> None:
    try:
        raise ConfigurationError("no catalog")
    except ConfigurationError:
        logging.getLogger("gateway.test").error("start-up failed", exc_info=True)
    [line] = lines(stream)
    assert line["exc_type"] == "gateway.errors.ConfigurationError"


def test_stack_info_is_a_field(stream: io.StringIO) -> None:
    logging.getLogger("gateway.test").info("where", stack_info=True)
    [line] = lines(stream)
    assert line["stack"].startswith("Stack (most recent call last):")


def test_configuring_twice_replaces_our_handler_and_keeps_others() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    try:
        first, second = io.StringIO(), io.StringIO()
        configure_logging("INFO", stream=first)
        configure_logging("INFO", stream=second)
        logging.getLogger("gateway.test").info("once")
        assert first.getvalue() == ""
        assert [line["message"] for line in lines(second)] == ["once"]
        assert foreign in root.handlers
    finally:
        root.removeHandler(foreign)


def test_unknown_level_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        configure_logging("LOUD", stream=io.StringIO())
    with pytest.raises(ConfigurationError):
        uvicorn_log_config("LOUD")


def test_uvicorn_applies_the_config_and_logs_json(capsys: pytest.CaptureFixture[str]) -> None:
    # use_colors=False makes uvicorn write into the "default" and "access" formatters;
    # the config must survive that.
    with preserved_logging():
        uvicorn.Config("gateway.app:app", log_config=uvicorn_log_config("INFO"), use_colors=False)
        logging.getLogger("uvicorn.error").info("Application startup complete.")
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5123", "POST", "/v1/query?x=1", "1.1", 200
        )
        logging.getLogger("gateway.test").info("ours")

    err = capsys.readouterr().err
    startup, access, ours = (json.loads(line) for line in err.splitlines())
    assert startup["logger"] == "uvicorn.error"
    assert startup["message"] == "Application startup complete."
    assert access["logger"] == "uvicorn.access"
    assert access["http.response.status_code"] == 200
    assert access["http.request.method"] == "POST"
    assert access["url.path"] == "/v1/query"
    assert access["url.query"] == "x=1"
    assert access["client.address"] == "10.0.0.1:5123"
    assert access["network.protocol.version"] == "1.1"
    assert ours["logger"] == "gateway.test"


def test_uvicorn_log_config_is_a_fresh_dict_each_call() -> None:
    first = uvicorn_log_config()
    first["formatters"]["default"]["use_colors"] = True
    assert "use_colors" not in uvicorn_log_config()["formatters"]["default"]


def test_lines_written_while_serving_a_request_carry_its_id(stream: io.StringIO) -> None:
    log = logging.getLogger("gateway.test")
    token = begin_request()
    try:
        log.info("before the id is known")
        fields = current_request()
        assert fields is not None
        fields.request_id = "req-7"
        log.info("inside")
    finally:
        end_request(token)
    log.info("after")
    before, inside, after = lines(stream)
    assert "request_id" not in before and "request_id" not in after
    assert inside["request_id"] == "req-7"


def test_an_unexpected_exception_is_logged_without_its_message(stream: io.StringIO) -> None:
    try:
        raise ValueError("SELECT secret_marker FROM population.people")
    except ValueError as exc:
        log_unexpected(logging.getLogger("gateway.test"), "unexpected", exc, audit_id="a-1")
    (line,) = lines(stream)
    assert line["level"] == "ERROR" and line["error_type"] == "ValueError"
    assert "test_logs.py" in line["error_stack"] and line["audit_id"] == "a-1"
    assert "secret_marker" not in json.dumps(line)


def test_sqlglot_which_quotes_sql_in_its_warnings_is_silenced(stream: io.StringIO) -> None:
    logging.getLogger("sqlglot").warning("'VACUUM secret_marker' contains unsupported syntax")
    assert "secret_marker" not in stream.getvalue()
    config = uvicorn_log_config("DEBUG")
    assert config["loggers"]["sqlglot"]["level"] > logging.CRITICAL
