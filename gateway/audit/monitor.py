"""Monitors: a provider's or a consumer's own watch on a gateway's audit log.

A :class:`Monitor` keeps, in a directory of its own, every checkpoint it has accepted
(``pins.json``, bounded) and publishes the head it was last shown (``latest.note``,
accepted or not) for other monitors to compare with theirs.
Each :meth:`Monitor.round`:

1. fetches the log's latest checkpoint (``GET /v1/audit/checkpoint``) and checks its
   signature against the pinned log key;
2. checks it is consistent with the checkpoints held before (all of them on the first
   round, the latest afterwards: consistency is transitive) with RFC 6962 consistency
   proofs from the gateway (``GET /v1/audit/proof/consistency``): a smaller tree is a
   **rollback**, a proof that does not verify a **fork**;
3. with witness keys, fetches what the witnesses cosigned (``GET /v1/audit/cosigned``):
   too few valid cosignatures is **unwitnessed**; a cosigned tree larger than, or not an
   ancestor of, the tree shown to this monitor is a **split view** (the witnesses were
   shown another history);
4. compares with the latest checkpoints of peer monitors (their ``latest.note`` files): a
   peer's view the gateway cannot prove consistent with this one is a **split view**;
5. pins the new head only when nothing was found.

An alert is a log line (``ALERT <kind>: ...``), an optional webhook (JSON POST) and the
exit status of ``gateway audit monitor``. The verification is this module's; the
gateway only supplies proofs, so a lying gateway cannot make a monitor accept a fork.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from gateway.audit.verify import verify_checkpoint
from gateway.audit.witnessing import count_cosignatures
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.errors import NoteError, ProofError
from gateway.tlog.note import Verifier, parse_note
from gateway.tlog.rfc6962 import verify_consistency

__all__ = ["Alert", "Fetch", "Monitor", "MonitorUnavailableError", "http_fetch"]

_log = logging.getLogger("gateway.audit.monitor")

#: Checkpoints kept in ``pins.json`` (the oldest are dropped; the latest is what matters).
MAX_PINS: Final = 1_000
PINS_FILE: Final = "pins.json"
LATEST_FILE: Final = "latest.note"


class MonitorUnavailableError(Exception):
    """The gateway did not answer usefully (not an alert: nothing was shown to be wrong)."""


class Fetch(Protocol):
    """GET ``path`` with ``params`` from the monitored gateway: (status, text)."""

    def __call__(self, path: str, params: Mapping[str, int] | None = None) -> tuple[int, str]: ...


def http_fetch(base_url: str, token: str | None, timeout_s: float = 10.0) -> Fetch:
    """The real transport (httpx; a bearer token for the proof route, which is audited)."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def fetch(path: str, params: Mapping[str, int] | None = None) -> tuple[int, str]:
        try:
            resp = httpx.get(
                base_url.rstrip("/") + path,
                params=dict(params or {}),
                headers=headers,
                timeout=timeout_s,
            )
        except httpx.HTTPError as exc:
            raise MonitorUnavailableError(f"cannot reach {base_url}: {exc}") from exc
        return resp.status_code, resp.text

    return fetch


@dataclass(frozen=True, slots=True)
class Alert:
    #: ``fork`` | ``rollback`` | ``split-view`` | ``unwitnessed`` | ``signature``
    kind: str
    detail: str

    def line(self) -> str:
        return f"ALERT {self.kind}: {self.detail}"


def _checkpoint(note: str) -> Checkpoint:
    return Checkpoint.parse(parse_note(note).text)


