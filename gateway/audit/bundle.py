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
tree from all leaves) and ``checkpoints`` may hold every stored checkpoint, each checked
against the rebuilt tree.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any, Final

from gateway.audit.store.protocol import AuditReader, KeyEpoch, StoredEntry
from gateway.errors import InvalidRequestError
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.note import parse_note

__all__ = [
    "BUNDLE_TYPE",
    "BUNDLE_VERSION",
    "build_bundle",
    "checkpoint_size",
    "full_log_bundle",
    "keys_json",
]

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


def full_log_bundle(store: AuditReader, *, batch: int = 50_000) -> dict[str, Any]:
    """Every entry and every stored checkpoint up to the latest head (offline export)."""
    head = store.head()
    entries: list[dict[str, Any]] = []
    for start in range(0, head.size, batch):
        for e in store.entries(start, min(head.size, start + batch)):
            entries.append(
                {"index": e.idx, "archived": _b64(e.leaf_hash)}
                if e.archived
                else {"index": e.idx, "record": e.record.decode("utf-8")}
            )
    checkpoints: list[dict[str, Any]] = []
    start_size = 0
    while True:
        page = store.checkpoints(start_size, limit=10_000)
        checkpoints.extend({"checkpoint": note} for note in page if note != head.checkpoint)
        if len(page) < 10_000:
            break
        # Sizes only grow with seq; +1 skips the page's last size (two checkpoints of one
        # size exist only at a key rotation, where either one proves the same root).
        start_size = checkpoint_size(page[-1]) + 1
        if start_size > head.size:
            break
    cosigned = store.cosigned(head.size)
    if cosigned is not None:
        checkpoints.append({"checkpoint": cosigned})
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
