"""Structured logs: one JSON object per line, on stdlib ``logging``.

Each line has ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``;
``trace_id`` / ``span_id`` of the current OpenTelemetry span when there is one and
``request_id`` of the HTTP request being served (so a log line can be joined with its
trace, the client's ``X-Request-Id`` and its audit record); every field passed with
``extra={...}``; and for an exception ``exc_type`` (its class) and ``exc`` (the formatted
traceback)::

    log.warning("backend slow", extra={"backend": "pg", "elapsed_s": 2.5})
    {"time": "2026-01-02T03:04:05.678Z", "level": "WARNING", "logger": "gateway.backends",
     "message": "backend slow", "trace_id": "…", "span_id": "…", "backend": "pg",
     "elapsed_s": 2.5}

What never reaches a log line: consumer SQL and what it contains (the audit log stores
it with identifiers tokenised; a server log in clear would undo that). The gateway logs a
refusal by its code, status and the *template* of its reason (gateway/i18n.py), never
the filled-in detail or the backend's error text (both are in the audit record, found by
the ``audit_id`` of the line); an unexpected exception by its type and stack, without
its message (:func:`log_unexpected`); and sqlglot's own logger, whose warnings quote the
SQL they were given, is switched off.

The access log (``GATEWAY_ACCESS_LOG``, off by default: every request is already in the
audit log and the metrics) is one ``gateway.access`` line per HTTP request, written by
gateway/api/metrics.py: method, path (never the query string), status, duration,
request id, trace id and the audit id.

Configuring logging is process-wide by nature, so this module is the one place allowed to
touch the root logger: :func:`configure_logging` for commands and embedding,
:func:`uvicorn_log_config` for the server (``uvicorn.run(app, log_config=
uvicorn_log_config(settings.log_level))``, which every uvicorn worker process applies).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any, Final

from opentelemetry.trace import format_span_id, format_trace_id, get_current_span

from gateway.errors import ConfigurationError

__all__ = [
    "ACCESS_LOGGER",
    "JsonFormatter",
    "RequestFields",
    "begin_request",
    "configure_logging",
    "current_request",
    "end_request",
    "log_unexpected",
    "uvicorn_log_config",
]

#: The logger of the gateway's own access log (one line per HTTP request, when enabled).
ACCESS_LOGGER: Final = "gateway.access"

#: Loggers switched off: sqlglot's warnings quote the SQL text they were given.
_SILENCED: Final = ("sqlglot",)
_OFF: Final = logging.CRITICAL + 1


@dataclass(slots=True)
class RequestFields:
    """What the log lines written while serving one HTTP request say about it."""

    request_id: str | None = None


# The request the current task or thread is serving, like the OpenTelemetry span the
# trace id comes from: gateway/api/metrics.py binds a fresh RequestFields around each
# request, and the request-context dependency fills it in once the id is known. The
# holder is mutated rather than the variable re-set because litestar may resolve
# dependencies in child tasks, whose own settings the request's task would not see.
_REQUEST: ContextVar[RequestFields | None] = ContextVar("gateway_request", default=None)


def begin_request() -> Token[RequestFields | None]:
    """Start the log fields of a new request in the current context."""
    return _REQUEST.set(RequestFields())


def end_request(token: Token[RequestFields | None]) -> None:
    """Forget them again (the request has been answered)."""
    _REQUEST.reset(token)


def current_request() -> RequestFields | None:
    """The log fields of the request being served, if any."""
    return _REQUEST.get()


def log_unexpected(logger: logging.Logger, message: str, exc: BaseException, **fields: Any) -> None:
    """Log an unexpected exception at ERROR by its type and stack only. Its message is
    left out on purpose: it can quote what the request carried (SQL, values, a database's
    error text), which belongs in the audit record, not in the server log."""
    # Where, without the source lines either: file, line and function are enough to find it.
    frames = "".join(
        f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
        for frame in traceback.extract_tb(exc.__traceback__)
    )
    exc_type = type(exc)
    logger.error(
        message,
        extra={
            **fields,
            "error_type": exc_type.__qualname__
            if exc_type.__module__ == "builtins"
            else f"{exc_type.__module__}.{exc_type.__qualname__}",
            "error_stack": frames,
        },
    )


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
# ``message`` and ``asctime`` are added by Formatter.format, ``taskName`` by Python 3.12.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}

# Fields this formatter writes itself; an ``extra`` of the same name is kept under
# ``extra.<name>`` instead of silently replacing (or being replaced by) ours.
_OWN_FIELDS: Final = frozenset(
    {
        "time",
        "level",
        "logger",
        "message",
        "trace_id",
        "span_id",
        "request_id",
        "exc_type",
        "exc",
        "stack",
    }
)

# uvicorn's access logger passes these five values as the record's args.
_ACCESS_LOGGER: Final = "uvicorn.access"
_ACCESS_FIELDS: Final = (
    "client.address",
    "http.request.method",
    "url.path",
    "network.protocol.version",
    "http.response.status_code",
)


def _json_default(value: object) -> object:
    """Make an ``extra`` value that json cannot encode into text rather than fail the line."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON (see the module docstring for the fields).

    The trace context is read when the record is formatted, which for the synchronous
    handlers used here is inside the logging call, in the caller's context.
    """

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span_context = get_current_span().get_span_context()
        if span_context.is_valid:
            doc["trace_id"] = format_trace_id(span_context.trace_id)
            doc["span_id"] = format_span_id(span_context.span_id)
        request = _REQUEST.get()
        if request is not None and request.request_id is not None:
            doc["request_id"] = request.request_id
        if record.name == _ACCESS_LOGGER and isinstance(record.args, tuple):
            _add_access_fields(doc, record.args)
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRIBUTES:
                continue
            doc[f"extra.{key}" if key in _OWN_FIELDS else key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type = record.exc_info[0]
            doc["exc_type"] = (
                exc_type.__qualname__
                if exc_type.__module__ == "builtins"
                else f"{exc_type.__module__}.{exc_type.__qualname__}"
            )
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=_json_default)


def _rfc3339(created: float) -> str:
    return (
        datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _add_access_fields(doc: dict[str, Any], args: tuple[object, ...]) -> None:
    """Split uvicorn's access line into fields, so status and path can be queried."""
    if len(args) != len(_ACCESS_FIELDS):
        return
    fields = dict(zip(_ACCESS_FIELDS, args, strict=True))
    target = str(fields["url.path"])
    path, sep, query = target.partition("?")
    fields["url.path"] = path
    if sep:
        fields["url.query"] = query
    doc.update(fields)


