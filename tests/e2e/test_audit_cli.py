"""Operators' audit commands end to end: serve traffic into a SQLite log, export it,
verify it offline with the pinned key, rotate the key, tamper with the database."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from gateway.audit.signing import load_log_signer
from gateway.audit.store.open import open_audit_store
from gateway.cli import main
from tests.e2e.harness import ROOT, demo_dsn, running_gateway


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A key directory (a copy of the demo keys) and a state directory with a SQLite log
    holding some served and refused requests."""
    keys = tmp_path / "keys"
    shutil.copytree(ROOT / "keys" / "demo", keys)
    state = tmp_path / "state"
    state.mkdir()
    store = open_audit_store(f"sqlite:{state / 'audit.sqlite'}", load_log_signer(keys))
    with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store) as gw:
        for _ in range(3):
            gw.query("rsj-subsidy", "SELECT person_id FROM population.people LIMIT 5")
        gw.query("ybj-insurance", "SELECT address FROM population.people")
    store.close()
    env = {
        "GATEWAY_KEY_DIR": str(keys),
        "GATEWAY_STATE_DIR": str(state),
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
    }
    return env, keys


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_export_verify_rotate_and_verify_again(
    deployment: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, keys = deployment
    pinned = tmp_path / "pinned.vkey"
    shutil.copy(keys / "audit-log.demo.vkey", pinned)
    code, out = _run(env, "audit", "check")
    assert code == 0 and "ok: " in out, out
    assert "retention 1096 days: no record is past it" in out
    bundle = tmp_path / "log.json"
    code, out = _run(env, "audit", "export", "--out", str(bundle))
    assert code == 0, out
    code, out = _run(env, "audit", "verify", str(bundle), "--key", str(pinned))
    assert code == 0, out
    # Rotate: the old key signs the hand-over with the new one; the old key file is
    # moved aside only if it is the real (non-demo) key file, so copy it there first.
    shutil.copy(keys / "audit-log.demo.key", keys / "audit-log.key")
    code, out = _run(env, "audit", "rotate-key", "--origin", "audit.gateway.test/rotated")
    assert code == 0, out
    assert (keys / "audit-log.key.retired-1").exists()
    assert load_log_signer(keys).origin == "audit.gateway.test/rotated"
    rotated = tmp_path / "rotated.json"
    code, out = _run(env, "audit", "export", "--out", str(rotated))
    assert code == 0, out
    # Only the OLD key is pinned: the hand-over carries trust to the new one.
    code, out = _run(env, "audit", "verify", str(rotated), "--key", str(pinned))
    assert code == 0, out
    # A verifier that pinned an unrelated key accepts nothing.
    other = tmp_path / "other.vkey"
    other.write_text("audit.elsewhere/1+00000000+AQ" + "A" * 42 + "=\n")
    code, out = _run(env, "audit", "verify", str(rotated), "--key", str(other))
    assert code != 0


def test_a_tampered_database_fails_check_and_verification(
    deployment: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, keys = deployment
    db = Path(env["GATEWAY_STATE_DIR"]) / "audit.sqlite"
    with sqlite3.connect(db) as conn:
        # An insider with database access: drop the guard, rewrite a refusal as served,
        # and keep the leaf hash consistent with the new bytes.
        conn.execute("DROP TRIGGER audit_log_no_update")
        idx, record = conn.execute(
            "SELECT idx, record FROM audit_log WHERE outcome = 'refused' ORDER BY idx LIMIT 1"
        ).fetchone()
        forged = bytes(record).replace(b'"outcome":"refused"', b'"outcome":"served"')
        assert forged != bytes(record)
        import hashlib

        conn.execute(
            "UPDATE audit_log SET record = ?, leaf_hash = ?, outcome = 'served' WHERE idx = ?",
            (forged, hashlib.sha256(b"\x00" + forged).digest(), idx),
        )
    code, out = _run(env, "audit", "check")
    assert code != 0 and "root" in out, out
    bundle = tmp_path / "log.json"
    code, out = _run(env, "audit", "export", "--out", str(bundle))
    assert code == 0, out
    code, out = _run(
        env, "audit", "verify", str(bundle), "--key", str(keys / "audit-log.demo.vkey")
    )
    assert code == 1, out
    assert "FAILED" in out


def test_another_gateway_witnesses_the_log(
    deployment: tuple[dict[str, str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Department B's gateway cosigns A's checkpoints; the verifier requires it."""
    from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
    from gateway.tlog.note import generate_key

    env, keys = deployment
    witness_keys = tmp_path / "witness-keys"
    shutil.copytree(ROOT / "keys" / "demo", witness_keys)
    skey, vkey = generate_key("witness.ybj.gateway.test", alg=ALG_COSIGNATURE_V1)
    (witness_keys / "witness.key").write_text(skey + "\n")
    (witness_keys / "witnessed-logs.vkeys").write_text((keys / "audit-log.demo.vkey").read_text())
    witness_vkey = tmp_path / "witness.vkey"
    witness_vkey.write_text(vkey + "\n")
    wdir = tmp_path / "witness"
    wdir.mkdir()
    with running_gateway(
        "sqlite",
        demo_dsn("sqlite", wdir),
        wdir,
        settings_overrides={"key_dir": witness_keys},
    ) as witness:

        def post(url: str, **kwargs: Any) -> Any:
            assert url == "https://witness.test/v1/witness/add-checkpoint"
            kwargs.pop("timeout", None)
            return witness.client.post("/v1/witness/add-checkpoint", **kwargs)

        monkeypatch.setattr(httpx, "post", post)
        out = tmp_path / "cosigned.note"
        push = ("audit", "witness-push", "--url", "https://witness.test")
        code, text = _run(env, *push, "--out", str(out))
        assert code == 0, text
        pinned = str(keys / "audit-log.demo.vkey")
        args = ["audit", "verify", "--key", pinned, "--checkpoint", str(out)]
        code, text = _run(env, *args, "--witness", str(witness_vkey), "--min-witnesses", "1")
        assert code == 0, text
        code, text = _run(env, *args, "--witness", str(witness_vkey), "--min-witnesses", "2")
        assert code == 1, text
        # The log grows; the next push starts from the witness's size (409, then a proof).
        store = open_audit_store(
            f"sqlite:{Path(env['GATEWAY_STATE_DIR']) / 'audit.sqlite'}", load_log_signer(keys)
        )
        from tests.unit.audit.support import make_record

        store.append_batch([make_record(n) for n in range(3)])
        store.close()
        code, text = _run(env, *push, "--out", str(out))
        assert code == 0, text
        # A rewritten log (same key, other history) is refused by the witness.
        db = Path(env["GATEWAY_STATE_DIR"]) / "audit.sqlite"
        db.unlink()
        Path(str(db) + "-wal").unlink(missing_ok=True)
        Path(str(db) + "-shm").unlink(missing_ok=True)
        fresh = open_audit_store(f"sqlite:{db}", load_log_signer(keys))
        fresh.append_batch([make_record(100 + n) for n in range(20)])
        fresh.close()
        code, text = _run(env, *push)
        assert code != 0 and "422" in text, text


def test_kept_bodies_verify_with_no_bundle(tmp_path: Path) -> None:
    """Issue 16 (3): the receipt carries its record, so a consumer's kept body is checked
    offline with no bundle; one changed byte fails; a refusal's body works as a receipt."""
    with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path) as gw:
        served = gw.query("rsj-subsidy", "SELECT person_id FROM population.people LIMIT 5")
        refused = gw.query("ybj-insurance", "SELECT address FROM population.people")
    assert served.status_code == 200 and refused.status_code == 403
    key = str(ROOT / "keys" / "demo" / "audit-log.demo.vkey")
    body = tmp_path / "served.json"
    body.write_bytes(served.content)
    code, out = _run({}, "audit", "verify", "--key", key, "--body", str(body))
    assert code == 0, out
    at = served.content.index(b"[")  # inside the result, before the receipt
    body.write_bytes(served.content[:at] + b" " + served.content[at:])
    code, out = _run({}, "audit", "verify", "--key", key, "--body", str(body))
    assert code == 1 and "not what the log says was delivered" in out, out
    refusal = tmp_path / "refused.json"
    refusal.write_bytes(refused.content)
    for option in ("--receipt", "--body"):
        code, out = _run({}, "audit", "verify", "--key", key, option, str(refusal))
        assert code == 0, out


def test_archive_past_retention_then_everything_still_verifies(tmp_path: Path) -> None:
    """Records older than the retention move to archive files that verify offline; the
    live log keeps verifying (export, check) and its search finds the live records."""
    from datetime import UTC, datetime, timedelta

    from gateway.audit.store.protocol import SearchQuery
    from tests.unit.admin.support import FakeClock

    keys = tmp_path / "keys"
    shutil.copytree(ROOT / "keys" / "demo", keys)
    state = tmp_path / "state"
    state.mkdir()
    location = f"sqlite:{state / 'audit.sqlite'}"
    store = open_audit_store(location, load_log_signer(keys))
    sql = "SELECT person_id FROM population.people LIMIT 5"
    old = FakeClock(datetime.now(UTC) - timedelta(days=40))
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store, clock=old
    ) as gw:
        for _ in range(3):
            assert gw.query("rsj-subsidy", sql).status_code == 200
    # The gateway closes its store when it stops: count on a fresh one.
    with closing(open_audit_store(location, load_log_signer(keys))) as counted:
        archived_size = counted.size()
    store = open_audit_store(location, load_log_signer(keys))
    with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store) as gw:
        recent = [gw.query("rsj-subsidy", sql).headers["gateway-audit-id"] for _ in range(2)]
    with closing(open_audit_store(location, load_log_signer(keys))) as counted:
        size = counted.size()
    env = {
        "GATEWAY_KEY_DIR": str(keys),
        "GATEWAY_STATE_DIR": str(state),
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
    }
    pinned = str(keys / "audit-log.demo.vkey")
    archive_dir = tmp_path / "archive"
    code, out = _run(
        env, "audit", "archive", "--dir", str(archive_dir), "--retention-days", "30", "--dry-run"
    )
    assert code == 0 and f"{archived_size} records before" in out, out
    assert not archive_dir.exists()
    code, out = _run(env, "audit", "archive", "--dir", str(archive_dir), "--retention-days", "30")
    assert code == 0, out
    assert f"records 0..{archived_size - 1} are archived, {size - archived_size} live" in out
    files = sorted(archive_dir.glob("audit-archive-*.json"))
    assert len(files) == 1
    code, out = _run(env, "audit", "verify", str(files[0]), "--key", pinned)
    assert code == 0, out
    code, out = _run(env, "audit", "check")
    assert code == 0 and "ok: " in out, out
    bundle = tmp_path / "log.json"
    code, out = _run(env, "audit", "export", "--out", str(bundle))
    assert code == 0, out
    code, out = _run(env, "audit", "verify", str(bundle), "--key", pinned)
    assert code == 0, out
    stream = tmp_path / "log.stream"
    code, out = _run(env, "audit", "export", "--stream", "--out", str(stream))
    assert code == 0, out
    code, out = _run(env, "audit", "verify", str(stream), "--key", pinned)
    assert code == 0, out
    with closing(open_audit_store(location, load_log_signer(keys))) as reopened:
        found = {r.audit_id for _, r in reopened.search(SearchQuery(limit=100))}
        assert set(recent) <= found
        assert len(found) == size - archived_size
    # Running again archives nothing more.
    code, out = _run(env, "audit", "archive", "--dir", str(archive_dir), "--retention-days", "30")
    assert code == 0 and f"records 0..{archived_size - 1} are archived" in out, out
    assert len(list(archive_dir.glob("audit-archive-*.json"))) == 1
