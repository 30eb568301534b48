"""Issue 16: evidence that holds against the operator, end to end through real gateways.

* an operator holding the log key rewrites one access and re-signs the whole log: the
  provider's monitor and ``verify`` with the stored cosignatures both expose it, without
  any receipt of the consumer;
* a split view (two monitors shown different heads): both monitors alert;
* a gateway restarted on a rolled-back audit database refuses to serve.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from gateway.audit.bundle import full_log_bundle
from gateway.audit.monitor import LATEST_FILE, Fetch, Monitor
from gateway.audit.record import AuditRecord
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.store.open import open_audit_store
from gateway.audit.store.protocol import AuditStore
from gateway.cli import main
from gateway.errors import ConfigurationError
from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.note import Verifier, generate_key
from tests.e2e.harness import ROOT, Gateway, demo_dsn, demo_signer, running_gateway

PEOPLE = "SELECT person_id FROM population.people LIMIT 5"
LOG_VKEY = ROOT / "keys" / "demo" / "audit-log.demo.vkey"


def fetch_from(gw: Gateway, system: str = "rsj-subsidy") -> Fetch:
    """The monitor's transport, through the gateway's test client (with a token: the
    consistency-proof route is audited like any audit-log read)."""
    token = gw.token(system)

    def fetch(path: str, params: Mapping[str, int] | None = None) -> tuple[int, str]:
        resp = gw.client.get(
            path, params=dict(params or {}), headers={"Authorization": f"Bearer {token}"}
        )
        return resp.status_code, resp.text

    return fetch


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[tuple[Gateway, Verifier]]:
    """Department B's gateway, witnessing the demo log (the reference set-up)."""
    keys = tmp_path / "witness-keys"
    shutil.copytree(ROOT / "keys" / "demo", keys)
    skey, vkey = generate_key("witness.ybj.gateway.test", alg=ALG_COSIGNATURE_V1)
    (keys / "witness.key").write_text(skey + "\n")
    (keys / "witnessed-logs.vkeys").write_text(LOG_VKEY.read_text())
    wdir = tmp_path / "witness"
    wdir.mkdir()
    with running_gateway(
        "sqlite", demo_dsn("sqlite", wdir), wdir, settings_overrides={"key_dir": keys}
    ) as gw:
        yield gw, Verifier.parse(vkey)


def rewritten_copy(store: AuditStore, path: Path, index: int, *, keep: bool) -> AuditStore:
    """What an operator holding the log key does: the same records, one access changed
    (here: fewer rows delivered), every checkpoint re-signed over the new tree; the
    witnesses' cosignatures kept (``keep``) or dropped."""
    forged = open_audit_store(f"sqlite:{path}", demo_signer())
    records: list[AuditRecord] = []
    for entry in store.entries(0, store.size()):
        record = AuditRecord.from_canonical(entry.record)
        if entry.idx == index:
            record = dataclasses.replace(record, row_count=0)
        records.append(record)
    forged.append_batch(records)
    cosigned = store.cosigned()
    assert cosigned is not None
    if keep:
        forged.add_cosigned(int(cosigned.split("\n")[1]), forged.origin, cosigned)
    return forged


def test_a_rewritten_access_is_exposed_by_the_monitor_and_by_verify(
    tmp_path: Path,
    witness: tuple[Gateway, Verifier],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    witness_gw, witness_key = witness

    def post(url: str, **kwargs: Any) -> Any:
        assert url == "https://witness.test/v1/witness/add-checkpoint"
        kwargs.pop("timeout", None)
        return witness_gw.client.post("/v1/witness/add-checkpoint", **kwargs)

    monkeypatch.setattr(httpx, "post", post)
    store = open_audit_store(f"sqlite:{tmp_path / 'audit.sqlite'}", demo_signer())
    settings = {
        "audit_witnesses": f"https://witness.test {witness_key.encode()}",
        "audit_witness_interval_s": 3600.0,  # pushed by hand below
    }
    monitor_state = tmp_path / "provider-monitor"
    a = tmp_path / "a"
    a.mkdir()
    with running_gateway(
        "sqlite", demo_dsn("sqlite", a), a, audit=store, settings_overrides=settings
    ) as gw:
        for _ in range(4):
            assert gw.query("rsj-subsidy", PEOPLE).status_code == 200
        gw.services.witnessing.tick()
        cosigned = gw.client.get("/v1/audit/cosigned")
        assert cosigned.status_code == 200 and "— witness.ybj.gateway.test " in cosigned.text
        provider = Monitor(
            fetch_from(gw),
            [Verifier.parse(LOG_VKEY.read_text().strip())],
            monitor_state,
            witnesses=[witness_key],
            min_witnesses=1,
        )
        assert provider.round() == []
        honest = full_log_bundle(store)
    honest_file = tmp_path / "honest.json"
    honest_file.write_text(json.dumps(honest, ensure_ascii=False))
    verify = [
        "audit", "verify", "--key", str(LOG_VKEY), "--witness", witness_key.encode(),
        "--min-witnesses", "1", "--max-unwitnessed", "20",
    ]  # fmt: skip
    result = CliRunner().invoke(main, [*verify, str(honest_file)])
    assert result.exit_code == 0, result.output

    # The rewrite: entry 1 (an access the consumer made) now says 0 rows were delivered.
    store = open_audit_store(f"sqlite:{tmp_path / 'audit.sqlite'}", demo_signer())
    forged = rewritten_copy(store, tmp_path / "forged.sqlite", index=1, keep=True)
    dropped = rewritten_copy(store, tmp_path / "dropped.sqlite", index=1, keep=False)
    store.close()
    b = tmp_path / "b"
    b.mkdir()
    # The operator runs it without witnesses and with a fresh state directory (no pin).
    with running_gateway("sqlite", demo_dsn("sqlite", b), b, audit=forged) as gw:
        provider = Monitor(
            fetch_from(gw),
            [Verifier.parse(LOG_VKEY.read_text().strip())],
            monitor_state,
            witnesses=[witness_key],
            min_witnesses=1,
        )
        kinds = {alert.kind for alert in provider.round()}
        assert "fork" in kinds, kinds
        assert "split-view" in kinds, kinds
        bundle = full_log_bundle(forged)
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(bundle, ensure_ascii=False))
    # The cosigned checkpoint stored in the log contradicts the rewritten tree.
    result = CliRunner().invoke(main, [*verify, str(forged_file)])
    assert result.exit_code == 1, result.output
    assert "is not a state of this log" in result.output
    forged.close()
    # Dropping the cosignatures: the key alone vouches for the rewrite, the witnesses not.
    dropped_file = tmp_path / "dropped.json"
    dropped_file.write_text(json.dumps(full_log_bundle(dropped), ensure_ascii=False))
    dropped.close()
    alone = ["audit", "verify", "--key", str(LOG_VKEY), str(dropped_file)]
    assert CliRunner().invoke(main, alone).exit_code == 0
    result = CliRunner().invoke(main, [*verify, str(dropped_file)])
    assert result.exit_code == 1, result.output
    assert "no checkpoint in the bundle carries 1 valid cosignature(s)" in result.output


