"""Streamed evidence: the whole log as one header line and one line per record, written
and verified in bounded memory whatever the log's size (years of records).

Format (``gateway audit export --stream``; UTF-8, ``\\n`` after every line)::

    {"type":"gateway-audit-evidence-stream","v":1,"size":N,"keys":[...],
     "checkpoint":"<head note>","checkpoints":["<note>", ...]}
    <canonical text of record 0>
    <canonical text of record 1>
    ...
    <canonical text of record N-1>

An entry archived past retention (``gateway audit archive``) is the line
``{"archived":"<base64 leaf hash>"}``: its record is in its archive bundle; its leaf
still rebuilds the tree (no canonical record starts so).

A canonical record never contains a raw line break (RFC 8785 escapes control
characters), so line ``i + 1`` is exactly the leaf of entry ``i``: its index is its
position, and a verifier hashes each line as it reads it (``SHA-256(0x00 || line)``)
into a :class:`~gateway.tlog.rfc6962.CompactRange`, whose root at the end must be the
head's. ``keys`` are as in :mod:`gateway.audit.bundle`.

``checkpoints`` is a **bounded series** of the stored checkpoints, sorted by size: one
per ``size // max_checkpoints`` entries (the gateway signs one per commit batch: 12,695
for 20,000 records, ~200 µs each to verify), plus the latest cosigned one (with the
witnesses' cosignatures) and every key hand-over. Checkpoints not in the series lose
nothing: a receipt's or a held checkpoint is proven against the log by the root the
verifier recomputes at its size while streaming (it knows the sizes to stop at before
reading the records).
"""

from __future__ import annotations

import base64
import json
from typing import BinaryIO, Final

from gateway.audit.bundle import MAX_CHECKPOINTS, bounded_series, keys_json
from gateway.audit.store.protocol import AuditReader, StoredEntry

__all__ = [
    "ARCHIVED_PREFIX",
    "MAX_CHECKPOINTS",
    "STREAM_PREFIX",
    "STREAM_TYPE",
    "STREAM_VERSION",
    "bounded_series",
    "write_stream",
]

STREAM_TYPE: Final = "gateway-audit-evidence-stream"
STREAM_VERSION: Final = 1
#: How a stream file starts (how ``verify`` tells it from a JSON bundle).
STREAM_PREFIX: Final = b'{"type":"' + STREAM_TYPE.encode() + b'"'
#: How the line of an archived entry starts (its leaf hash follows, then ``"}``).
ARCHIVED_PREFIX: Final = b'{"archived":"'
#: Records read from the store per call.
_CHUNK: Final = 20_000


def _line(entry: StoredEntry) -> bytes:
    if entry.archived:
        return ARCHIVED_PREFIX + base64.b64encode(entry.leaf_hash) + b'"}\n'
    return entry.record + b"\n"


def write_stream(
    store: AuditReader, out: BinaryIO, *, max_checkpoints: int = MAX_CHECKPOINTS
) -> tuple[int, int]:
    """Write the whole log to ``out`` as a stream; (records, checkpoints) written."""
    head = store.head()
    series = bounded_series(store, max_checkpoints)
    header = {
        "type": STREAM_TYPE,
        "v": STREAM_VERSION,
        "size": head.size,
        "keys": keys_json(store.key_history()),
        "checkpoint": head.checkpoint,
        "checkpoints": series,
    }
    out.write(json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    out.write(b"\n")
    for start in range(0, head.size, _CHUNK):
        entries = store.entries(start, min(head.size, start + _CHUNK))
        out.write(b"".join(_line(e) for e in entries))
    return head.size, len(series) + 1