def _level(level: str) -> int:
    """The numeric level of a name such as ``"info"``; ConfigurationError if unknown."""
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ConfigurationError(
            f"log level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {level!r}"
        )
    return number


class _JsonHandler(logging.StreamHandler[IO[str]]):
    """The handler :func:`configure_logging` installs; its own class so that a second call
    replaces it instead of adding a second copy of every line."""


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send every log record at ``level`` or above to ``stream`` as one JSON line.

    ``stream`` defaults to ``sys.stderr`` as it is at the call (not at import: test runners
    swap it). Handlers other code put on the root logger (a test runner's capture handler)
    are left alone; a handler from an earlier call is replaced. Raises ConfigurationError
    for an unknown level.
    """
    number = _level(level)
    handler = _JsonHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)
    # casbin prints its model and every decision at INFO; decisions are audited instead.
    logging.getLogger("casbin").setLevel(max(number, logging.WARNING))
    for name in _SILENCED:
        logging.getLogger(name).setLevel(_OFF)


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict for uvicorn's ``log_config``: JSON lines on
    stderr for the root logger, and uvicorn's own loggers sent up to it.

    Pass it as ``uvicorn.run(..., log_config=uvicorn_log_config(level))`` (or
    ``uvicorn.Config``): uvicorn applies it in every worker process, which
    :func:`configure_logging` in the parent would not reach. The formatters must be
    called ``default`` and ``access``, because uvicorn writes ``use_colors`` into both
    when ``--use-colors``/``--no-use-colors`` is given; they use ``class`` rather than
    ``()`` so that key is ignored instead of passed to the formatter. A new dict each call,
    since uvicorn may modify it.
    """
    name = logging.getLevelName(_level(level))
    formatter = {"class": f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": dict(formatter), "access": dict(formatter)},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": name, "propagate": False},
            "uvicorn.error": {"level": name},
            "uvicorn.access": {"handlers": ["access"], "level": name, "propagate": False},
            # casbin prints its model and every decision at INFO; decisions are audited.
            "casbin": {"level": "WARNING"},
            **{name: {"level": _OFF} for name in _SILENCED},
        },
        "root": {"handlers": ["default"], "level": name},
    }
