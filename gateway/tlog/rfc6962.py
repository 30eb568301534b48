"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification (pure, no I/O).

A transparency log is a Merkle tree as defined in RFC 6962 §2.1 (unchanged in RFC 9162
§2.1.1). Its leaves are entries (opaque bytes), in log order, and

* the hash of a leaf is ``SHA-256(0x00 || data)`` (:func:`leaf_hash`),
* the hash of an interior node is ``SHA-256(0x01 || left || right)`` (:func:`node_hash`),
* the hash of the empty tree is ``SHA-256("")`` (:data:`EMPTY_ROOT`),
* a list of ``n > 1`` leaves splits at ``k``, the largest power of two smaller than ``n``:
  ``MTH(D[0:n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))``.

So the left part of every split is a *complete* tree of ``2**j`` leaves that starts at a
multiple of ``2**j``, and a tree of ``n`` leaves is the right-to-left fold of the complete
subtrees named by the binary digits of ``n`` (for 13 = 8 + 4 + 1:
``node_hash(D[0:8], node_hash(D[8:12], D[12:13]))``). :class:`MerkleTree` keeps exactly those
complete, aligned subtree hashes, level by level, which is why the root of *any* earlier size,
and any inclusion or consistency proof, costs O(log n) lookups and hashes.

Proofs are lists of 32-byte hashes, innermost first, exactly as RFC 6962 §2.1.1 (PATH) and
§2.1.2 (PROOF/SUBPROOF) define them; they are verified with the algorithms of RFC 9162
§2.1.3.2 (inclusion) and §2.1.4.2 (consistency), which only need the sizes, never the tree.

The ``*_from_leaves`` functions are the literal recursive definitions of the RFC over a list
of leaf hashes, O(n) per call: they are the reference :class:`MerkleTree` is tested against.

Part of :mod:`gateway.tlog`: it imports nothing from the gateway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

from gateway.tlog.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "CompactRange",
    "MerkleTree",
    "ProofError",
    "consistency_proof_from_leaves",
    "inclusion_proof_from_leaves",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

#: Size in bytes of every hash in the tree (SHA-256).
HASH_SIZE: Final = 32

#: RFC 6962 §2.1: ``MTH({d(0)}) = SHA-256(0x00 || d(0))``. The 0x00 prefix for leaves and
#: the 0x01 prefix for interior nodes separate the two hash domains, so that no interior
#: node can be passed off as a leaf or the other way round (second-preimage attack).
LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"

#: RFC 6962 §2.1: ``MTH({}) = SHA-256()``, the root of a tree with no leaves.
EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()

_PAIR_SIZE: Final = 2 * HASH_SIZE
_sha256: Final = hashlib.sha256


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


# RFC 6962 §2.1
def _node(left: bytes, right: bytes) -> bytes:
    # Unchecked: callers have validated both hashes already.
    return _sha256(NODE_PREFIX + left + right).digest()


# RFC 6962 §2.1
def _split(n: int) -> int:
    """RFC 6962 §2.1: the largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: object, what: str, error: type[ValueError] = ValueError) -> bytes:
    # bytearray is accepted (and copied) because it is what a caller slicing a buffer gets;
    # anything else, str in particular, is a programming or input error.
    if not isinstance(value, bytes | bytearray):
        raise error(f"{what} must be bytes, not {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise error(f"{what} must be {HASH_SIZE} bytes, not {len(value)}")
    return bytes(value)


def _check_int(value: object, what: str, error: type[ValueError] = ValueError) -> int:
    # bool is an int subclass, but True as an index is always a mistake (or hostile JSON).
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise error(f"{what} must not be negative, got {value}")
    return value


def _check_hashes(
    hashes: Iterable[bytes], what: str, error: type[ValueError] = ValueError
) -> list[bytes]:
    # A str or bytes "proof" is iterable too; reject it rather than iterate over it.
    if isinstance(hashes, str | bytes | bytearray):
        raise error(f"expected a sequence of hashes, not {type(hashes).__name__}")
    try:
        items = list(hashes)
    except TypeError:
        raise error(f"expected a sequence of hashes, not {type(hashes).__name__}") from None
    # The fast path checks a million leaves in a few tens of milliseconds; the message (and
    # the copy of any bytearray) is only worked out when it is needed.
    if all(type(h) is bytes and len(h) == HASH_SIZE for h in items):
        return items
    return [_check_hash(h, f"{what} {i}", error) for i, h in enumerate(items)]


# RFC 6962 §2.1
def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1 leaf hash of an entry: ``SHA-256(0x00 || data)``."""
    return _sha256(LEAF_PREFIX + data).digest()


