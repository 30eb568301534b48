"""The Telemetry seam: both implementations satisfy it, build_telemetry picks one and
validates the settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.errors import ConfigurationError
from gateway.settings import TelemetrySettings
from gateway.telemetry import NoopTelemetry, Telemetry, build_telemetry
from gateway.telemetry.otel import OtelTelemetry


def test_both_implementations_are_telemetry() -> None:
    # Checked by mypy: assigning to the Protocol type fails to type-check otherwise.
    implementations: list[Telemetry] = [
        NoopTelemetry(),
        OtelTelemetry.from_settings(TelemetrySettings()),
    ]
    for t in implementations:
        with t.request_span("POST /v1/query"), t.stage("parse"):
            assert len(t.current_trace_id()) == 32
        t.shutdown()


def test_exporting_nothing_builds_the_noop() -> None:
    assert isinstance(build_telemetry(TelemetrySettings()), NoopTelemetry)


@pytest.mark.parametrize(
    "settings",
    [
        TelemetrySettings(traces_exporter="console"),
        TelemetrySettings(metrics_exporter="console"),
    ],
)
def test_exporting_anything_builds_the_sdk_implementation(settings: TelemetrySettings) -> None:
    t = build_telemetry(settings)
    try:
        assert isinstance(t, OtelTelemetry)
    finally:
        t.shutdown()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (TelemetrySettings(traces_exporter="jaeger"), "traces_exporter"),
        (TelemetrySettings(metrics_exporter="statsd"), "metrics_exporter"),
        (TelemetrySettings(sample_ratio=1.5), "sample_ratio"),
        (TelemetrySettings(sample_ratio=-0.1), "sample_ratio"),
    ],
)
def test_invalid_settings_are_refused_even_when_nothing_is_exported(
    settings: TelemetrySettings, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_telemetry(settings)


def test_the_noop_path_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from gateway.settings import TelemetrySettings\n"
        "from gateway.telemetry import build_telemetry\n"
        "build_telemetry(TelemetrySettings())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
