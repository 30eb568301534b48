"""``gateway audit …``: the audit log's evidence — verify it offline, look up identifiers,
and the operator's key and store commands.

``verify`` and ``lookup-id`` (auditors) need no server and no database: ``verify`` reads
files (an evidence bundle, receipts, checkpoints, response bodies) and the public keys the
user pins, and ``lookup-id`` needs only the audit secret. ``init-key``, ``rotate-key``,
``export``, ``check`` and ``witness-push`` (operators) need the key directory and the
audit store.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.audit.evidence import EvidenceKeys, load_audit_secret
from gateway.audit.identifiers import KINDS, classify
from gateway.audit.receipt import Receipt, receipt_in_document
from gateway.audit.verify import (
    Check,
    Report,
    verify_body,
    verify_bundle_json,
    verify_checkpoint,
    verify_cosignatures,
    verify_receipt,
)
from gateway.cli.common import load, settings_from_env
from gateway.errors import ConfigurationError, GatewayError
from gateway.settings import Settings
from gateway.tlog.note import Verifier

if TYPE_CHECKING:
    from gateway.audit.signing import CheckpointSigner
    from gateway.audit.store.protocol import AuditStore

__all__ = ["audit"]

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

audit = click.Group(
    "audit",
    context_settings=_CONTEXT,
    help="""Audit log evidence 审计日志证据：verify it offline, look up identifiers.

    The audit log is an RFC 6962 Merkle log with signed checkpoints (C2SP). Anyone with
    the log's public key can check an exported evidence bundle, a receipt or a response
    body without access to the gateway or its database.

    \b
    Examples:
      gateway audit verify bundle.json --key audit-log.vkey
      gateway audit verify --key audit-log.vkey --receipt receipt.json
      gateway audit lookup-id 11010519491231002X --kind cn_id --key-dir keys/
    """,
)


def _parse_keys(values: tuple[str, ...], option: str) -> list[Verifier]:
    """Verifier keys given inline or as files holding one key per line."""
    keys: list[Verifier] = []
    for value in values:
        path = Path(value)
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise click.BadParameter(f"cannot read {path}: {exc}", param_hint=option) from exc
            for number, line in enumerate(text.splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    keys.append(Verifier.parse(line))
                except ValueError as exc:
                    raise click.BadParameter(f"{path}:{number}: {exc}", param_hint=option) from exc
            continue
        try:
            keys.append(Verifier.parse(value.strip()))
        except ValueError as exc:
            raise click.BadParameter(
                f"{value!r} is neither a file nor a verifier key: {exc}", param_hint=option
            ) from exc
    return keys


def _read_receipt(path: Path) -> Receipt | Check:
    """A receipt file: the receipt JSON itself, or a response body with one attached.
    A file that is neither is evidence that does not verify, not a usage error."""
    try:
        return receipt_in_document(path.read_bytes())
    except ValueError as exc:
        return Check("receipt", False, f"{path}: not a receipt or a body with one ({exc})")


def _is_stream(path: Path) -> bool:
    from gateway.audit.stream import STREAM_PREFIX

    with path.open("rb") as f:
        return f.read(len(STREAM_PREFIX)) == STREAM_PREFIX


def _read_note(path: Path) -> str | Check:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return Check("held checkpoint", False, f"{path}: not a signed note (UTF-8 text): {exc}")


def _labelled(report: Report, path: Path) -> Report:
    # Several files verified one by one: say which file each line is about.
    return Report(tuple(Check(c.name, c.ok, f"{path}: {c.detail}") for c in report.checks))


_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


@audit.command(
    "verify",
    context_settings=_CONTEXT,
    short_help="Verify audit evidence offline 离线核验审计证据.",
)
@click.argument("bundle", required=False, type=_PATH)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help="Pinned log key: a verifier key 'name+hash+base64' or a file with one per line "
    "(e.g. audit-log.vkey). Repeatable. Required.",
)
@click.option(
    "--receipt",
    "receipts",
    multiple=True,
    type=_PATH,
    metavar="FILE",
    help="A receipt you kept (receipt JSON, or a response body with its receipt). Repeatable.",
)
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=_PATH,
    metavar="FILE",
    help="A signed checkpoint (note) you kept from earlier. Repeatable.",
)
@click.option(
    "--body",
    type=_PATH,
    metavar="FILE",
    help="A response body you kept (receipt attached, a refusal, or the result with its "
    "--receipt apart): checks its bytes against the record the receipt carries.",
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    metavar="KEY",
    help="A witness's cosignature key (or a file of them). Repeatable.",
)
@click.option(
    "--min-witnesses",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Cosignatures by --witness keys required on every checkpoint given: the bundle's "
    "log must be covered by one (its head or the latest cosigned one it carries), and each "
    "--checkpoint must carry them.",
)
@click.option(
    "--max-unwitnessed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Entries past the latest cosigned checkpoint accepted with --min-witnesses "
    "(eventual cosigning leaves the newest few seconds of records unwitnessed).",
)
@click.option(
    "--fast",
    is_flag=True,
    help=(
        "Check every leaf hash, root, proof and signature but decode only the records "
        "your receipts/body name (rates measured: benchmarks/README.md)."
    ),
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes hashing (and decoding) the records of a streamed export.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Language of the verdict line (both are printed; this one first).",
)
@click.pass_context
def verify_command(
    ctx: click.Context,
    bundle: Path | None,
    keys: tuple[str, ...],
    receipts: tuple[Path, ...],
    checkpoints: tuple[Path, ...],
    body: Path | None,
    witnesses: tuple[str, ...],
    min_witnesses: int,
    max_unwitnessed: int,
    fast: bool,
    jobs: int,
    lang: str,
) -> None:
    """Verify audit evidence offline 离线核验审计证据.

    Checks an evidence bundle (exported from the gateway) against the log keys you pin:
    the checkpoint's signature, every record, the Merkle proofs (or, for a complete
    bundle, the whole rebuilt tree), key hand-overs, and the evidence you kept from
    before. A receipt, a checkpoint or a response body you kept exposes a log that was
    edited, cut, rolled back to a backup or forked since you got it.

    With no BUNDLE, the receipts, bodies and checkpoints are verified by themselves
    (signature and inclusion proof only).

    Exit status: 0 when everything verifies, 1 when any check fails, 2 for a usage error.

    \b
    Examples:
      gateway audit verify bundle.json --key audit-log.vkey
      gateway audit verify bundle.json --key audit-log.vkey --receipt r41.json \\
          --checkpoint head-2026-11-23.note --body response-41.json
      gateway audit verify bundle.json --key audit-log.vkey \\
          --witness witness.vkey --min-witnesses 1 --lang zh
      gateway audit verify --key audit-log.vkey --receipt response-41.json
    """
    pinned = _parse_keys(keys, "--key")
    if not pinned:
        raise click.UsageError("pin the log's public key with --key (e.g. --key audit-log.vkey)")
    witness_keys = _parse_keys(witnesses, "--witness")
    if bundle is None and not (receipts or checkpoints or body):
        raise click.UsageError(
            "nothing to verify: give a BUNDLE, --receipt, --checkpoint or --body"
        )
    if bundle is None and min_witnesses and not checkpoints:
        raise click.UsageError(
            "--min-witnesses applies to a BUNDLE's checkpoint or to --checkpoint notes"
        )

    unreadable: list[Check] = []
    receipt_values: list[tuple[Path, Receipt]] = []
    for path in receipts:
        found = _read_receipt(path)
        if isinstance(found, Check):
            unreadable.append(found)
        else:
            receipt_values.append((path, found))
    notes: list[tuple[Path, str]] = []
    for path in checkpoints:
        note = _read_note(path)
        if isinstance(note, Check):
            unreadable.append(note)
        else:
            notes.append((path, note))
    body_bytes = None if body is None else body.read_bytes()

    report = Report(tuple(unreadable))
    if bundle is not None and _is_stream(bundle):
        from gateway.audit.verify.stream import verify_stream

        with bundle.open("rb") as source:
            streamed, stats = verify_stream(
                source,
                pinned,
                receipts=[r for _, r in receipt_values],
                checkpoints=[n for _, n in notes],
                witnesses=witness_keys,
                min_witnesses=min_witnesses,
                max_unwitnessed=max_unwitnessed,
                decode_records=not fast,
                jobs=jobs,
            )
        report += streamed
        if body is not None and body_bytes is not None:
            kept = receipt_values[0][1] if receipt_values else None
            report += _labelled(verify_body(body_bytes, pinned, kept), body)
        rate = stats.records / stats.seconds if stats.seconds else 0.0
        what = "hashed and decoded" if stats.decoded else "hashed"
        click.echo(f"{stats.records} records {what} in {stats.seconds:.2f} s ({rate:,.0f}/s)")
    elif bundle is not None:
        report += verify_bundle_json(
            bundle.read_bytes(),
            pinned,
            receipts=[r for _, r in receipt_values],
            checkpoints=[n for _, n in notes],
            body=body_bytes,
            witnesses=witness_keys,
            min_witnesses=min_witnesses,
            max_unwitnessed=max_unwitnessed,
            decode_records=not fast,
        )
    else:
        for path, receipt in receipt_values:
            report += _labelled(verify_receipt(receipt, pinned), path)
        for path, note in notes:
            report += _labelled(verify_checkpoint(note, pinned), path)
            if min_witnesses or witness_keys:
                report += _labelled(verify_cosignatures(note, witness_keys, min_witnesses), path)
        if body is not None and body_bytes is not None:
            # A body kept without its receipt is checked with the first --receipt given.
            kept = receipt_values[0][1] if receipt_values else None
            report += _labelled(verify_body(body_bytes, pinned, kept), body)

    click.echo(report.render(lang))
    click.echo(report.verdict("zh" if lang == "en" else "en"))
    ctx.exit(0 if report.ok else 1)


@audit.command(
    "monitor",
    context_settings=_CONTEXT,
    short_help="Watch a gateway's audit log for forks, rollbacks, split views 监控审计日志.",
)
@click.option("--url", required=True, help="Base URL of the monitored gateway.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help="Pinned log key (as for verify). Repeatable. Required.",
)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="This monitor's directory: the checkpoints it pinned (pins.json, latest.note).",
)
@click.option(
    "--token",
    envvar="GATEWAY_MONITOR_TOKEN",
    default=None,
    help="Bearer token for the consistency-proof route (a system's access token or an "
    "officer's session); default $GATEWAY_MONITOR_TOKEN.",
)
@click.option("--witness", "witnesses", multiple=True, metavar="KEY", help="Witness key.")
@click.option(
    "--min-witnesses",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Cosignatures the log's latest cosigned checkpoint must carry.",
)
@click.option(
    "--peer",
    "peers",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Another monitor's latest.note (shared storage): its view is compared. Repeatable.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Seconds between rounds; 0: one round and exit.",
)
@click.option("--webhook", default=None, help="POST every alert here as JSON.")
@click.pass_context
def monitor_command(
    ctx: click.Context,
    url: str,
    keys: tuple[str, ...],
    state_dir: Path,
    token: str | None,
    witnesses: tuple[str, ...],
    min_witnesses: int,
    peers: tuple[Path, ...],
    interval: float,
    webhook: str | None,
) -> None:
    """Watch a gateway's audit log 监控审计日志：分叉、回滚、分视图告警.

    Each round fetches the log's latest checkpoint, checks its signature against the
    pinned key, checks it extends every checkpoint this monitor pinned before (RFC 6962
    consistency proofs), compares it with what the witnesses cosigned and with the views
    of --peer monitors, and pins it. The first problem found is an alert: a line
    "ALERT <fork|rollback|split-view|unwitnessed|signature>: ..." on stderr, a JSON POST
    to --webhook, and exit status 1 (run it from cron or a systemd timer, or with
    --interval). Exit 0: no alert; 3: the gateway could not be asked.

    \b
    Examples:
      gateway audit monitor --url https://gw.example --key audit-log.vkey --state mon/
      gateway audit monitor --url https://gw.example --key audit-log.vkey --state mon/ \\
          --witness witness.vkey --min-witnesses 1 --peer /shared/other-monitor/latest.note \\
          --interval 30 --webhook https://alerts.example/hook
    """
    from gateway.audit.monitor import Monitor, MonitorUnavailableError, http_fetch

    pinned = _parse_keys(keys, "--key")
    if not pinned:
        raise click.UsageError("pin the log's public key with --key")
    monitor = Monitor(
        http_fetch(url, token),
        pinned,
        state_dir,
        witnesses=_parse_keys(witnesses, "--witness"),
        min_witnesses=min_witnesses,
        peers=list(peers),
    )
    while True:
        try:
            alerts = monitor.round()
        except MonitorUnavailableError as exc:
            click.echo(f"monitor: {exc}", err=True)
            ctx.exit(3)
        if alerts:
            for alert in alerts:
                click.echo(alert.line(), err=True)
            if webhook:
                _post_alerts(webhook, url, [(a.kind, a.detail) for a in alerts])
            ctx.exit(1)
        click.echo(f"ok: {url} is consistent with {len(monitor.held())} pinned checkpoint(s)")
        if interval <= 0:
            ctx.exit(0)
        time.sleep(interval)


def _post_alerts(webhook: str, url: str, alerts: list[tuple[str, str]]) -> None:
    import httpx

    body = {"log": url, "alerts": [{"kind": k, "detail": d} for k, d in alerts]}
    try:
        httpx.post(webhook, json=body, timeout=10)
    except httpx.HTTPError as exc:  # the exit status and the log line still alert
        click.echo(f"monitor: webhook {webhook} failed: {exc}", err=True)


@audit.command(
    "lookup-id",
    context_settings=_CONTEXT,
    short_help="An identifier's token in the log 查询证件号码的日志令牌.",
)
@click.argument("value")
@click.option(
    "--kind",
    type=click.Choice([kind.name for kind in KINDS]),
    default=None,
    help="Identifier kind; detected from VALUE when omitted.",
)
@click.option(
    "--key-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="GATEWAY_KEY_DIR",
    required=True,
    help="Directory holding the audit secret (audit-secret.bin); default $GATEWAY_KEY_DIR.",
)
def lookup_id_command(value: str, kind: str | None, key_dir: Path) -> None:
    """Print the token an identifier has in the audit log 查询证件号码在审计日志中的令牌.

    ID card numbers (cn_id), unified social credit codes (uscc), bank card numbers
    (bank_card) and mobile phone numbers (phone) are stored in the audit log only as
    keyed HMAC tokens, so that the log does not spread them. An auditor holding the
    audit secret computes the token of a number here, then searches the log's SQL text
    for it. Spelling does not matter: spaces, hyphens and a lowercase x are normalised.

    \b
    Examples:
      gateway audit lookup-id 11010519491231002X --kind cn_id --key-dir keys/
      gateway audit lookup-id "138 0013 8000" --key-dir keys/
    """
    try:
        secret = load_audit_secret(key_dir)
        redactor = EvidenceKeys.from_secret(secret).redactor()
    except ConfigurationError as exc:
        raise click.ClickException(exc.detail) from exc
    if kind is None:
        found = classify(value)
        if found is None:
            raise click.BadParameter(
                "not recognised as an identifier; give its --kind", param_hint="VALUE"
            )
        kind = found[0].name
    try:
        token = redactor.token(kind, value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="VALUE") from exc
    click.echo(token)


# -------------------------------------------------------------- operator commands


def _open_store(settings: Settings, signer: CheckpointSigner) -> AuditStore:
    from gateway.audit.store.open import open_audit_store

    try:
        return open_audit_store(settings.audit_location, signer)
    except GatewayError as exc:
        raise click.ClickException(exc.internal_detail or exc.detail) from exc


@audit.command("init-key")
@click.option(
    "--origin",
    required=True,
    help="Log origin = key name, e.g. audit.gateway.example.gov.cn/2026-11-23 (unique per key).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Key directory (default GATEWAY_KEY_DIR).",
)
def audit_init_key(origin: str, out_dir: Path | None) -> None:
    """Create the audit log signing key and the audit secret 创建审计日志签名密钥.

    Writes audit-log.key (private, 0600), audit-log.vkey (publish it: verifiers pin it)
    and, if missing, audit-secret.bin (keys identifier tokens and row salts; give it to
    auditors). Refuses to overwrite existing files.
    """
    from gateway.audit.evidence import AUDIT_SECRET_FILE, write_audit_secret
    from gateway.audit.signing import new_log_signer, write_log_key

    directory = out_dir or settings_from_env().key_dir
    try:
        private, public = write_log_key(directory, new_log_signer(origin))
    except (FileExistsError, ConfigurationError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"private key: {private}\nverifier key ({public}):\n{public.read_text().strip()}")
    if not (directory / AUDIT_SECRET_FILE).exists():
        click.echo(f"audit secret: {write_audit_secret(directory)}")


@audit.command("rotate-key")
@click.option("--origin", required=True, help="Origin of the NEW key (must differ from the old).")
def audit_rotate_key(origin: str) -> None:
    """Rotate the audit signing key: a new origin, hand-over signed by both keys 轮换密钥.

    Run with the gateway stopped. Signs a final checkpoint with the old key, stores the
    hand-over note (old + new signatures) in the log, then moves the old private key aside
    (audit-log.key.retired-<n>; destroy it once the hand-over is published) and writes the
    new key in its place. Verifiers that pinned the old key accept the new one through the
    hand-over.
    """
    from gateway.audit.rotation import sign_handover
    from gateway.audit.signing import LOG_KEY_FILE, load_log_signer, new_log_signer
    from gateway.auth.keys import write_private

    settings = settings_from_env()
    old = load(lambda _s: load_log_signer(settings.key_dir))
    if origin == old.origin:
        raise click.ClickException("the new origin must differ from the current one")
    new = load(lambda _s: new_log_signer(origin))
    # The new private key is on disk BEFORE the log switches to it: a log whose current
    # key nobody holds could never be appended to again.
    current = settings.key_dir / LOG_KEY_FILE
    pending = settings.key_dir / f"{LOG_KEY_FILE}.next"
    try:
        write_private(pending, (new.note_signer.encode() + "\n").encode("utf-8"))
    except FileExistsError as exc:
        raise click.ClickException(
            f"{pending} exists: an earlier rotation did not finish; check the log's key "
            "history (GET /v1/audit/keys) and move the right key in place"
        ) from exc
    store = _open_store(settings, old)
    try:
        epoch = store.rotate(new, lambda head: sign_handover(old, new, head))
    except GatewayError as exc:
        pending.unlink()
        raise click.ClickException(exc.internal_detail or exc.detail) from exc
    finally:
        store.close()
    if current.exists():
        n = 1
        while (settings.key_dir / f"{LOG_KEY_FILE}.retired-{n}").exists():
            n += 1
        current.rename(settings.key_dir / f"{LOG_KEY_FILE}.retired-{n}")
    pending.rename(current)
    current.with_suffix(".vkey").write_text(new.verifier.encode() + "\n", encoding="utf-8")
    click.echo(f"rotated at size {epoch.from_size}: {old.origin} -> {new.origin}")
    click.echo(f"new verifier key: {new.verifier.encode()}")
    click.echo(f"hand-over note:\n{epoch.handover}")


@audit.command("export")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the evidence bundle (JSON).",
)
@click.option(
    "--stream",
    is_flag=True,
    help="Write the streamed format (one line per record, bounded memory at any size; a "
    "bounded series of checkpoints) instead of one JSON document.",
)
def audit_export(out_file: Path, stream: bool) -> None:
    """Export the whole log as a complete evidence bundle 导出完整审计日志.

    Every record and every stored checkpoint, with the key history and the latest
    checkpoint the witnesses cosigned. Verify it anywhere with:
    gateway audit verify FILE --key <pinned audit-log.vkey>
    """
    from gateway.audit.bundle import full_log_bundle
    from gateway.audit.signing import load_log_signer

    settings = settings_from_env()
    store = _open_store(settings, load(lambda _s: load_log_signer(settings.key_dir)))
    if stream:
        from gateway.audit.stream import write_stream

        try:
            with out_file.open("wb") as out:
                records, checkpoints = write_stream(store, out)
        except GatewayError as exc:
            raise click.ClickException(exc.internal_detail or exc.detail) from exc
        finally:
            store.close()
        click.echo(f"{records} records, {checkpoints} checkpoints (streamed)")
        return
    try:
        bundle = full_log_bundle(store)
    except GatewayError as exc:
        raise click.ClickException(exc.internal_detail or exc.detail) from exc
    finally:
        store.close()
    out_file.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    click.echo(f"{len(bundle['entries'])} records, {len(bundle['checkpoints']) + 1} checkpoints")


@audit.command("archive")
@click.option(
    "--dir",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the archive bundles go. They become the only copy of the archived records: "
    "keep the directory on backed-up, write-once storage.",
)
@click.option(
    "--retention-days",
    type=click.IntRange(min=1),
    default=None,
    help="Archive records older than this many days (default GATEWAY_AUDIT_RETENTION_DAYS, "
    "1096 = 3 years).",
)
@click.option(
    "--max-records",
    type=click.IntRange(1, 100_000),
    default=10_000,
    show_default=True,
    help="Records per archive file.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be archived; change nothing.")
def audit_archive(
    out_dir: Path, retention_days: int | None, max_records: int, dry_run: bool
) -> None:
    """Move records past retention to verified archive bundles 归档超过保存期限的审计记录.

    Each archive file is an evidence bundle (records with inclusion proofs to the signed
    head), written durably, read back and verified before the records' bytes are removed
    from the live store; their leaf hashes and every checkpoint stay, so the live log
    still verifies and later proofs are unchanged. Verify an archive offline with:

    \b
      gateway audit verify DIR/audit-archive-<first>-<last>.json --key <audit-log.vkey>
    """
    from gateway.audit.archive import archivable, archive_expired, plan_archive
    from gateway.audit.signing import load_log_signer

    settings = settings_from_env()
    days = retention_days or settings.audit_retention_days
    signer = load(lambda _s: load_log_signer(settings.key_dir))
    store = archivable(_open_store(settings, signer))
    now = datetime.now(UTC)
    try:
        if dry_run:
            plan = plan_archive(store, now=now, retention_days=days)
            click.echo(
                f"{plan.count} records before {plan.cutoff} would be archived"
                + (f" (indices {plan.start}..{plan.upto - 1})" if plan.count else "")
            )
            return
        made = archive_expired(
            store,
            out_dir,
            [signer.verifier],
            now=now,
            retention_days=days,
            max_records=max_records,
            progress=lambda m: click.echo(
                f"archived {m.start}..{m.upto - 1} -> {out_dir / m.name} (sha256 {m.sha256[:16]}…)"
            ),
        )
        marks = store.archives()
        total = marks[-1].upto if marks else 0
        click.echo(
            f"{sum(m.upto - m.start for m in made)} records archived in {len(made)} file(s); "
            f"records 0..{total - 1} are archived, {store.size() - total} live"
            if total
            else "no record is past retention"
        )
    except (GatewayError, ValueError) as exc:
        detail = exc.internal_detail or exc.detail if isinstance(exc, GatewayError) else str(exc)
        raise click.ClickException(f"nothing more was archived: {detail}") from exc
    finally:
        store.close()


@audit.command("check")
def audit_check() -> None:
    """Check the stored log: contiguous indices, leaf hashes, stored root 检查审计库."""
    from gateway.audit.signing import load_log_signer

    settings = settings_from_env()
    store = _open_store(settings, load(lambda _s: load_log_signer(settings.key_dir)))
    try:
        store.check()
        click.echo(f"ok: {store.size()} records; head {store.head().checkpoint.splitlines()[1]}")
        from gateway.audit.record import format_time
        from gateway.audit.store.protocol import SearchQuery

        cutoff = format_time(datetime.now(UTC) - timedelta(days=settings.audit_retention_days))
        older = store.search(SearchQuery(until=cutoff, limit=1))
        click.echo(
            f"retention {settings.audit_retention_days} days: "
            + (
                f"records up to index {older[0][0]} are past it (archive them with "
                "`gateway audit archive --dir DIR`)"
                if older
                else "no record is past it"
            )
        )
    except GatewayError as exc:
        raise click.ClickException(exc.detail) from exc
    finally:
        store.close()


@audit.command("witness-push")
@click.option(
    "--url", required=True, help="Base URL of the witness gateway, e.g. https://gw.ybj.example"
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the cosigned checkpoint here (default: print it).",
)
def audit_witness_push(url: str, out_file: Path | None) -> None:
    """Have a witness cosign the latest checkpoint 请见证方联署最新检查点.

    Sends the log's latest signed checkpoint with a consistency proof from the size the
    witness last cosigned (C2SP tlog-witness; a 409 answer tells that size and the request
    is repeated). The cosigned note then verifies with
    gateway audit verify --key <log key> --checkpoint FILE --witness <witness key> --min-witnesses 1
    """
    import httpx

    from gateway.audit.signing import load_log_signer
    from gateway.audit.witness import add_checkpoint_body, parse_size_answer

    settings = settings_from_env()
    store = _open_store(settings, load(lambda _s: load_log_signer(settings.key_dir)))
    try:
        head = store.head()
        old, proof = 0, store.consistency_proof(0, head.size)
        for _ in range(3):
            resp = httpx.post(
                url.rstrip("/") + "/v1/witness/add-checkpoint",
                content=add_checkpoint_body(old, proof, head.checkpoint).encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=30,
            )
            if resp.status_code == 409:
                old = parse_size_answer(resp.text)
                if old > head.size:
                    raise click.ClickException(
                        f"the witness has cosigned size {old}, beyond this log's {head.size}: "
                        "the log was cut or rolled back"
                    )
                proof = store.consistency_proof(old, head.size)
                continue
            if resp.status_code != 200:
                raise click.ClickException(
                    f"the witness refused ({resp.status_code}): {resp.text.strip()}"
                )
            cosigned = head.checkpoint + resp.text
            if out_file is None:
                click.echo(cosigned, nl=False)
            else:
                out_file.write_text(cosigned, encoding="utf-8")
                click.echo(f"cosigned checkpoint of size {head.size} written to {out_file}")
            return
        raise click.ClickException("the witness kept changing its size; try again")
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the witness: {exc}") from exc
    finally:
        store.close()