# RFC 6962 §2.1
def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return _node(_check_hash(left, "left hash"), _check_hash(right, "right hash"))


# --------------------------------------------------------------------------------------------
# Reference implementation: the RFC 6962 definitions, literally (O(n) per call)
# --------------------------------------------------------------------------------------------


# RFC 6962 §2.1 (MTH)
def _mth(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) for ``end > start`` (ranges, not slices, to stay O(n))."""
    n = end - start
    if n == 1:
        return leaves[start]
    k = _split(n)
    return _node(_mth(leaves, start, start + k), _mth(leaves, start + k, end))


# RFC 6962 §2.1 (MTH)
def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle tree hash of a list of *leaf hashes* (not of entry data).

    :data:`EMPTY_ROOT` for an empty list. Raises ValueError if a hash is not 32 bytes.
    """
    leaves = _check_hashes(leaf_hashes, "leaf hash")
    return _mth(leaves, 0, len(leaves)) if leaves else EMPTY_ROOT


# RFC 6962 §2.1.1 (PATH)
def _path(leaves: Sequence[bytes], m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(leaves, m, start, start + k), _mth(leaves, start + k, end)]
    return [*_path(leaves, m - k, start + k, end), _mth(leaves, start, start + k)]


# RFC 6962 §2.1.1 (PATH)
def inclusion_proof_from_leaves(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 §2.1.1 audit path ``PATH(index, D[0:n])`` for the leaf at ``index``.

    Reference implementation, O(n). Raises ValueError unless ``0 <= index < len(leaf_hashes)``.
    """
    leaves = _check_hashes(leaf_hashes, "leaf hash")
    index = _check_int(index, "index")
    if index >= len(leaves):
        raise ValueError(f"index {index} is out of range for a tree of size {len(leaves)}")
    return _path(leaves, index, 0, len(leaves))


# RFC 6962 §2.1.2 (SUBPROOF)
def _subproof(leaves: Sequence[bytes], m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        # The old tree is this very subtree: the verifier knows its hash (it is the old
        # root) only if it is the whole old tree, i.e. while no right turn has been taken.
        return [] if complete else [_mth(leaves, start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves, m, start, start + k, complete), _mth(leaves, start + k, end)]
    return [*_subproof(leaves, m - k, start + k, end, False), _mth(leaves, start, start + k)]


# RFC 6962 §2.1.2 (PROOF)
def consistency_proof_from_leaves(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """RFC 6962 §2.1.2 consistency proof ``PROOF(old_size, D[0:n])`` = SUBPROOF(m, D, true).

    Reference implementation, O(n). ``[]`` when ``old_size`` is 0 or ``len(leaf_hashes)``
    (nothing to prove). Raises ValueError unless ``0 <= old_size <= len(leaf_hashes)``.
    """
    leaves = _check_hashes(leaf_hashes, "leaf hash")
    old_size = _check_int(old_size, "old size")
    if old_size > len(leaves):
        raise ValueError(f"old size {old_size} is larger than the tree size {len(leaves)}")
    if old_size in (0, len(leaves)):
        return []
    return _subproof(leaves, old_size, 0, len(leaves), True)


# --------------------------------------------------------------------------------------------
# Verification: RFC 9162 §2.1.3.2 and §2.1.4.2
# --------------------------------------------------------------------------------------------


# RFC 9162 §2.1.3.2 (the length the verification algorithm consumes)
def _inclusion_path_length(index: int, size: int) -> tuple[int, int]:
    """(inner, border) lengths of the audit path of ``index`` in a tree of ``size`` leaves.

    ``inner`` hashes are siblings below the level where the paths of ``index`` and of the
    last leaf (``size - 1``) meet; above it every sibling is a complete left subtree, one
    per set bit of ``index`` there. Knowing the length up front gives a precise error.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


# RFC 9162 §2.1.3.2
def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` and ``leaf_hash`` at ``index`` imply for a tree of ``size``.

    RFC 9162 §2.1.3.2. Raises :class:`ProofError` if ``index >= size``, if the proof does
    not have the length that ``index`` and ``size`` require, or on malformed input.
    """
    r = _check_hash(leaf_hash, "leaf hash", ProofError)
    index = _check_int(index, "index", ProofError)
    size = _check_int(size, "tree size", ProofError)
    path = _check_hashes(proof, "inclusion proof hash", ProofError)
    if index >= size:
        raise ProofError(f"index {index} is out of range for a tree of size {size}")
    inner, border = _inclusion_path_length(index, size)
    if len(path) != inner + border:
        raise ProofError(
            f"inclusion proof has {len(path)} hashes, expected {inner + border} "
            f"for index {index} in a tree of size {size}"
        )
    # fn walks up from the leaf, sn from the last leaf; where they coincide (fn == sn) the
    # node has no right sibling and is promoted until it becomes a right child.
    fn, sn = index, size - 1
    for p in path:
        if sn == 0:  # unreachable after the length check; kept as in the RFC
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept as in the RFC
        raise ProofError("inclusion proof is shorter than the path to the root")
    return r


# RFC 9162 §2.1.3.2
def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    RFC 9162 §2.1.3.2. Returns None on success, raises :class:`ProofError` otherwise.
    """
    root = _check_hash(root, "root", ProofError)
    # Roots and proofs are public, so a plain (not constant-time) comparison is fine.
    if root_from_inclusion_proof(leaf_hash, index, size, proof) != root:
        raise ProofError(
            f"calculated root does not match the given root for index {index} "
            f"in a tree of size {size}"
        )


# RFC 9162 §2.1.4.2 (the length the verification algorithm consumes)
def _consistency_path_length(old_size: int, new_size: int) -> int:
    """Length of the RFC 6962 consistency proof for ``0 < old_size < new_size``.

    The levels below the largest complete subtree that ends the old tree contribute
    nothing (its hash is one node); from there it is an audit path of that node in the
    new tree, plus the node itself unless it is the whole old tree (old_size a power of 2,
    when the verifier already knows it as the old root).
    """
    shift = (old_size & -old_size).bit_length() - 1
    inner, border = _inclusion_path_length((old_size - 1) >> shift, ((new_size - 1) >> shift) + 1)
    return inner + border + (0 if old_size == 1 << shift else 1)


# RFC 9162 §2.1.4.2
def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends that of ``old_size``.

    RFC 9162 §2.1.4.2, with the cases it leaves out made explicit: ``old_size > new_size``
    fails; ``old_size == new_size`` needs an empty proof and equal roots; ``old_size == 0``
    needs an empty proof and ``old_root == EMPTY_ROOT`` (every tree extends the empty one).
    Returns None on success, raises :class:`ProofError` otherwise.
    """
    old_size = _check_int(old_size, "old size", ProofError)
    new_size = _check_int(new_size, "new size", ProofError)
    old_root = _check_hash(old_root, "old root", ProofError)
    new_root = _check_hash(new_root, "new root", ProofError)
    path = _check_hashes(proof, "consistency proof hash", ProofError)
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        if path:
            raise ProofError(
                f"consistency proof from the empty tree must be empty, it has {len(path)} hashes"
            )
        # The empty tree has exactly one root; claiming another one for it is false.
        if old_root != EMPTY_ROOT:
            raise ProofError("old root is not the root of the empty tree")
        if new_size == 0 and new_root != EMPTY_ROOT:
            raise ProofError("new root is not the root of the empty tree")
        return
    if old_size == new_size:
        if path:
            raise ProofError(
                f"consistency proof between equal sizes must be empty, it has {len(path)} hashes"
            )
        if old_root != new_root:
            raise ProofError(f"old and new roots differ for the same tree size {old_size}")
        return
    expected = _consistency_path_length(old_size, new_size)
    if len(path) != expected:
        raise ProofError(
            f"consistency proof has {len(path)} hashes, expected {expected} "
            f"from size {old_size} to size {new_size}"
        )
    # Step 2: if the old tree is a complete subtree its hash (the old root) is the seed and
    # the proof leaves it out; otherwise the proof starts with the seed.
    if old_size & (old_size - 1) == 0:
        path = [old_root, *path]
    # Steps 3-4: start from the last old leaf and skip the levels where it is a right child
    # (those nodes are inside the seed subtree).
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5-6: fr rebuilds the old root, sr the new one, from the same hashes.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check; kept as in the RFC
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:  # unreachable after the length check; kept as in the RFC
        raise ProofError("consistency proof is shorter than the path to the root")
    if fr != old_root:
        raise ProofError(
            f"calculated old root does not match the given old root for size {old_size}"
        )
    if sr != new_root:
        raise ProofError(
            f"calculated new root does not match the given new root for size {new_size}"
        )


# --------------------------------------------------------------------------------------------
# The incremental tree
# --------------------------------------------------------------------------------------------


# RFC 6962 §2.1 (MTH over an append-only list of leaf hashes)
class CompactRange:
    """The tree of a stream of leaves in O(log n) memory: the roots of the perfect
    subtrees that the binary expansion of the size cuts it into (a "compact range"
    [0, size), as transparency-dev/merkle calls it). ``root()`` at any moment is the
    RFC 6962 §2.1 ``MTH`` of the leaves appended so far, folded from the right. For
    verifying a log of millions of entries without holding it (MerkleTree keeps every
    level: ~64 bytes a leaf).
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self.size = 0

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash (32 bytes, not checked: the hot loop of a verifier)."""
        h = leaf_hash
        n = self.size
        stack = self._stack
        # Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
        while n & 1:
            h = _node(stack.pop(), h)
            n >>= 1
        stack.append(h)
        self.size += 1

    def root(self) -> bytes:
        """``MTH`` of the leaves so far (:data:`EMPTY_ROOT` for none)."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        h = stack[-1]
        for left in reversed(stack[:-1]):
            h = _node(left, h)
        return h


class MerkleTree:
    """Incremental in-memory tree of leaf hashes with cached complete subtrees, so that
    append is amortised O(1) and root(size), inclusion_proof and consistency_proof for ANY
    earlier size are O(log n) hash lookups/operations (not O(n)).

    Level ``k`` is a bytearray with the hashes of the complete subtrees of ``2**k`` leaves
    that start at multiples of ``2**k``, 32 bytes each, concatenated: ``size >> k`` of
    them. Together the levels hold about ``2 * size`` hashes (~64 bytes a leaf), and every
    subtree hash the RFC recursion asks for is either one of them or a fold of at most
    ``log2(size)`` of them. bytearrays rather than lists of bytes objects, because a bytes
    object costs 65 bytes on its own plus 8 for the list slot: ~150 MB a million leaves.

    Not thread-safe: callers serialise writers (and readers that run alongside a writer).
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    def __repr__(self) -> str:
        return f"MerkleTree(size={self.size})"

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; returns its index."""
        h = _check_hash(leaf_hash, "leaf hash")
        levels = self._levels
        index = self.size
        levels[0] += h
        # Every time a level gets an even count, its last two hashes complete a subtree of
        # the level above; the carry stops at the first odd count (amortised one step).
        level, count = 0, index + 1
        while count % 2 == 0:
            if level + 1 == len(levels):
                levels.append(bytearray())
            levels[level + 1] += _sha256(NODE_PREFIX + levels[level][-_PAIR_SIZE:]).digest()
            level += 1
            count = len(levels[level]) // HASH_SIZE
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaf hashes at once (all or nothing: validated before anything changes)."""
        items = _check_hashes(leaf_hashes, "leaf hash")
        if not items:
            return
        levels = self._levels
        old_count = self.size
        levels[0] += b"".join(items)
        new_count = old_count + len(items)
        level = 0
        # Level by level, hash the pairs that the new hashes complete: parents old_count//2
        # up to new_count//2 of the level above. The children of a parent are adjacent, so
        # one 64-byte slice is hashed per parent, in a single comprehension (no per-node
        # method calls or bytearray appends: this loop is where all the time goes).
        while True:
            lo, hi = old_count >> 1, new_count >> 1
            if hi == lo:
                break
            with memoryview(levels[level]) as children:
                parents = b"".join(
                    [
                        _sha256(NODE_PREFIX + children[o : o + _PAIR_SIZE]).digest()
                        for o in range(lo * _PAIR_SIZE, hi * _PAIR_SIZE, _PAIR_SIZE)
                    ]
                )
            if level + 1 == len(levels):
                levels.append(bytearray())
            levels[level + 1] += parents
            level += 1
            old_count, new_count = lo, hi

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``; ValueError unless ``0 <= index < size``."""
        index = _check_int(index, "index")
        if index >= self.size:
            raise ValueError(f"index {index} is out of range for a tree of size {self.size}")
        return self._get(0, index)

    # RFC 6962 §2.1 (MTH of a prefix)
    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (default: all of them), :data:`EMPTY_ROOT` for 0.

        ValueError unless ``0 <= size <= self.size``.
        """
        size = self._check_size(size, "size")
        return self._hash_range(0, size) if size else EMPTY_ROOT

    # RFC 6962 §2.1.1 (PATH)
    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 audit path of leaf ``index`` in the tree of the first ``size`` leaves.

        ValueError unless ``0 <= index < size <= self.size``.
        """
        size = self._check_size(size, "size")
        index = _check_int(index, "index")
        if index >= size:
            raise ValueError(f"index {index} is out of range for a tree of size {size}")
        # PATH of RFC 6962 §2.1.1, unrolled from the root down. Only the first right-hand
        # sibling can be an incomplete subtree (after it, the range is a power of two), so
        # the whole proof costs O(log n).
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            mid = start + _split(end - start)
            if index < mid:
                proof.append(self._hash_range(mid, end))
                end = mid
            else:
                proof.append(self._hash_range(start, mid))
                start = mid
        proof.reverse()
        return proof

    # RFC 6962 §2.1.2 (PROOF)
    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 6962 consistency proof between the trees of the first ``old_size`` and
        ``new_size`` (default: all) leaves; ``[]`` when they are equal or ``old_size`` is 0.

        ValueError unless ``0 <= old_size <= new_size <= self.size``.
        """
        new_size = self._check_size(new_size, "new size")
        old_size = _check_int(old_size, "old size")
        if old_size > new_size:
            raise ValueError(f"old size {old_size} is larger than new size {new_size}")
        if old_size in (0, new_size):
            return []
        # SUBPROOF(old_size, D[0:new_size], true) of RFC 6962 §2.1.2, unrolled from the root
        # down; m is the number of old leaves within [start, end).
        proof: list[bytes] = []
        start, end, m, complete = 0, new_size, old_size, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(self._hash_range(start + k, end))
                end = start + k
            else:
                proof.append(self._hash_range(start, start + k))
                start += k
                m -= k
                complete = False
        if not complete:
            proof.append(self._hash_range(start, end))
        proof.reverse()
        return proof

    def copy(self) -> MerkleTree:
        """An independent copy (e.g. to compute a candidate root before committing)."""
        clone = MerkleTree()
        clone._levels = [bytearray(level) for level in self._levels]
        return clone

    def truncate(self, size: int) -> None:
        """Drop the leaves at ``size`` and after (e.g. roll back a batch whose commit failed).

        ValueError unless ``0 <= size <= self.size``.
        """
        size = _check_int(size, "size")
        if size > self.size:
            raise ValueError(f"size {size} is larger than the tree size {self.size}")
        # A subtree survives iff all its leaves do: level k keeps size >> k hashes.
        for k, level in enumerate(self._levels):
            del level[(size >> k) * HASH_SIZE :]
        while len(self._levels) > 1 and not self._levels[-1]:
            self._levels.pop()

    # -- internals ---------------------------------------------------------------------------

    def _check_size(self, size: int | None, what: str) -> int:
        if size is None:
            return self.size
        size = _check_int(size, what)
        if size > self.size:
            raise ValueError(f"{what} {size} is larger than the tree size {self.size}")
        return size

    def _get(self, level: int, index: int) -> bytes:
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    # RFC 6962 §2.1 (MTH of a range the recursion produces)
    def _hash_range(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a non-empty range the RFC recursion produces.

        Such a range starts at a multiple of every power of two up to its length, so it is
        the concatenation of complete aligned subtrees of decreasing size, one per set bit of
        ``end - start``; MTH nests them to the right, so fold from the smallest (rightmost).
        """
        remaining = end - start
        position = end
        result = b""
        while remaining:
            low_bit = remaining & -remaining
            level = low_bit.bit_length() - 1
            position -= low_bit
            subtree = self._get(level, position >> level)
            result = _node(subtree, result) if result else subtree
            remaining ^= low_bit
        return result
