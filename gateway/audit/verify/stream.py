"""Verifying a streamed export (:mod:`gateway.audit.stream`) in bounded memory.

The header is read first: trust, the head, the bounded checkpoint series, and - from the
evidence the user kept - every tree size a root will be needed at (held checkpoints,
receipts' checkpoints, key hand-overs) and every entry a receipt names. Then the record
lines are hashed one by one into a :class:`~gateway.tlog.rfc6962.CompactRange`
(O(log n) memory), noting its root at each needed size and the leaves the receipts name.
What remains are the ordinary checks of :mod:`gateway.audit.verify.log` and
:mod:`~gateway.audit.verify.evidence`, run against those roots as if the whole tree were
held.

``decode_records=False`` (the hash/proof checks only) is the fast mode; with True every
record is also decoded and checked to be canonical (reported separately: it is the
slower part).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from gateway.audit.receipt import Receipt
from gateway.audit.record import AuditRecord
from gateway.audit.stream import ARCHIVED_PREFIX, STREAM_TYPE, STREAM_VERSION
from gateway.audit.verify.evidence import (
    check_held,
    check_receipt_in_bundle,
    check_witnessed,
    check_witnesses,
)
from gateway.audit.verify.log import LogView, check_extras, check_handover_roots
from gateway.audit.verify.parse import ParsedEntry
from gateway.audit.verify.report import Checks, Report
from gateway.audit.verify.trust import establish_trust, open_trusted_checkpoint
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.note import Verifier, parse_note
from gateway.tlog.rfc6962 import EMPTY_ROOT

__all__ = ["StreamStats", "verify_stream"]

#: Longest header line read (keys and a bounded series of checkpoints fit easily).
_MAX_HEADER = 16 << 20


@dataclass(frozen=True, slots=True)
class StreamStats:
    """What one verification read, and how long the record pass took."""

    records: int
    seconds: float
    decoded: bool


class _Roots:
    """The log's roots at the sizes noted while streaming (stands in for MerkleTree)."""

    def __init__(self, roots: Mapping[int, bytes], size: int) -> None:
        self._roots = dict(roots)
        self.size = size

    def root(self, size: int | None = None) -> bytes:
        wanted = self.size if size is None else size
        if wanted not in self._roots:
            raise ValueError(f"no root was recorded at size {wanted}")
        return self._roots[wanted]


def _size_of(note: object) -> int | None:
    if not isinstance(note, str):
        return None
    try:
        return Checkpoint.parse(parse_note(note).text).size
    except ValueError:
        return None


#: Bytes read per block (records are split out of blocks, never read line by line).
_BLOCK = 4 << 20


def _leaf_of(line: bytes) -> bytes:
    """The leaf of one line: an archived entry's stated leaf hash, else the line's hash
    (a malformed archived line is hashed like a record, and the root then differs)."""
    if line.startswith(ARCHIVED_PREFIX) and line.endswith(b'"}'):
        try:
            leaf = base64.b64decode(line[len(ARCHIVED_PREFIX) : -2], validate=True)
        except binascii.Error:
            leaf = b""
        if len(leaf) == 32:
            return leaf
    return hashlib.sha256(b"\x00" + line).digest()


def _blocks(source: BinaryIO) -> Iterator[bytes]:
    """``source`` after the header in blocks that end at a line end (the last one may
    lack its final newline)."""
    rest = b""
    while True:
        block = source.read(_BLOCK)
        if not block:
            if rest:
                yield rest
            return
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]


def hash_block(block: bytes, decode: bool) -> tuple[bytes, int, list[tuple[int, str]]]:
    """The leaf hashes of a block's record lines (concatenated, 32 bytes each), how many
    lines it held, and - when ``decode`` - the lines that are not canonical records
    (position in the block, reason). Top-level so that worker processes can run it."""
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    sha256 = hashlib.sha256
    archived = ARCHIVED_PREFIX in block
    if archived:
        leaves = b"".join([_leaf_of(data) for data in lines])
    else:  # the common case, a list comprehension over the lines
        leaves = b"".join([sha256(b"\x00" + data).digest() for data in lines])
    bad: list[tuple[int, str]] = []
    if decode:
        from_canonical = AuditRecord.from_canonical
        for n, data in enumerate(lines):
            if archived and data.startswith(ARCHIVED_PREFIX):
                continue
            try:
                from_canonical(data)
            except (TypeError, ValueError) as exc:
                bad.append((n, str(exc)))
    return leaves, len(lines), bad