class Monitor:
    """One monitored log (see the module docstring)."""

    def __init__(
        self,
        fetch: Fetch,
        pinned: Sequence[Verifier],
        state_dir: Path,
        *,
        witnesses: Sequence[Verifier] = (),
        min_witnesses: int = 0,
        peers: Sequence[Path] = (),
    ) -> None:
        self._fetch = fetch
        self._pinned = list(pinned)
        self._dir = state_dir
        self._witnesses = list(witnesses)
        self._min_witnesses = min_witnesses
        self._peers = list(peers)
        self._first = True

    # -- state ---------------------------------------------------------------------------

    def held(self) -> list[str]:
        try:
            data = json.loads((self._dir / PINS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        notes = data.get("checkpoints") if isinstance(data, dict) else None
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise MonitorUnavailableError(f"{self._dir / PINS_FILE} is not a monitor's pins")
        return notes

    def _write(self, name: str, text: str) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        tmp = self._dir / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self._dir / name)

    def _pin(self, note: str) -> None:
        held = self.held()
        if note not in held:
            held.append(note)
        self._write(PINS_FILE, json.dumps({"checkpoints": held[-MAX_PINS:]}, ensure_ascii=False))

    # -- fetching --------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, int] | None = None) -> tuple[int, str]:
        status, text = self._fetch(path, params)
        if status >= 500:
            raise MonitorUnavailableError(f"{path} answered {status}")
        return status, text

    def _proof(self, first: int, second: int) -> list[bytes] | None:
        """The gateway's consistency proof, or None when it cannot give one."""
        status, text = self._get("/v1/audit/proof/consistency", {"first": first, "second": second})
        if status in (401, 403):
            raise MonitorUnavailableError(f"the proof route refused the monitor ({status})")
        if status != 200:
            return None
        try:
            hashes = json.loads(text)["consistency_proof"]
            return [base64.b64decode(h, validate=True) for h in hashes]
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None

    def _extends(self, old: Checkpoint, new: Checkpoint) -> str | None:
        """Why ``new`` is not an extension of ``old`` (None when it is)."""
        if old.size > new.size:
            return f"size {new.size} is smaller than the {old.size} seen before"
        if old.size == new.size:
            return None if old.root_hash == new.root_hash else f"another root at size {old.size}"
        proof = self._proof(old.size, new.size)
        if proof is None:
            return f"the gateway gives no consistency proof from size {old.size} to {new.size}"
        try:
            verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        except ProofError as exc:
            return f"the consistency proof from size {old.size} to {new.size} fails ({exc})"
        return None

    # -- one round ---------------------------------------------------------------------------

    def round(self) -> list[Alert]:
        """Check the log once; the alerts found (the head is pinned only without any).
        Raises MonitorUnavailableError when the gateway cannot be asked."""
        status, note = self._get("/v1/audit/checkpoint")
        if status != 200:
            raise MonitorUnavailableError(f"/v1/audit/checkpoint answered {status}")
        report = verify_checkpoint(note, self._pinned)
        if not report.ok:
            return [Alert("signature", "; ".join(c.detail for c in report.failures()))]
        head = _checkpoint(note)
        held = self.held()
        alerts = self._check_held(head, held if self._first else held[-1:])
        alerts += self._check_witnesses(head)
        alerts += self._check_peers(head)
        self._first = False
        # Published whatever it shows: a peer shown another history must see this view.
        self._write(LATEST_FILE, note)
        for alert in alerts:
            _log.error(alert.line(), extra={"kind": alert.kind})
        if not alerts:
            self._pin(note)
        return alerts

    def _check_held(self, head: Checkpoint, held: Sequence[str]) -> list[Alert]:
        alerts: list[Alert] = []
        for note in held:
            old = _checkpoint(note)
            problem = self._extends(old, head)
            if problem is not None:
                kind = "rollback" if old.size > head.size else "fork"
                alerts.append(
                    Alert(
                        kind,
                        f"the log of size {head.size} does not extend the checkpoint "
                        f"of size {old.size} this monitor pinned: {problem}",
                    )
                )
        return alerts

    def _check_witnesses(self, head: Checkpoint) -> list[Alert]:
        if not self._witnesses and self._min_witnesses <= 0:
            return []
        status, note = self._get("/v1/audit/cosigned")
        if status == 404:
            return [Alert("unwitnessed", "no checkpoint of this log has been cosigned")]
        if status != 200 or not verify_checkpoint(note, self._pinned).ok:
            return [Alert("unwitnessed", f"the cosigned checkpoint is not usable ({status})")]
        names = count_cosignatures(note, self._witnesses)
        if len(names) < max(self._min_witnesses, 1):
            return [
                Alert(
                    "unwitnessed",
                    f"the latest cosigned checkpoint carries {len(names)} valid cosignature(s) "
                    f"by the listed witnesses, {self._min_witnesses} required",
                )
            ]
        cosigned = _checkpoint(note)
        problem = (
            f"the witnesses cosigned size {cosigned.size}, beyond the {head.size} shown here"
            if cosigned.size > head.size
            else self._extends(cosigned, head)
        )
        if problem is not None:
            return [
                Alert(
                    "split-view",
                    f"this monitor is shown another log than the "
                    f"witnesses ({', '.join(names)}): {problem}",
                )
            ]
        return []

    def _check_peers(self, head: Checkpoint) -> list[Alert]:
        alerts: list[Alert] = []
        for peer in self._peers:
            try:
                note = peer.read_text(encoding="utf-8")
                theirs = _checkpoint(note)
            except FileNotFoundError:
                continue  # the peer has not pinned anything yet
            except (OSError, ValueError, NoteError) as exc:
                alerts.append(Alert("split-view", f"peer {peer} is unreadable: {exc}"))
                continue
            if not verify_checkpoint(note, self._pinned).ok:
                continue  # not signed by this log: not evidence about it
            if theirs.size <= head.size:
                problem = self._extends(theirs, head)
            else:
                problem = self._extends(head, theirs)
            if problem is not None:
                alerts.append(
                    Alert(
                        "split-view",
                        f"peer monitor {peer} holds a checkpoint of size "
                        f"{theirs.size} that is not consistent with the size {head.size} "
                        f"shown here: {problem}",
                    )
                )
        return alerts
