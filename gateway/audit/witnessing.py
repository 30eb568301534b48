"""Witnessed by default: this gateway has its own checkpoints cosigned, keeps the
cosignatures, and refuses to start on a log that went backwards.

Three duties, one object (:class:`Witnessing`), run by every gateway process:

push
    every ``interval_s`` seconds (and for every batch when a quorum is required) the latest
    signed checkpoint goes to each configured witness (another department's gateway,
    ``POST /v1/witness/add-checkpoint``, C2SP tlog-witness; see
    :mod:`gateway.audit.witness` for the other side). Each answer's cosignature is checked
    against the witness key this deployment pinned; the checkpoint with every valid
    cosignature is stored in the log's ``audit_cosigned`` table
    (:meth:`~gateway.audit.store.protocol.AuditAppender.add_cosigned`), from where exports
    and monitors take it.
pin
    the largest signed checkpoint this process has seen is written to
    ``state_dir/audit-head.note`` (atomically, fsync'd) at the same cadence and when the
    gateway stops. The pin lives outside the audit database on purpose: restoring the
    database from a backup does not restore it.
check at start
    before serving, the store's head must be consistent with the pin (not smaller, and the
    pinned root must be the store's root at that size) and with every reachable witness
    (a witness that has cosigned a larger tree, or refuses the head as a fork, proves the
    database was rolled back or replaced). Either contradiction stops the gateway
    (:class:`~gateway.errors.ConfigurationError`) instead of appending a fork on top of a
    rolled-back log. An unreachable witness is only logged: availability of another
    department's gateway must not decide whether this one starts - unless a quorum is
    required, in which case no data leaves without it anyway.

Two ways to bound what an operator can rewrite unseen (``GATEWAY_AUDIT_WITNESS_QUORUM``):

* ``0`` (default): eventual cosigning. Requests are answered as soon as their record is
  durable; the newest records are witnessed within about ``interval_s`` seconds (plus a
  witness round trip). An operator holding the log key could rewrite only what was not
  yet cosigned; ``gateway audit verify --min-witnesses N --max-unwitnessed K`` says how
  many trailing entries a verifier accepts without cosignature.
* ``N > 0``: every batch is cosigned by at least N witnesses before any of its responses
  leaves; the receipts then carry the cosigned checkpoint. Costs one witness round trip
  per batch (measured in ``benchmarks/``); a witness outage turns into 503s.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from gateway.audit.store.protocol import AuditStore, TreeHead, unavailable
from gateway.audit.witness import SIZE_MEDIA_TYPE, add_checkpoint_body, parse_size_answer
from gateway.durable import write_durably
from gateway.errors import ConfigurationError
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.errors import NoteError, ProofError
from gateway.tlog.note import Verifier, parse_note
from gateway.tlog.rfc6962 import verify_consistency

__all__ = [
    "PIN_FILE",
    "HeadPin",
    "Post",
    "WitnessContradictionError",
    "WitnessTarget",
    "Witnessing",
    "count_cosignatures",
    "http_post",
    "parse_targets",
    "request_cosignature",
]

_log = logging.getLogger("gateway.audit.witnessing")

#: In the state directory: the largest checkpoint this gateway has seen.
PIN_FILE: Final = "audit-head.note"


class WitnessContradictionError(Exception):
    """A witness, or this gateway's own pin, has seen a tree this log is not an extension
    of: the log was rolled back, cut or forked."""


class WitnessUnreachableError(Exception):
    """A witness did not answer usefully (network, 5xx, a bad cosignature)."""


@dataclass(frozen=True, slots=True)
class WitnessTarget:
    """A witness this gateway pushes to: its base URL and the key it must cosign with."""

    url: str
    key: Verifier


def parse_targets(text: str) -> tuple[WitnessTarget, ...]:
    """``GATEWAY_AUDIT_WITNESSES``: entries ``<base URL> <witness verifier key>``
    separated by ``;``. ValueError names a bad entry."""
    targets: list[WitnessTarget] = []
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        parts = entry.split()
        if len(parts) != 2 or not parts[0].startswith(("http://", "https://")):
            raise ValueError(f"witness entry {entry!r} is not '<http(s) URL> <verifier key>'")
        key = Verifier.parse(parts[1])
        if key.alg != ALG_COSIGNATURE_V1:
            raise ValueError(f"witness key {key.name} is not a cosignature/v1 key")
        targets.append(WitnessTarget(parts[0].rstrip("/"), key))
    return tuple(targets)


class Post(Protocol):
    """POST ``body`` (text/plain) to ``url``; (status, content type, text)."""

    def __call__(self, url: str, body: bytes) -> tuple[int, str, str]: ...


def http_post(timeout_s: float) -> Post:
    """The real transport (httpx, imported here: the offline verifier never needs it)."""
    import httpx

    def post(url: str, body: bytes) -> tuple[int, str, str]:
        try:
            resp = httpx.post(
                url,
                content=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=timeout_s,
            )
        except httpx.HTTPError as exc:
            raise WitnessUnreachableError(f"cannot reach {url}: {exc}") from exc
        return resp.status_code, resp.headers.get("content-type", ""), resp.text

    return post


def count_cosignatures(note: str, keys: Sequence[Verifier]) -> list[str]:
    """The names of ``keys`` that validly cosigned the checkpoint ``note``."""
    try:
        parsed = parse_note(note)
    except (ValueError, NoteError):
        return []
    text = parsed.text.encode("utf-8")
    names: list[str] = []
    for key in keys:
        if key.alg != ALG_COSIGNATURE_V1:
            continue
        if any(
            (sig.name, sig.key_hash) == (key.name, key.key_hash) and key.verify(text, sig.signature)
            for sig in parsed.signatures
        ):
            names.append(key.name)
    return names


def request_cosignature(
    target: WitnessTarget,
    head: TreeHead,
    proof_from: Callable[[int], list[bytes]],
    post: Post,
    old: int = 0,
) -> str:
    """The witness's cosignature line(s) on ``head`` (C2SP tlog-witness: a 409 names the
    witness's size and the request is repeated with a proof from there). Raises
    WitnessContradictionError when the witness has cosigned a larger tree or refuses the
    proof (a fork or rollback), WitnessUnreachableError otherwise."""
    url = target.url + "/v1/witness/add-checkpoint"
    for _ in range(3):
        if old > head.size:
            raise WitnessContradictionError(
                f"witness {target.key.name} has cosigned size {old}, beyond this log's "
                f"{head.size}: the log was cut or rolled back"
            )
        body = add_checkpoint_body(old, proof_from(old), head.checkpoint).encode("utf-8")
        status, media_type, text = post(url, body)
        if status == 409 and media_type.startswith(SIZE_MEDIA_TYPE):
            old = parse_size_answer(text)
            continue
        if status == 422:
            raise WitnessContradictionError(
                f"witness {target.key.name} refuses the head of size {head.size} as "
                f"inconsistent with what it cosigned: {text.strip()}"
            )
        if status != 200:
            raise WitnessUnreachableError(
                f"witness {target.key.name} answered {status}: {text.strip()[:200]}"
            )
        lines = "".join(
            line + "\n" for line in text.splitlines() if line.startswith(f"— {target.key.name} ")
        )
        if not count_cosignatures(head.checkpoint + lines, [target.key]):
            raise WitnessUnreachableError(f"witness {target.key.name} sent no valid cosignature")
        return lines
    raise WitnessUnreachableError(f"witness {target.key.name} kept changing its size")


def _checkpoint_of(note: str) -> Checkpoint:
    return Checkpoint.parse(parse_note(note).text)


class HeadPin:
    """The largest signed checkpoint this gateway has seen, in a file outside the audit
    database (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> tuple[Checkpoint, str] | None:
        try:
            note = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read the audit head pin {self.path}: {exc}") from exc
        try:
            return _checkpoint_of(note), note
        except (ValueError, NoteError) as exc:
            raise ConfigurationError(
                f"the audit head pin {self.path} is not a checkpoint: {exc}"
            ) from exc

    def advance(self, head: TreeHead) -> None:
        """Pin ``head`` if it is larger than the pinned checkpoint."""
        with self._lock:
            pinned = self.read()
            if pinned is not None and pinned[0].size >= head.size:
                return
            write_durably(self.path, head.checkpoint)

    def check(self, store: AuditStore) -> None:
        """ConfigurationError when the store's log is not an extension of the pin."""
        pinned = self.read()
        if pinned is None:
            return
        checkpoint, _ = pinned
        head = store.head()
        if checkpoint.size > head.size:
            raise ConfigurationError(
                f"the audit log has {head.size} entries, but this gateway has seen it with "
                f"{checkpoint.size} ({self.path}): the audit database was rolled back or "
                "cut. Refusing to serve (appending would fork the log); restore the "
                "latest database"
            )
        try:
            verify_consistency(
                checkpoint.size,
                head.size,
                checkpoint.root_hash,
                head.root,
                store.consistency_proof(checkpoint.size, head.size),
            )
        except (ProofError, ValueError) as exc:
            raise ConfigurationError(
                f"the audit log is not an extension of the checkpoint of size "
                f"{checkpoint.size} this gateway has seen ({self.path}): the database was "
                f"replaced or forked ({exc}). Refusing to serve"
            ) from exc


@dataclass(frozen=True, slots=True)
class Witnessed:
    """The outcome of one push of ``head``: the checkpoint with every valid cosignature
    collected, and which witnesses gave one."""

    head: TreeHead
    note: str
    cosigners: tuple[str, ...]


class Witnessing:
    """Pushes, pins and checks (see the module docstring)."""

    def __init__(
        self,
        store: AuditStore,
        targets: Sequence[WitnessTarget],
        pin: HeadPin | None,
        *,
        post: Post,
        quorum: int = 0,
        interval_s: float = 5.0,
    ) -> None:
        if quorum > len(targets):
            raise ConfigurationError(
                f"GATEWAY_AUDIT_WITNESS_QUORUM={quorum} but only {len(targets)} witness(es) "
                "are configured"
            )
        self._store = store
        self._targets = tuple(targets)
        self._pin = pin
        self._post = post
        self._quorum = quorum
        self._interval_s = interval_s
        #: Per witness: the size it last cosigned (saves a 409 round trip per push).
        self._known: dict[str, int] = {}
        self._witnessed = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def quorum(self) -> int:
        return self._quorum

    @property
    def targets(self) -> tuple[WitnessTarget, ...]:
        return self._targets

    # -- the three duties ----------------------------------------------------------------

    def witness(self, head: TreeHead, *, pin: bool = True) -> Witnessed:
        """Push ``head`` to every witness, store what they cosigned, pin it (``pin``).
        Raises WitnessContradictionError (after trying all) if any witness saw another
        history."""
        with self._lock:
            lines: list[str] = []
            names: list[str] = []
            contradictions: list[str] = []
            for target in self._targets:
                try:
                    got = request_cosignature(
                        target,
                        head,
                        lambda old: self._store.consistency_proof(old, head.size),
                        self._post,
                        self._known.get(target.url, 0),
                    )
                except WitnessContradictionError as exc:
                    contradictions.append(str(exc))
                    continue
                except WitnessUnreachableError as exc:
                    _log.warning("audit witness unavailable", extra={"reason": str(exc)})
                    continue
                self._known[target.url] = head.size
                lines.append(got)
                names.append(target.key.name)
            note = head.checkpoint + "".join(lines)
            if names:
                self._store.add_cosigned(head.size, _checkpoint_of(note).origin, note)
            if pin:
                self._advance_pin(head)
            self._witnessed = max(self._witnessed, head.size)
        if contradictions:
            raise WitnessContradictionError("; ".join(contradictions))
        return Witnessed(head, note, tuple(names))

    def cosign_batch(self, head: TreeHead) -> TreeHead:
        """Quorum mode, called by the group committer before receipts leave: ``head``
        with at least ``quorum`` cosignatures, or AuditUnavailableError (no data)."""
        try:
            # Not pinned per batch (an fsync each): the cadence pins, and so does close().
            witnessed = self.witness(head, pin=False)
        except WitnessContradictionError as exc:
            _log.critical("audit witness contradiction", extra={"reason": str(exc)})
            raise unavailable(exc, "a witness refused the log's head") from exc
        if len(witnessed.cosigners) < self._quorum:
            raise unavailable(
                None,
                f"{len(witnessed.cosigners)} of the {self._quorum} required witness "
                "cosignatures were obtained",
            )
        return dataclasses.replace(head, checkpoint=witnessed.note)

    def check_start(self) -> None:
        """Refuse to start on a log that went backwards (pin, then witnesses)."""
        if self._pin is not None:
            self._pin.check(self._store)
        if not self._targets:
            self._advance_pin(self._store.head())
            return
        try:
            self.witness(self._store.head())
        except WitnessContradictionError as exc:
            raise ConfigurationError(
                f"refusing to serve: {exc}. The audit database was rolled back, cut or "
                "replaced; restore the latest one"
            ) from exc

    def _advance_pin(self, head: TreeHead) -> None:
        if self._pin is not None:
            self._pin.advance(head)

    # -- the background cadence ----------------------------------------------------------

    def tick(self) -> None:
        """One round: witness (or just pin) the head if it grew since the last round."""
        head = self._store.head()
        if head.size <= self._witnessed:
            return
        if not self._targets:
            self._advance_pin(head)
            self._witnessed = head.size
            return
        try:
            self.witness(head)
        except WitnessContradictionError as exc:
            # Loud and repeated: a monitor or an operator must look at this now.
            _log.critical("audit witness contradiction", extra={"reason": str(exc)})

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.tick()
            except Exception:  # a failing round must not end the cadence
                _log.exception("audit witnessing round failed")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-witnessing", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the cadence and pin the final head (best effort: the store may be gone)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval_s + 10)
            self._thread = None
        try:
            self._advance_pin(self._store.head())
        except Exception:  # closing: report, never raise
            _log.exception("could not pin the audit head at shutdown")
