"""Witnessing: another party (another department's gateway) cosigns our checkpoints.

A witness (C2SP ``tlog-witness``) remembers, per log it follows, the latest tree head it
cosigned. It cosigns a new checkpoint only if the log's key signed it AND a consistency
proof shows the new tree extends the one it saw. A log operator who forks or rolls back
its log therefore cannot obtain a cosignature on the other branch, and a verifier that
requires cosignatures (``gateway audit verify --witness KEY --min-witnesses N``) refuses a
split view even without holding any earlier receipt itself.

Protocol (``POST /v1/witness/add-checkpoint``, body ``text/plain``, C2SP tlog-witness)::

    old <size the log believes the witness has>
    <base64 consistency proof hash, one per line, from old to the new size>

    <the new checkpoint, a signed note>

Answers: 200 with the cosignature line(s) (``— <witness> <base64>``); 409 with
``Content-Type: text/x.tlog.size`` and the witness's size when ``old`` is not that size
(the client retries with a proof from there); 404 for a log the witness does not follow;
403 when the log's signature does not verify; 422 when the proof does not verify (a fork
or a rollback); 400 for a malformed request.

The witness's state is a SQLite file (``state_dir/witness.sqlite``) advanced by
compare-and-swap, so concurrent requests cannot move it backwards.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from gateway.audit.merkle import EMPTY_ROOT, ProofError, verify_consistency
from gateway.audit.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    cosign_checkpoint,
    open_checkpoint,
    parse_note,
    split_signed,
)

__all__ = [
    "SIZE_MEDIA_TYPE",
    "MemoryWitnessState",
    "SqliteWitnessState",
    "Witness",
    "WitnessAnswer",
    "WitnessState",
    "add_checkpoint_body",
    "load_witness",
    "parse_size_answer",
]

#: In the key directory: this gateway's witness key (a cosignature/v1 note key) and the
#: logs it follows, one verifier key per line.
WITNESS_KEY_FILE: Final = "witness.key"
WITNESSED_LOGS_FILE: Final = "witnessed-logs.vkeys"

SIZE_MEDIA_TYPE: Final = "text/x.tlog.size"
_MAX_PROOF: Final = 64


@dataclass(frozen=True, slots=True)
class WitnessAnswer:
    status: int
    media_type: str
    text: str


class WitnessState(Protocol):
    """The latest (size, root) cosigned per log origin."""

    def get(self, origin: str) -> tuple[int, bytes] | None: ...

    def advance(self, origin: str, old_size: int, new_size: int, root: bytes) -> bool:
        """Set ``origin`` to (new_size, root) if it is at ``old_size`` (absent = 0);
        False if another request moved it first."""
        ...


class MemoryWitnessState:
    def __init__(self) -> None:
        self._heads: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, origin: str) -> tuple[int, bytes] | None:
        with self._lock:
            return self._heads.get(origin)

    def advance(self, origin: str, old_size: int, new_size: int, root: bytes) -> bool:
        with self._lock:
            current = self._heads.get(origin, (0, EMPTY_ROOT))[0]
            if current != old_size:
                return False
            self._heads[origin] = (new_size, root)
            return True


class SqliteWitnessState:
    """Witness state in a SQLite file (WAL, synchronous=FULL: a cosignature is only given
    after the new head is durable, or a crash could let the witness cosign a fork)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS witness_heads ("
                " origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=5)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def get(self, origin: str) -> tuple[int, bytes] | None:
        with self._lock, self._connect() as conn:
            row = conn.execute(
                "SELECT size, root FROM witness_heads WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def advance(self, origin: str, old_size: int, new_size: int, root: bytes) -> bool:
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(
                    "SELECT size FROM witness_heads WHERE origin = ?", (origin,)
                ).fetchone()
                if (0 if row is None else int(row[0])) != old_size:
                    conn.execute("ROLLBACK")
                    return False
                conn.execute(
                    "INSERT INTO witness_heads (origin, size, root) VALUES (?, ?, ?)"
                    " ON CONFLICT (origin) DO UPDATE SET size = excluded.size,"
                    " root = excluded.root",
                    (origin, new_size, root),
                )
                conn.execute("COMMIT")
                return True
            finally:
                conn.close()


def add_checkpoint_body(old_size: int, proof: list[bytes], checkpoint_note: str) -> str:
    """The request body of ``add-checkpoint`` (see the module docstring)."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return "\n".join(lines) + "\n\n" + checkpoint_note


def parse_size_answer(text: str) -> int:
    """The witness's size from a 409 ``text/x.tlog.size`` answer."""
    value = text.strip()
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"not a tree size: {text[:40]!r}")
    return int(value)


class Witness:
    """Cosigns checkpoints of the logs in ``logs`` (origin → the log's verifier key)."""

    def __init__(
        self,
        signer: Signer,
        logs: Mapping[str, Verifier],
        state: WitnessState,
        clock: Callable[[], int],
    ) -> None:
        self._signer = signer
        self._logs = dict(logs)
        self._state = state
        self._clock = clock

    @property
    def verifier(self) -> Verifier:
        return self._signer.verifier()

    def add_checkpoint(self, body: str) -> WitnessAnswer:
        try:
            old_size, proof, note = _parse_request(body)
            checkpoint = Checkpoint.parse(parse_note(note).text)
        except (ValueError, NoteError) as exc:
            return WitnessAnswer(400, "text/plain", f"malformed add-checkpoint request: {exc}\n")
        log_key = self._logs.get(checkpoint.origin)
        if log_key is None:
            return WitnessAnswer(404, "text/plain", f"unknown log {checkpoint.origin!r}\n")
        try:
            open_checkpoint(note, [log_key], origin=checkpoint.origin)
        except NoteError as exc:
            return WitnessAnswer(403, "text/plain", f"the log's signature does not verify: {exc}\n")
        size, root = self._state.get(checkpoint.origin) or (0, EMPTY_ROOT)
        if old_size != size:
            return WitnessAnswer(409, SIZE_MEDIA_TYPE, f"{size}\n")
        if checkpoint.size < size:
            return WitnessAnswer(400, "text/plain", "the checkpoint is older than the witness's\n")
        try:
            verify_consistency(size, checkpoint.size, root, checkpoint.root_hash, proof)
        except ProofError as exc:
            # A fork or a rollback: exactly what a witness exists to refuse.
            return WitnessAnswer(
                422, "text/plain", f"not consistent with the tree head I cosigned: {exc}\n"
            )
        if not self._state.advance(checkpoint.origin, size, checkpoint.size, checkpoint.root_hash):
            current = (self._state.get(checkpoint.origin) or (0, EMPTY_ROOT))[0]
            return WitnessAnswer(409, SIZE_MEDIA_TYPE, f"{current}\n")
        cosigned = cosign_checkpoint(note, self._signer, self._clock())
        _, signatures = split_signed(cosigned)
        mine = [
            line
            for line in signatures.splitlines(keepends=True)
            if line.startswith(f"— {self._signer.name} ")
        ]
        return WitnessAnswer(200, "text/plain", "".join(mine))


def _parse_request(body: str) -> tuple[int, list[bytes], str]:
    head, sep, note = body.partition("\n\n")
    if not sep:
        raise ValueError("no blank line between the proof and the checkpoint")
    lines = head.split("\n")
    first = lines[0].split(" ")
    if len(first) != 2 or first[0] != "old" or not first[1].isascii() or not first[1].isdigit():
        raise ValueError("the first line must be 'old <size>'")
    if len(lines) - 1 > _MAX_PROOF:
        raise ValueError("the consistency proof is too long")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except binascii.Error as exc:
            raise ValueError("a proof line is not base64") from exc
        if len(value) != 32:
            raise ValueError("a proof hash is not 32 bytes")
        proof.append(value)
    return int(first[1]), proof, note


def load_witness(
    key_dir: Path,
    state: Callable[[], WitnessState],
    clock: Callable[[], int],
) -> Witness | None:
    """The witness of ``key_dir``, or None when it holds no witness key. Raises
    ConfigurationError for an unusable key or list of followed logs."""
    key_path = key_dir / WITNESS_KEY_FILE
    if not key_path.exists():
        return None
    from gateway.errors import ConfigurationError

    try:
        signer = Signer.parse(key_path.read_text(encoding="utf-8").strip())
        logs_path = key_dir / WITNESSED_LOGS_FILE
        lines = logs_path.read_text(encoding="utf-8").splitlines() if logs_path.exists() else []
        verifiers = [Verifier.parse(line.strip()) for line in lines if line.strip()]
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"witness configuration in {key_dir}: {exc}") from exc
    return Witness(signer, {v.name: v for v in verifiers}, state(), clock)
