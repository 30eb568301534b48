"""Evidence bundles: what an auditor exports and anybody verifies offline.

One JSON document (``"type": "gateway-audit-evidence"``), self-contained except for the
public keys a verifier pins::

    {
      "type": "gateway-audit-evidence", "v": 1,
      "complete": false,                    true: entries are the whole log 0..size-1
      "keys": [                             the log's signing-key epochs, oldest first
        {"origin": "...", "vkey": "<name>+<hash>+<key>", "from_size": 0, "handover": null},
        {"origin": "...", "vkey": "...", "from_size": 812, "handover": "<note signed by both>"}
      ],
      "checkpoint": "<signed note>",        the tree head every proof below leads to
      "entries": [                          records, each with its audit path to "checkpoint"
        {"index": 41, "record": "<canonical record JSON text>", "inclusion_proof": ["b64", ...]}
      ],
      "checkpoints": [                      earlier heads (e.g. receipts' checkpoints), each
        {"checkpoint": "<signed note>",     with a consistency proof to "checkpoint"
         "consistency_proof": ["b64", ...]}
      ]
    }

Every bundle also carries, among ``checkpoints``, the latest checkpoint the witnesses
cosigned (:mod:`gateway.audit.witnessing`) that the head covers, with its cosignature
lines: ``gateway audit verify --witness KEY --min-witnesses N`` counts them there, and a
log rewritten after they were given no longer matches their root.

``record`` is the exact canonical text: its UTF-8 encoding is the leaf the tree commits
to. In a complete bundle of a log with archived records (``gateway audit archive``), an
archived entry is ``{"index": 7, "archived": "<b64 leaf hash>"}``: its record is in its
archive bundle, its leaf hash still rebuilds the tree; a partial bundle never holds one.
In a complete bundle entries carry no inclusion proofs (the verifier rebuilds the
tree from all leaves) and ``checkpoints`` holds a bounded series of the stored
checkpoints (:func:`bounded_series`), each checked against the rebuilt tree.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from gateway.audit.store.protocol import AuditReader, KeyEpoch, StoredEntry
from gateway.errors import InvalidRequestError
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.note import parse_note

__all__ = [
    "BUNDLE_TYPE",
    "BUNDLE_VERSION",
    "MAX_CHECKPOINTS",
    "bounded_series",
    "build_bundle",
    "checkpoint_size",
    "full_log_bundle",
    "keys_json",
]

#: Default bound of the checkpoint series of a whole-log export.
MAX_CHECKPOINTS: Final = 1_000

BUNDLE_TYPE: Final = "gateway-audit-evidence"
BUNDLE_VERSION: Final = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def keys_json(epochs: Iterable[KeyEpoch]) -> list[dict[str, Any]]:
    return [
        {"origin": e.origin, "vkey": e.vkey, "from_size": e.from_size, "handover": e.handover}
        for e in epochs
    ]


def checkpoint_size(note: str) -> int:
    """The tree size a signed checkpoint names (no signature check: for selection)."""
    return Checkpoint.parse(parse_note(note).text).size


def build_bundle(
    store: AuditReader,
    entries: Sequence[StoredEntry],
    *,
    earlier: Iterable[str] = (),
) -> dict[str, Any]:
    """A bundle proving ``entries`` against the store's latest head, plus consistency
    proofs from each ``earlier`` checkpoint (a receipt's, say) to that head."""
    archived = [e.idx for e in entries if e.archived]
    if archived:
        raise InvalidRequestError(
            f"Records {archived[0]}..{archived[-1]} are archived past retention: their "
            "evidence is in the archive bundle `gateway audit archive` wrote, not in the "
            "live log."
        )
    head = store.head()
    out_entries = [
        {
            "index": e.idx,
            "record": e.record.decode("utf-8"),
            "inclusion_proof": [_b64(h) for h in store.inclusion_proof(e.idx, head.size)],
        }
        for e in entries
    ]
    out_checkpoints = []
    cosigned = store.cosigned(head.size)
    for note in [*earlier, *([cosigned] if cosigned is not None else [])]:
        size = checkpoint_size(note)
        # A checkpoint beyond the head is itself the evidence of a cut log: ship it
        # without a proof and let the verifier say so.
        proof = (
            None
            if size > head.size
            else [_b64(h) for h in store.consistency_proof(size, head.size)]
        )
        out_checkpoints.append({"checkpoint": note, "consistency_proof": proof})
    return _document(store, head.checkpoint, out_entries, out_checkpoints, complete=False)


def _stored(store: AuditReader, head_size: int) -> Iterator[str]:
    start = 0
    while True:
        page = store.checkpoints(start, limit=1_000)
        yield from page
        if len(page) < 1_000:
            return
        start = checkpoint_size(page[-1]) + 1
        if start > head_size:
            return


def bounded_series(store: AuditReader, max_checkpoints: int = MAX_CHECKPOINTS) -> list[str]:
    """The stored checkpoints a whole-log export carries, sorted by size, without the
    head: one per ``size // max_checkpoints`` entries, every key hand-over and the latest
    cosigned checkpoint (with its cosignatures). The gateway signs one per commit batch
    (12,695 for 20,000 records, ~200 µs each to verify); the others lose nothing: a
    receipt's or a held checkpoint is proven against the root the verifier recomputes at
    its size. Reads the stored series page by page."""
    head = store.head()
    step = max(1, head.size // max(1, max_checkpoints))
    handovers = {epoch.from_size for epoch in store.key_history()}
    kept: list[str] = []
    last = -step
    for note in _stored(store, head.size):
        size = checkpoint_size(note)
        if note == head.checkpoint or size > head.size:
            continue
        if size in handovers or size >= last + step:
            kept.append(note)
            last = size
    cosigned = store.cosigned(head.size)
    if cosigned is not None:
        kept.append(cosigned)
    return sorted(kept, key=checkpoint_size)


def full_log_bundle(
    store: AuditReader, *, batch: int = 50_000, max_checkpoints: int = MAX_CHECKPOINTS
) -> dict[str, Any]:
    """Every entry up to the latest head and a bounded series of its stored checkpoints
    (:func:`bounded_series`): the offline export."""
    head = store.head()
    entries: list[dict[str, Any]] = []
    for start in range(0, head.size, batch):
        for e in store.entries(start, min(head.size, start + batch)):
            entries.append(
                {"index": e.idx, "archived": _b64(e.leaf_hash)}
                if e.archived
                else {"index": e.idx, "record": e.record.decode("utf-8")}
            )
    checkpoints = [{"checkpoint": note} for note in bounded_series(store, max_checkpoints)]
    return _document(store, head.checkpoint, entries, checkpoints, complete=True)


def _document(
    store: AuditReader,
    checkpoint: str,
    entries: list[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    *,
    complete: bool,
) -> dict[str, Any]:
    return {
        "type": BUNDLE_TYPE,
        "v": BUNDLE_VERSION,
        "complete": complete,
        "keys": keys_json(store.key_history()),
        "checkpoint": checkpoint,
        "entries": entries,
        "checkpoints": checkpoints,
    }