def _hashed(
    source: BinaryIO, decode: bool, jobs: int
) -> Iterator[tuple[bytes, int, list[tuple[int, str]]]]:
    """:func:`hash_block` of every block, in order; with ``jobs > 1`` in that many
    worker processes, at most ``2 * jobs`` blocks in flight (bounded memory)."""
    if jobs <= 1:
        for block in _blocks(source):
            yield hash_block(block, decode)
        return
    from concurrent.futures import Future, ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        window: deque[Future[tuple[bytes, int, list[tuple[int, str]]]]] = deque()
        for block in _blocks(source):
            window.append(pool.submit(hash_block, block, decode))
            if len(window) >= 2 * jobs:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _stream_leaves(
    source: BinaryIO,
    sizes: set[int],
    indices: set[int],
    decode: bool,
    jobs: int,
    checks: Checks,
) -> tuple[int, dict[int, bytes], dict[int, bytes]]:
    """Hash every record into a compact range: (count, roots at ``sizes``, leaves at
    ``indices``). The compact range is inlined (CompactRange.append): this loop runs
    once per record of a log of years."""
    node = hashlib.sha256
    stack: list[bytes] = []
    roots: dict[int, bytes] = {}
    kept: dict[int, bytes] = {}
    if 0 in sizes:
        roots[0] = EMPTY_ROOT
    # Where something must be noted, as sizes: entry i is hashed as the size becomes i + 1.
    marks = sorted({s for s in sizes if s > 0} | {i + 1 for i in indices})
    bad = 0
    size = 0
    for leaves, count, problems in _hashed(source, decode, jobs):
        for offset, reason in problems:
            bad += 1
            if bad <= 10:
                checks.fail("records", f"entry {size + offset} is not a canonical record: {reason}")
        end = size + count
        # Only blocks holding a mark need the slow path; the others are pure hashing.
        check_marks = bool(marks) and marks[0] <= end
        for at in range(0, 32 * count, 32):
            h = leaves[at : at + 32]
            if check_marks and size in indices:
                kept[size] = h
            m = size
            while m & 1:
                h = node(b"\x01" + stack.pop() + h).digest()
                m >>= 1
            stack.append(h)
            size += 1
            if check_marks and size in sizes:
                roots[size] = _fold(stack)
        while marks and marks[0] <= end:
            marks.pop(0)
    roots[size] = _fold(stack)
    return size, roots, kept


def _fold(stack: list[bytes]) -> bytes:
    if not stack:
        return EMPTY_ROOT
    h = stack[-1]
    for left in reversed(stack[:-1]):
        h = hashlib.sha256(b"\x01" + left + h).digest()
    return h


def verify_stream(
    source: BinaryIO,
    pinned: Sequence[Verifier],
    *,
    receipts: Sequence[Receipt] = (),
    checkpoints: Sequence[str] = (),
    witnesses: Sequence[Verifier] = (),
    min_witnesses: int = 0,
    max_unwitnessed: int = 0,
    decode_records: bool = False,
    jobs: int = 1,
) -> tuple[Report, StreamStats]:
    """Verify a stream read from ``source`` (a binary file positioned at its start);
    the same checks and options as :func:`~gateway.audit.verify.bundle.verify_bundle`
    for a complete bundle. ``jobs > 1`` hashes (and decodes) blocks of records in that
    many worker processes. Never raises for malformed evidence."""
    checks = Checks()
    stats = StreamStats(0, 0.0, decode_records)
    try:
        stats = _verify(
            source,
            pinned,
            receipts,
            checkpoints,
            witnesses,
            min_witnesses,
            max_unwitnessed,
            decode_records,
            jobs,
            checks,
        )
    except Exception as exc:  # hostile input must end in a report, not a crash
        checks.fail("bundle", f"the stream could not be processed: {type(exc).__name__}: {exc}")
    return checks.report(), stats


