"""deploy/ is validated with what exists on this machine (deploy/README.md, "What is
validated where"):

* the compose file against the compose-spec JSON schema (vendored by check-jsonschema);
* every Kubernetes manifest against the Kubernetes JSON schemas (kubernetes-validate,
  strict: unknown fields fail), and ``kubectl kustomize`` when kubectl is installed;
* the nginx configuration with ``nginx -t`` (Debian's nginx), with the certificate paths
  and the upstream host pointed at a self-signed certificate and 127.0.0.1;
* the systemd unit with ``systemd-analyze verify`` (no output allowed: it exits 0 even
  for unknown keys);
* the Grafana dashboard: every metric its queries name is served by a real /metrics;
* the Dockerfile and the collector configuration by their structure (no image builder
  and no collector binary here).

nginx, kubectl and systemd-analyze are Debian packages: without them a test skips with
the reason, except under GATEWAY_REQUIRE_SERVICES=1 (CI, whose .ci/run installs nginx),
where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
#: Kubernetes versions the manifests must be valid for.
K8S_VERSIONS = ("1.30.0", "1.33.0")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install {name})"
        if os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; GATEWAY_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(reason)
    return path


# ------------------------------------------------------------------------------ compose


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    return data


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    schema_text = (
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text("utf-8")
    )
    schema = json.loads(schema_text)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(_compose()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    # The schema is not vacuous: a misspelt key fails it.
    broken = _compose()
    broken["services"]["gateway"]["replicaz"] = 3
    assert list(validator.iter_errors(broken))


def test_compose_topology() -> None:
    services = _compose()["services"]
    assert {"postgres", "gateway", "nginx", "otel-collector"} <= set(services)
    assert "redis" not in services  # nothing in the gateway uses Redis
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] == 3
    assert gateway["read_only"] is True and gateway["cap_drop"] == ["ALL"]
    env = _compose()["x-gateway-env"]
    for name in ("GATEWAY_AUDIT_DSN", "GATEWAY_ADMIN_DSN", "GATEWAY_REPLAY_DSN"):
        assert env[name].startswith("postgresql://") and "@postgres:5432/" in env[name]
    assert env["GATEWAY_METRICS_EXPORTER"] == "prometheus"
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
    # The stop grace period outlasts the gateway's own drain.
    assert int(gateway["stop_grace_period"].rstrip("s")) > int(env["GATEWAY_SHUTDOWN_TIMEOUT"])
    for path in (DEPLOY / "nginx" / "nginx.conf", DEPLOY / "otel" / "collector.yaml"):
        assert path.exists()


# --------------------------------------------------------------------------- kubernetes


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if doc:
                docs.append((path.name, doc))
    return docs


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_are_valid_against_the_schemas(version: str) -> None:
    kinds = set()
    for name, doc in _manifests():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")
        kinds.add(doc["kind"])
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Secret",
        "ConfigMap",
        "NetworkPolicy",
    } <= kinds
    # Strict validation is not vacuous: an unknown field fails it.
    deployment = next(doc for _, doc in _manifests() if doc["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbez"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_the_deployment_probes_drains_and_runs_unprivileged() -> None:
    docs = {doc["kind"]: doc for _, doc in _manifests()}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = (
        docs["ConfigMap"]["data"] if docs["ConfigMap"]["metadata"]["name"] == "gateway-env" else {}
    )
    configmaps = {d["metadata"]["name"]: d for _, d in _manifests() if d["kind"] == "ConfigMap"}
    env = configmaps["gateway-env"]["data"]
    drain = (
        int(env["GATEWAY_SHUTDOWN_TIMEOUT"]) + container["lifecycle"]["preStop"]["sleep"]["seconds"]
    )
    assert pod["terminationGracePeriodSeconds"] > drain
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[env["GATEWAY_STATE_DIR"]].get("readOnly") is not True
    assert mounts[env["GATEWAY_KEY_DIR"]]["readOnly"] is True
    assert mounts[env["GATEWAY_POLICY_DIR"]]["readOnly"] is True
    labels = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        selector = docs[kind]["spec"].get("selector") or docs[kind]["spec"]["podSelector"]
        assert selector["matchLabels"] == labels, kind
    assert docs["Service"]["spec"]["selector"] == labels
    assert docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 3


def test_the_archive_cronjob_runs_the_gateways_archive_command_unprivileged() -> None:
    docs = {doc["kind"]: doc for _, doc in _manifests()}
    job = docs["CronJob"]["spec"]
    assert job["concurrencyPolicy"] == "Forbid"  # two archive runs never overlap
    pod = job["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"][:3] == ["audit", "archive", "--dir"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    archive = mounts[container["args"][3]]
    claim = volumes[archive["name"]]["persistentVolumeClaim"]["claimName"]
    assert docs["PersistentVolumeClaim"]["metadata"]["name"] == claim
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert mounts["/etc/gateway/keys"]["readOnly"] is True


def test_kustomize_builds_the_manifests() -> None:
    kubectl = _tool("kubectl")
    out = subprocess.run(  # noqa: S603 - fixed arguments
        [kubectl, "kustomize", str(DEPLOY / "k8s")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(out.stdout) if doc]
    assert kinds.count("Deployment") == 1 and "NetworkPolicy" in kinds and "CronJob" in kinds


# -------------------------------------------------------------------------------- nginx


def _self_signed(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_nginx_accepts_the_tls_configuration(tmp_path: Path) -> None:
    nginx = _tool("nginx")
    _self_signed(tmp_path)
    text = (DEPLOY / "nginx" / "nginx.conf").read_text("utf-8")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert re.search(r"location = /metrics \{\s*return 404;", text)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        text.replace("/etc/nginx/tls/", f"{tmp_path}/")
        .replace("server gateway:8000", "server 127.0.0.1:8000")
        .replace("pid /var/run/nginx.pid", f"pid {tmp_path}/nginx.pid"),
        "utf-8",
    )
    out = subprocess.run(  # noqa: S603 - fixed arguments
        [nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "test is successful" in out.stderr
    # nginx -t is not vacuous: a misspelt directive fails it.
    conf.write_text(conf.read_text("utf-8").replace("ssl_protocols", "ssl_protocolz"), "utf-8")
    bad = subprocess.run(  # noqa: S603
        [nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode != 0


# ------------------------------------------------------------------------------ systemd


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    gateway = shutil.which("gateway", path=str(Path(sys.executable).parent)) or ""
    assert gateway, "the gateway console script is not installed next to this Python"
    unit = tmp_path / "gateway.service"
    text = (DEPLOY / "systemd" / "gateway.service").read_text("utf-8")
    # verify checks that ExecStart exists: point it at this venv's gateway.
    unit.write_text(text.replace("/opt/gateway/venv/bin/gateway", gateway), "utf-8")
    out = subprocess.run(  # noqa: S603 - fixed arguments
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    # It exits 0 even for unknown keys and values: any output is a finding.
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), (
        out.stdout + out.stderr
    )
    assert "TimeoutStopSec=45" in text and "KillSignal=SIGTERM" in text
    assert "ProtectSystem=strict" in text and "StateDirectory=gateway" in text


def test_archive_timer_and_its_unit_verify(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    gateway = shutil.which("gateway", path=str(Path(sys.executable).parent)) or ""
    assert gateway, "the gateway console script is not installed next to this Python"
    units = []
    for name in ("gateway-archive.service", "gateway-archive.timer"):
        text = (DEPLOY / "systemd" / name).read_text("utf-8")
        unit = tmp_path / name
        unit.write_text(text.replace("/opt/gateway/venv/bin/gateway", gateway), "utf-8")
        units.append(str(unit))
    out = subprocess.run(  # noqa: S603 - fixed arguments
        [analyze, "verify", *units], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), (
        out.stdout + out.stderr
    )
    service = (DEPLOY / "systemd" / "gateway-archive.service").read_text("utf-8")
    assert "gateway audit archive --dir /var/lib/gateway-archive" in service


# --------------------------------------------------------------------- image, collector


def test_dockerfile_is_multi_stage_unprivileged_and_health_checked() -> None:
    text = (DEPLOY / "Dockerfile").read_text("utf-8")
    stages = re.findall(r"^FROM \S+ AS (\w+)$", text, flags=re.MULTILINE)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.MULTILINE)
    assert "--require-hashes" in text and "requirements/production.txt" in text
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime
    assert "--no-index" in runtime  # the runtime stage installs built wheels only
    assert "GATEWAY_STATE_DIR=/var/lib/gateway" in runtime
    assert 'VOLUME ["/var/lib/gateway"]' in runtime
    ignore = (ROOT / ".dockerignore").read_text("utf-8")
    assert "!requirements/production.txt" in ignore and "!gateway/**" in ignore


def test_collector_configuration_wires_its_pipelines() -> None:
    config = yaml.safe_load((DEPLOY / "otel" / "collector.yaml").read_text("utf-8"))
    for pipeline in config["service"]["pipelines"].values():
        for part in ("receivers", "processors", "exporters"):
            for component in pipeline[part]:
                assert component in config[part], component
    [scrape] = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert scrape["metrics_path"] == "/metrics"


# ---------------------------------------------------------------------------- dashboard


def test_the_dashboard_queries_metrics_the_gateway_serves(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from gateway.settings import TelemetrySettings
    from tests.e2e.harness import demo_dsn, running_gateway

    dashboard = json.loads((DEPLOY / "grafana" / "gateway-dashboard.json").read_text("utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = set()
    for expr in exprs:
        named |= set(re.findall(r"\b((?:http_server|gateway|db_client)_[a-z_]+)\b", expr))
    overrides = {"telemetry": TelemetrySettings(metrics_exporter="prometheus")}
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp_path), tmp_path, settings_overrides=overrides
    ) as gw:
        assert gw.query("rsj-subsidy", "SELECT COUNT(*) AS n FROM population.people").is_success
        text = gw.client.get("/metrics").text
    served = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    labels = {k for f in text_string_to_metric_families(text) for s in f.samples for k in s.labels}
    metric_names = {n for n in named if n not in labels}
    assert metric_names and metric_names <= served, metric_names - served
    assert {"http_route", "gateway_department", "gateway_system", "gateway_dataset"} <= labels