def test_split_view_makes_both_monitors_alert(tmp_path: Path) -> None:
    """One origin, one key, two histories: each monitor is shown one of them."""
    views = []
    for name in ("one", "two"):
        directory = tmp_path / name
        directory.mkdir()
        views.append((directory, MemoryAuditStore(demo_signer())))
    key = [Verifier.parse(LOG_VKEY.read_text().strip())]
    with (
        running_gateway(
            "sqlite", demo_dsn("sqlite", views[0][0]), views[0][0], audit=views[0][1]
        ) as g1,
        running_gateway(
            "sqlite", demo_dsn("sqlite", views[1][0]), views[1][0], audit=views[1][1]
        ) as g2,
    ):
        g1.query("rsj-subsidy", PEOPLE)
        g2.query("ybj-insurance", PEOPLE)
        g2.query("ybj-insurance", PEOPLE)
        m1_dir, m2_dir = tmp_path / "m1", tmp_path / "m2"
        m1 = Monitor(fetch_from(g1), key, m1_dir, peers=[m2_dir / LATEST_FILE])
        m2 = Monitor(fetch_from(g2), key, m2_dir, peers=[m1_dir / LATEST_FILE])
        assert m1.round() == []  # alone, each view is a fine log
        m2_alerts = m2.round()
        m1_alerts = m1.round()
    assert [a.kind for a in m1_alerts] == ["split-view"], m1_alerts
    assert [a.kind for a in m2_alerts] == ["split-view"], m2_alerts


def test_a_gateway_restarted_on_a_rolled_back_database_refuses_to_serve(
    tmp_path: Path,
) -> None:
    db, backup = tmp_path / "audit.sqlite", tmp_path / "backup.sqlite"
    for run, queries in enumerate((2, 3)):
        store = open_audit_store(f"sqlite:{db}", demo_signer())
        with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store) as gw:
            for _ in range(queries):
                assert gw.query("rsj-subsidy", PEOPLE).status_code == 200
        store.close()
        if run == 0:
            shutil.copy(db, backup)
    # The database is restored from the backup taken after the first run.
    db.unlink()
    shutil.copy(backup, db)
    store = open_audit_store(f"sqlite:{db}", demo_signer())
    try:
        with (
            pytest.raises(ConfigurationError, match="rolled back or cut"),
            running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store),
        ):
            pass  # pragma: no cover - must not start
    finally:
        store.close()


def test_monitor_command_exit_status_log_line_and_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gateway audit monitor`: 0 while the log grows honestly; a rollback is an alert
    (stderr line, webhook POST, exit 1)."""
    import gateway.audit.monitor as monitor_module

    store = MemoryAuditStore(demo_signer())
    hooks: list[Any] = []
    monkeypatch.setattr(httpx, "post", lambda url, **kw: hooks.append((url, kw["json"])))
    args = [
        "audit", "monitor", "--url", "https://gw.test", "--key", str(LOG_VKEY),
        "--state", str(tmp_path / "mon"), "--webhook", "https://alerts.test/hook",
    ]  # fmt: skip
    with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store) as gw:
        monkeypatch.setattr(monitor_module, "http_fetch", lambda url, token: fetch_from(gw))
        for _ in range(2):
            gw.query("rsj-subsidy", PEOPLE)
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, result.output
    assert hooks == []
    # The same log key, a log with fewer entries: what a restored backup looks like.
    other = tmp_path / "other"
    other.mkdir()
    with running_gateway(
        "sqlite", demo_dsn("sqlite", other), other, audit=MemoryAuditStore(demo_signer())
    ) as gw:
        monkeypatch.setattr(monitor_module, "http_fetch", lambda url, token: fetch_from(gw))
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "ALERT rollback:" in result.output
    assert hooks and hooks[0][0] == "https://alerts.test/hook"
    assert hooks[0][1]["alerts"][0]["kind"] == "rollback"