def _verify(
    source: BinaryIO,
    pinned: Sequence[Verifier],
    receipts: Sequence[Receipt],
    held: Sequence[str],
    witnesses: Sequence[Verifier],
    min_witnesses: int,
    max_unwitnessed: int,
    decode: bool,
    jobs: int,
    checks: Checks,
) -> StreamStats:
    header = json.loads(source.readline(_MAX_HEADER))
    if not isinstance(header, dict) or header.get("type") != STREAM_TYPE:
        checks.fail("bundle", "the document is not an evidence stream")
        return StreamStats(0, 0.0, decode)
    if header.get("v") != STREAM_VERSION or not isinstance(header.get("checkpoints"), list):
        checks.fail("bundle", f"unsupported or malformed evidence stream (v={header.get('v')!r})")
        return StreamStats(0, 0.0, decode)
    checks.ok("bundle", f"evidence stream v{STREAM_VERSION} (complete log)")
    trust = establish_trust(pinned, header.get("keys"), checks)
    head, problem = open_trusted_checkpoint(header.get("checkpoint"), trust.epochs, "checkpoint")
    if problem is not None or head is None:
        checks.fail("checkpoint", problem or "the stream has no head checkpoint")
    else:
        checks.ok(
            "checkpoint",
            f"checkpoint of size {head.size} is signed by the trusted key of origin {head.origin}",
        )
    extras: list[object] = header["checkpoints"]
    notes = [*extras, *held, *(r.checkpoint for r in receipts)]
    sizes = {s for s in map(_size_of, notes) if s is not None}
    sizes |= {size for _, _, size, _ in trust.handovers}
    started = time.perf_counter()
    indices = {r.index for r in receipts}
    count, roots, leaves = _stream_leaves(source, sizes, indices, decode, jobs, checks)
    seconds = time.perf_counter() - started
    if decode and not any(c.name == "records" for c in checks.items):
        checks.ok("records", f"all {count} records are canonical audit records")
    # A receipt carries its record's text; the leaf found in the stream is compared
    # with the receipt's (check_receipt_in_bundle), the text with that leaf.
    entries = [
        ParsedEntry(-1, index, _record_of(receipts, index), leaf, None, None, decoded=False)
        for index, leaf in sorted(leaves.items())
    ]
    view = LogView(trust, head, True, entries, {e.index: e for e in entries})
    view.tree = _Roots(roots, count)
    if head is not None:
        _check_size_and_root(head, count, roots[count], header.get("size"), checks)
    check_extras(view, [{"checkpoint": note} for note in extras], checks)
    check_handover_roots(view, checks)
    for n, note in enumerate(held):
        check_held(view, note, f"held checkpoint {n + 1}", checks)
        check_witnesses(note, witnesses, min_witnesses, checks)
    for n, receipt in enumerate(receipts):
        check_receipt_in_bundle(view, receipt, f"receipt {n + 1}", checks)
    check_witnessed(
        view, header.get("checkpoint"), witnesses, min_witnesses, max_unwitnessed, checks
    )
    return StreamStats(count, seconds, decode)


def _record_of(receipts: Sequence[Receipt], index: int) -> bytes:
    for receipt in receipts:
        if receipt.index == index and receipt.record is not None:
            return receipt.record
    return b""


def _check_size_and_root(
    head: Checkpoint, count: int, root: bytes, declared: object, checks: Checks
) -> None:
    if count != head.size or declared != head.size:
        checks.fail(
            "size",
            f"the stream holds {count} entries (header: {declared}) but the checkpoint says "
            f"size {head.size}",
        )
        return
    checks.ok("size", f"the stream holds all {head.size} entries of the checkpoint")
    if root == head.root_hash:
        checks.ok(
            "root",
            f"the Merkle tree rebuilt from the {head.size} records has the checkpoint's root",
        )
    else:
        checks.fail(
            "root",
            f"the Merkle tree rebuilt from the {count} records does not have the checkpoint's "
            "root: records were altered, removed or reordered",
        )
