"""RFC 6962 / RFC 9162 Merkle tree: published test vectors, MerkleTree against the reference
definitions, tamper detection (property tests), truncate/copy, and input validation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.record import leaf_hash_of
from gateway.tlog.errors import ProofError
from gateway.tlog.rfc6962 import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    MerkleTree,
    consistency_proof_from_leaves,
    inclusion_proof_from_leaves,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def flip(data: bytes, bit: int) -> bytes:
    """``data`` with bit ``bit`` (0 = most significant bit of byte 0) inverted."""
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def other_hash(n: int) -> bytes:
    return hashlib.sha256(b"other %d" % n).digest()


# --------------------------------------------------------------------------------------------
# Published test vectors: transparency-dev/merkle (formerly google/trillian and
# google/certificate-transparency merkle_tree_test), testonly/constants.go (LeafInputs,
# NodeHashes, RootHashes) and proof/verify_test.go (inclusionProofs, consistencyProofs).
# verify_test.go numbers leaves from 1 in its inclusion vectors; they are 0-based here.
# --------------------------------------------------------------------------------------------

LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# NodeHashes(): level 0 are the leaf hashes, level k the complete subtrees of 2**k leaves.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# RootHashes(), indexed by tree size 0..8.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# (index, size, proof)
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old_size, new_size, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

VECTOR_LEAVES = [leaf_hash_of(data) for data in LEAF_INPUTS]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def inclusion_corruptions(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    """The probes of transparency-dev/merkle's corruptInclusionProof: (description,
    verify_inclusion arguments) that must all fail."""
    probes: list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]] = [
        ("index - 1", (leaf, index - 1, size, proof, root)),
        ("index + 1", (leaf, index + 1, size, proof, root)),
        ("index ^ 2", (leaf, index ^ 2, size, proof, root)),
        ("size * 2", (leaf, index, size * 2, proof, root)),
        ("size // 2", (leaf, index, size // 2, proof, root)),
        ("wrong leaf", (b"WrongLeaf", index, size, proof, root)),
        ("other leaf", (SOME_HASH, index, size, proof, root)),
        ("empty root", (leaf, index, size, proof, EMPTY_ROOT)),
        ("random root", (leaf, index, size, proof, SOME_HASH)),
        ("trailing garbage", (leaf, index, size, [*proof, b""], root)),
        ("trailing root", (leaf, index, size, [*proof, root], root)),
        ("preceding garbage", (leaf, index, size, [b"", *proof], root)),
        ("preceding root", (leaf, index, size, [root, *proof], root)),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = flip(wrong[i], 4)
        probes.append((f"proof[{i}] bit flipped", (leaf, index, size, wrong, root)))
    if proof:
        probes.append(("removed component", (leaf, index, size, proof[:-1], root)))
    if len(proof) > 1:
        wrong = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", (leaf, index, size, wrong, root)))
    return probes


def consistency_corruptions(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    """The probes of transparency-dev/merkle's corruptConsistencyProof (for a non-empty
    proof): (description, verify_consistency arguments) that must all fail."""
    probes: list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]] = [
        ("old - 1", (old - 1, new, old_root, new_root, proof)),
        ("old + 1", (old + 1, new, old_root, new_root, proof)),
        ("old ^ 2", (old ^ 2, new, old_root, new_root, proof)),
        ("new * 2", (old, new * 2, old_root, new_root, proof)),
        ("new // 2", (old, new // 2, old_root, new_root, proof)),
        ("wrong old root", (old, new, b"WrongRoot", new_root, proof)),
        ("wrong new root", (old, new, old_root, b"WrongRoot", proof)),
        ("other old root", (old, new, SOME_HASH, new_root, proof)),
        ("other new root", (old, new, old_root, SOME_HASH, proof)),
        ("swapped roots", (old, new, new_root, old_root, proof)),
        ("empty proof", (old, new, old_root, new_root, [])),
        ("trailing garbage", (old, new, old_root, new_root, [*proof, b""])),
        ("trailing old root", (old, new, old_root, new_root, [*proof, old_root])),
        ("trailing new root", (old, new, old_root, new_root, [*proof, new_root])),
        ("preceding garbage", (old, new, old_root, new_root, [b"", *proof])),
        ("preceding old root", (old, new, old_root, new_root, [old_root, *proof])),
        ("preceding new root", (old, new, old_root, new_root, [new_root, *proof])),
        ("preceding proof[0]", (old, new, old_root, new_root, [proof[0], *proof])),
        ("truncated proof", (old, new, old_root, new_root, proof[:-1])),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = flip(wrong[i], 3)
        probes.append((f"proof[{i}] bit flipped", (old, new, old_root, new_root, wrong)))
    return probes


class TestVectors:
    def test_constants(self) -> None:
        assert HASH_SIZE == 32
        assert EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()

    def test_leaf_and_node_hashes(self) -> None:
        assert NODE_HASHES[0] == VECTOR_LEAVES
        for level in range(1, len(NODE_HASHES)):
            below = NODE_HASHES[level - 1]
            expected = [node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)]
            assert expected == NODE_HASHES[level]

    @pytest.mark.parametrize("size", range(9))
    def test_roots(self, size: int) -> None:
        assert root_from_leaves(VECTOR_LEAVES[:size]) == ROOTS[size]
        assert MerkleTree(VECTOR_LEAVES[:size]).root() == ROOTS[size]
        assert MerkleTree(VECTOR_LEAVES).root(size) == ROOTS[size]

    @pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
    def test_inclusion(self, index: int, size: int, proof: list[bytes]) -> None:
        leaf = VECTOR_LEAVES[index]
        assert inclusion_proof_from_leaves(VECTOR_LEAVES[:size], index) == proof
        assert MerkleTree(VECTOR_LEAVES).inclusion_proof(index, size) == proof
        assert root_from_inclusion_proof(leaf, index, size, proof) == ROOTS[size]
        verify_inclusion(leaf, index, size, proof, ROOTS[size])
        for description, args in inclusion_corruptions(index, size, proof, ROOTS[size], leaf):
            with pytest.raises(ProofError):
                verify_inclusion(*args)
                pytest.fail(f"verified despite: {description}")

    @pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
    def test_consistency(self, old: int, new: int, proof: list[bytes]) -> None:
        assert consistency_proof_from_leaves(VECTOR_LEAVES[:new], old) == proof
        assert MerkleTree(VECTOR_LEAVES).consistency_proof(old, new) == proof
        verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
        if not proof:
            return
        for description, args in consistency_corruptions(old, new, ROOTS[old], ROOTS[new], proof):
            with pytest.raises(ProofError):
                verify_consistency(*args)
                pytest.fail(f"verified despite: {description}")

    # transparency-dev/merkle TestVerifyConsistency's table, with 32-byte stand-ins for its
    # "don't care" roots (hash lengths are checked here) and one deliberate difference: a
    # claimed root of the empty tree must be EMPTY_ROOT (Go ignores root1 when size1 == 0).
    @pytest.mark.parametrize(
        ("old", "new", "old_root", "new_root", "proof", "ok"),
        [
            (0, 0, other_hash(1), other_hash(2), [], False),
            (1, 1, other_hash(1), other_hash(2), [], False),
            (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
            (0, 1, EMPTY_ROOT, other_hash(2), [], True),
            (0, 1, other_hash(1), other_hash(2), [], False),  # Go: accepted
            (0, 0, other_hash(1), other_hash(1), [], False),  # Go: accepted
            (1, 1, other_hash(2), other_hash(2), [], True),
            (1, 0, other_hash(1), other_hash(2), [], False),
            (2, 1, other_hash(1), other_hash(2), [], False),
            (1, 2, other_hash(1), other_hash(2), [], False),
            (0, 0, EMPTY_ROOT, other_hash(2), [], False),
            (1, 1, EMPTY_ROOT, other_hash(2), [], False),
            (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
            (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
            (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        ],
    )
    def test_consistency_edge_cases(
        self, old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], ok: bool
    ) -> None:
        if ok:
            verify_consistency(old, new, old_root, new_root, proof)
        else:
            with pytest.raises(ProofError):
                verify_consistency(old, new, old_root, new_root, proof)

    # transparency-dev/merkle TestVerifyInclusionSingleEntry and TestVerifyInclusion.
    def test_single_entry(self) -> None:
        leaf = leaf_hash_of(b"data")
        verify_inclusion(leaf, 0, 1, [], leaf)
        for leaf_arg, root_arg in ((leaf, b""), (b"", leaf), (b"", b"")):
            with pytest.raises(ProofError):
                verify_inclusion(leaf_arg, 0, 1, [], root_arg)

    @pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
    def test_inclusion_probes(self, index: int, size: int) -> None:
        for leaf, root in ((SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)):
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, [], root)


# --------------------------------------------------------------------------------------------
# MerkleTree against the reference definitions
# --------------------------------------------------------------------------------------------

SMALL = 70
SMALL_LEAVES = [leaf_hash_of(b"small %d" % i) for i in range(SMALL)]


def test_tree_matches_reference_for_every_size() -> None:
    tree = MerkleTree(SMALL_LEAVES)
    assert tree.size == SMALL
    for size in range(SMALL + 1):
        leaves = SMALL_LEAVES[:size]
        root = root_from_leaves(leaves)
        assert tree.root(size) == root
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == inclusion_proof_from_leaves(leaves, index), (index, size)
            verify_inclusion(SMALL_LEAVES[index], index, size, proof, root)
        for old in range(size + 1):
            proof = tree.consistency_proof(old, size)
            assert proof == consistency_proof_from_leaves(leaves, old), (old, size)
            verify_consistency(old, size, tree.root(old), root, proof)


def test_compact_range_has_the_reference_root_at_every_size() -> None:
    compact = CompactRange()
    assert compact.root() == root_from_leaves([])
    for size, leaf in enumerate(SMALL_LEAVES, 1):
        compact.append(leaf)
        assert compact.size == size
        assert compact.root() == root_from_leaves(SMALL_LEAVES[:size]), size


def test_defaults_are_the_whole_tree() -> None:
    tree = MerkleTree(SMALL_LEAVES[:21])
    assert tree.root() == tree.root(21)
    assert tree.inclusion_proof(5) == tree.inclusion_proof(5, 21)
    assert tree.consistency_proof(13) == tree.consistency_proof(13, 21)
    assert [tree.leaf(i) for i in range(21)] == SMALL_LEAVES[:21]


def test_append_extend_and_init_agree() -> None:
    appended = MerkleTree()
    for i, leaf in enumerate(SMALL_LEAVES):
        assert appended.append(leaf) == i
        assert appended.size == i + 1
        assert appended.root() == root_from_leaves(SMALL_LEAVES[: i + 1])
    extended = MerkleTree()
    chunks = [0, 1, 2, 3, 5, 8, 13, 21, 17]  # uneven chunks, ending at SMALL
    start = 0
    for chunk in chunks:
        extended.extend(iter(SMALL_LEAVES[start : start + chunk]))  # any iterable will do
        start += chunk
        assert extended.root() == root_from_leaves(SMALL_LEAVES[:start])
    assert start == SMALL
    built = MerkleTree(SMALL_LEAVES)
    for size in range(SMALL + 1):
        assert appended.root(size) == extended.root(size) == built.root(size)


def test_bytearray_hashes_are_accepted() -> None:
    # Not bytes to mypy (strict bytes), but what slicing a buffer gives: taken and copied.
    leaves = [bytearray(leaf) for leaf in SMALL_LEAVES[:5]]
    tree = MerkleTree(leaves)  # type: ignore[arg-type]
    tree.append(bytearray(SMALL_LEAVES[5]))  # type: ignore[arg-type]
    leaves[0][0] ^= 1
    assert tree.root() == root_from_leaves(SMALL_LEAVES[:6])
    assert type(tree.leaf(0)) is bytes
    left = bytearray(SMALL_LEAVES[0])
    assert node_hash(left, SMALL_LEAVES[1]) == root_from_leaves(SMALL_LEAVES[:2])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Tamper detection, on random sizes of one big tree
# --------------------------------------------------------------------------------------------

BIG = 2000
BIG_LEAVES = [leaf_hash_of(b"big %d" % i) for i in range(BIG)]
BIG_TREE = MerkleTree(BIG_LEAVES)


def split_point(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_shape(index: int, size: int) -> list[bool]:
    """Per proof hash, innermost first: is it the left sibling? RFC 6962 PATH on sizes only.

    The verifier sees nothing but this shape, so a proof verifies for another tree size if
    and only if that size gives the same shape (e.g. leaf 0 of 3 and of 4 leaves): sizes are
    only trustworthy as part of a signed tree head.
    """
    shape = []
    while size > 1:
        k = split_point(size)
        if index < k:
            shape.append(False)
            size = k
        else:
            shape.append(True)
            index -= k
            size -= k
    return shape[::-1]


def consistency_shape(old: int, new: int) -> tuple[bool, list[bool]]:
    """(is the old tree one subtree the verifier knows as the old root, is each proof hash a
    left sibling), from RFC 6962 SUBPROOF on sizes only, for ``0 < old < new``."""
    shape = []
    complete = True
    while old != new:
        k = split_point(new)
        if old <= k:
            shape.append(False)
            new = k
        else:
            shape.append(True)
            old -= k
            new -= k
            complete = False
    return complete, shape[::-1]


def raises_proof_error(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofError:
        return True
    return False


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=1, max_value=BIG))
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def old_and_new(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(min_value=2, max_value=BIG))
    return draw(st.integers(min_value=1, max_value=new - 1)), new


BITS = st.integers(min_value=0, max_value=8 * HASH_SIZE - 1)


class TestInclusionTampering:
    @settings(max_examples=200, deadline=None)
    @given(case=index_and_size(), bit=BITS)
    def test_any_bit_flip_is_detected(self, case: tuple[int, int], bit: int) -> None:
        index, size = case
        leaf, root = BIG_LEAVES[index], BIG_TREE.root(size)
        proof = BIG_TREE.inclusion_proof(index, size)
        assert proof == inclusion_proof_from_leaves(BIG_LEAVES[:size], index)
        verify_inclusion(leaf, index, size, proof, root)
        with pytest.raises(ProofError, match="calculated root does not match"):
            verify_inclusion(flip(leaf, bit), index, size, proof, root)
        with pytest.raises(ProofError, match="calculated root does not match"):
            verify_inclusion(leaf, index, size, proof, flip(root, bit))
        for i in range(len(proof)):
            wrong = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
            with pytest.raises(ProofError, match="calculated root does not match"):
                verify_inclusion(leaf, index, size, wrong, root)

    @settings(max_examples=200, deadline=None)
    @given(case=index_and_size(), data=st.data())
    def test_dropped_or_added_hashes_are_detected(
        self, case: tuple[int, int], data: st.DataObject
    ) -> None:
        index, size = case
        leaf, root = BIG_LEAVES[index], BIG_TREE.root(size)
        proof = BIG_TREE.inclusion_proof(index, size)
        at = data.draw(st.integers(min_value=0, max_value=len(proof)), label="position")
        extra = data.draw(st.sampled_from([SOME_HASH, root, leaf, *proof]), label="extra")
        with pytest.raises(ProofError, match="inclusion proof has"):
            verify_inclusion(leaf, index, size, [*proof[:at], extra, *proof[at:]], root)
        if proof:
            at = min(at, len(proof) - 1)
            with pytest.raises(ProofError, match="inclusion proof has"):
                verify_inclusion(leaf, index, size, [*proof[:at], *proof[at + 1 :]], root)

    @settings(max_examples=200, deadline=None)
    @given(case=index_and_size(), data=st.data())
    def test_wrong_index_or_size_is_detected(
        self, case: tuple[int, int], data: st.DataObject
    ) -> None:
        index, size = case
        leaf, root = BIG_LEAVES[index], BIG_TREE.root(size)
        proof = BIG_TREE.inclusion_proof(index, size)
        # For a given size the path shape names one leaf, so every other index fails.
        other_index = data.draw(
            st.integers(min_value=0, max_value=size + 2).filter(lambda i: i != index),
            label="other index",
        )
        with pytest.raises(ProofError):
            verify_inclusion(leaf, other_index, size, proof, root)
        # Other sizes fail unless their path has the very same shape (see inclusion_shape).
        other_size = data.draw(
            st.integers(min_value=0, max_value=2 * BIG).filter(lambda s: s != size),
            label="other size",
        )
        same_shape = other_size > index and (
            inclusion_shape(index, other_size) == inclusion_shape(index, size)
        )
        failed = raises_proof_error(partial(verify_inclusion, leaf, index, other_size, proof, root))
        assert failed != same_shape
        # Doubling or halving the size always changes the shape (the proof length, even).
        for wrong_size in (size * 2, size // 2):
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, wrong_size, proof, root)

    def test_a_proof_verifies_only_the_claim_it_was_made_for(self) -> None:
        # With the true roots, a proof verifies for another (index, size) only if it is that
        # pair's proof too; exhaustive over a small tree.
        tree = MerkleTree(SMALL_LEAVES[:20])
        proofs = {(i, s): tree.inclusion_proof(i, s) for s in range(1, 21) for i in range(s)}
        for (index, size), proof in proofs.items():
            if index not in (0, size // 2, size - 1):
                continue
            for (i2, s2), proof2 in proofs.items():
                verified = not raises_proof_error(
                    partial(verify_inclusion, SMALL_LEAVES[i2], i2, s2, proof, tree.root(s2))
                )
                assert verified == (proof2 == proof), ((index, size), (i2, s2))


class TestConsistencyTampering:
    @settings(max_examples=200, deadline=None)
    @given(case=old_and_new(), bit=BITS)
    def test_any_bit_flip_is_detected(self, case: tuple[int, int], bit: int) -> None:
        old, new = case
        old_root, new_root = BIG_TREE.root(old), BIG_TREE.root(new)
        proof = BIG_TREE.consistency_proof(old, new)
        assert proof == consistency_proof_from_leaves(BIG_LEAVES[:new], old)
        verify_consistency(old, new, old_root, new_root, proof)
        # When old is a power of two the old root is the seed itself, so a wrong one shows
        # up only in the new root that is built on it.
        with pytest.raises(ProofError, match=r"calculated (old|new) root does not match"):
            verify_consistency(old, new, flip(old_root, bit), new_root, proof)
        with pytest.raises(ProofError, match="calculated new root does not match"):
            verify_consistency(old, new, old_root, flip(new_root, bit), proof)
        for i in range(len(proof)):
            wrong = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
            with pytest.raises(ProofError, match=r"calculated (old|new) root does not match"):
                verify_consistency(old, new, old_root, new_root, wrong)

    @settings(max_examples=200, deadline=None)
    @given(case=old_and_new(), data=st.data())
    def test_dropped_or_added_hashes_are_detected(
        self, case: tuple[int, int], data: st.DataObject
    ) -> None:
        old, new = case
        old_root, new_root = BIG_TREE.root(old), BIG_TREE.root(new)
        proof = BIG_TREE.consistency_proof(old, new)
        at = data.draw(st.integers(min_value=0, max_value=len(proof)), label="position")
        extra = data.draw(st.sampled_from([SOME_HASH, old_root, new_root, *proof]), label="extra")
        with pytest.raises(ProofError, match="consistency proof has"):
            verify_consistency(old, new, old_root, new_root, [*proof[:at], extra, *proof[at:]])
        at = min(at, len(proof) - 1)
        with pytest.raises(ProofError, match="consistency proof has"):
            verify_consistency(old, new, old_root, new_root, [*proof[:at], *proof[at + 1 :]])

    @settings(max_examples=200, deadline=None)
    @given(case=old_and_new(), data=st.data())
    def test_wrong_sizes_are_detected(self, case: tuple[int, int], data: st.DataObject) -> None:
        old, new = case
        old_root, new_root = BIG_TREE.root(old), BIG_TREE.root(new)
        proof = BIG_TREE.consistency_proof(old, new)
        # Other sizes fail unless they give the very same proof shape (consistency_shape):
        # e.g. 1 -> 3 and 1 -> 4 both are "leaf 0, right sibling, right sibling".
        other_new = data.draw(st.integers(min_value=0, max_value=2 * BIG), label="other new")
        other_old = data.draw(st.integers(min_value=0, max_value=2 * BIG), label="other old")
        for o2, n2 in ((other_old, new), (old, other_new), (other_old, other_new)):
            if (o2, n2) == (old, new):
                continue
            same_shape = 0 < o2 < n2 and consistency_shape(o2, n2) == consistency_shape(old, new)
            failed = raises_proof_error(
                partial(verify_consistency, o2, n2, old_root, new_root, proof)
            )
            assert failed != same_shape, (o2, n2)
        # These always change the shape (the probes of transparency-dev/merkle's tests).
        for o2, n2 in ((old - 1, new), (old + 1, new), (old ^ 2, new), (old, new * 2)):
            with pytest.raises(ProofError):
                verify_consistency(o2, n2, old_root, new_root, proof)
        with pytest.raises(ProofError):
            verify_consistency(old, new // 2, old_root, new_root, proof)
        with pytest.raises(ProofError):
            verify_consistency(new, old, new_root, old_root, proof)

    def test_a_proof_verifies_only_the_claim_it_was_made_for(self) -> None:
        # With the true roots, a proof verifies for other sizes only if it is their proof too.
        tree = MerkleTree(SMALL_LEAVES[:24])
        proofs = {(o, n): tree.consistency_proof(o, n) for n in range(1, 25) for o in range(1, n)}
        for (old, new), proof in proofs.items():
            if new % 3:
                continue
            for (o2, n2), proof2 in proofs.items():
                verified = not raises_proof_error(
                    partial(verify_consistency, o2, n2, tree.root(o2), tree.root(n2), proof)
                )
                assert verified == (proof2 == proof), ((old, new), (o2, n2))


# --------------------------------------------------------------------------------------------
# truncate() and copy()
# --------------------------------------------------------------------------------------------


class TestTruncateAndCopy:
    @pytest.mark.parametrize("cut", [0, 1, 2, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 69, 70])
    def test_truncate_then_append_equals_a_fresh_tree(self, cut: int) -> None:
        tree = MerkleTree(SMALL_LEAVES)
        tree.truncate(cut)
        assert tree.size == cut
        assert tree.root() == root_from_leaves(SMALL_LEAVES[:cut])
        others = [leaf_hash_of(b"other %d" % i) for i in range(40)]
        tree.extend(others[:20])
        for leaf in others[20:]:
            tree.append(leaf)
        fresh = MerkleTree([*SMALL_LEAVES[:cut], *others])
        assert tree.size == fresh.size
        for size in range(fresh.size + 1):
            assert tree.root(size) == fresh.root(size)
        assert tree.inclusion_proof(cut, fresh.size) == fresh.inclusion_proof(cut, fresh.size)
        assert tree.consistency_proof(max(cut, 1)) == fresh.consistency_proof(max(cut, 1))

    @settings(max_examples=100, deadline=None)
    @given(
        size=st.integers(min_value=0, max_value=300),
        cut=st.integers(min_value=0, max_value=300),
        more=st.integers(min_value=0, max_value=300),
    )
    def test_truncate_property(self, size: int, cut: int, more: int) -> None:
        cut = min(cut, size)
        tree = MerkleTree(BIG_LEAVES[:size])
        tree.truncate(cut)
        tree.extend(BIG_LEAVES[1000 : 1000 + more])
        expected = [*BIG_LEAVES[:cut], *BIG_LEAVES[1000 : 1000 + more]]
        assert tree.root() == root_from_leaves(expected)
        assert tree.size == len(expected)

    def test_truncate_to_the_same_size_is_a_no_op(self) -> None:
        tree = MerkleTree(SMALL_LEAVES)
        root = tree.root()
        tree.truncate(SMALL)
        assert tree.root() == root
        assert tree.size == SMALL

    def test_copy_is_independent(self) -> None:
        tree = MerkleTree(SMALL_LEAVES[:10])
        root = tree.root()
        clone = tree.copy()
        assert clone.root() == root
        clone.extend(SMALL_LEAVES[10:])
        assert tree.size == 10
        assert tree.root() == root
        assert clone.root() == root_from_leaves(SMALL_LEAVES)
        tree.append(SMALL_LEAVES[0])
        tree.truncate(3)
        assert clone.size == SMALL
        assert clone.root() == root_from_leaves(SMALL_LEAVES)
        assert repr(clone) == f"MerkleTree(size={SMALL})"


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


class TestErrors:
    def test_proof_error_is_a_value_error(self) -> None:
        assert issubclass(ProofError, ValueError)

    @pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33, "x" * 32, None, 32])
    def test_bad_hashes_in_the_tree(self, bad: object) -> None:
        tree = MerkleTree(SMALL_LEAVES[:3])
        with pytest.raises(ValueError, match="leaf hash"):
            tree.append(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="leaf hash 1"):
            tree.extend([SMALL_LEAVES[3], bad])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="leaf hash"):
            MerkleTree([bad])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="leaf hash"):
            root_from_leaves([bad])  # type: ignore[list-item]
        with pytest.raises(ValueError):
            node_hash(SMALL_LEAVES[0], bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            node_hash(bad, SMALL_LEAVES[0])  # type: ignore[arg-type]
        # A failed extend adds nothing.
        assert tree.size == 3
        assert tree.root() == root_from_leaves(SMALL_LEAVES[:3])

    def test_str_is_not_a_list_of_hashes(self) -> None:
        with pytest.raises(ValueError):
            MerkleTree("x" * 32)  # type: ignore[arg-type]
        with pytest.raises(ProofError):
            verify_inclusion(SOME_HASH, 0, 2, SOME_HASH, SOME_HASH)  # type: ignore[arg-type]
        with pytest.raises(ProofError, match="expected a sequence of hashes, not NoneType"):
            verify_consistency(1, 2, SOME_HASH, SOME_HASH, None)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33, "x" * 32, None])
    def test_bad_hashes_in_verification(self, bad: object) -> None:
        tree = MerkleTree(SMALL_LEAVES[:9])
        leaf, root, proof = SMALL_LEAVES[5], tree.root(), tree.inclusion_proof(5)
        with pytest.raises(ProofError, match="leaf hash"):
            verify_inclusion(bad, 5, 9, proof, root)  # type: ignore[arg-type]
        with pytest.raises(ProofError, match="root"):
            verify_inclusion(leaf, 5, 9, proof, bad)  # type: ignore[arg-type]
        with pytest.raises(ProofError, match="inclusion proof hash 2"):
            verify_inclusion(leaf, 5, 9, [*proof[:2], bad, *proof[3:]], root)  # type: ignore[list-item]
        old_root, proof = tree.root(6), tree.consistency_proof(6)
        with pytest.raises(ProofError, match="old root"):
            verify_consistency(6, 9, bad, root, proof)  # type: ignore[arg-type]
        with pytest.raises(ProofError, match="new root"):
            verify_consistency(6, 9, old_root, bad, proof)  # type: ignore[arg-type]
        with pytest.raises(ProofError, match="consistency proof hash 0"):
            verify_consistency(6, 9, old_root, root, [bad, *proof[1:]])  # type: ignore[list-item]

    def test_wrong_proof_length_message(self) -> None:
        tree = MerkleTree(SMALL_LEAVES[:9])
        proof = tree.inclusion_proof(5)
        assert len(proof) == 4
        with pytest.raises(
            ProofError,
            match=r"^inclusion proof has 3 hashes, expected 4 for index 5 in a tree of size 9$",
        ):
            verify_inclusion(SMALL_LEAVES[5], 5, 9, proof[:3], tree.root())
        with pytest.raises(
            ProofError, match=r"^consistency proof has 1 hashes, expected 4 from size 6 to size 9$"
        ):
            verify_consistency(6, 9, tree.root(6), tree.root(), tree.consistency_proof(6)[:1])

    @pytest.mark.parametrize("bad", [True, False, -1, 1.0, "1", None])
    def test_bad_indices_and_sizes_in_the_tree(self, bad: object) -> None:
        tree = MerkleTree(SMALL_LEAVES[:9])
        calls: list[Callable[[], object]] = [
            lambda: tree.leaf(bad),  # type: ignore[arg-type]
            lambda: tree.root(bad),  # type: ignore[arg-type]
            lambda: tree.inclusion_proof(bad),  # type: ignore[arg-type]
            lambda: tree.inclusion_proof(1, bad),  # type: ignore[arg-type]
            lambda: tree.consistency_proof(bad),  # type: ignore[arg-type]
            lambda: tree.consistency_proof(1, bad),  # type: ignore[arg-type]
            lambda: tree.truncate(bad),  # type: ignore[arg-type]
            lambda: inclusion_proof_from_leaves(SMALL_LEAVES[:9], bad),  # type: ignore[arg-type]
            lambda: consistency_proof_from_leaves(SMALL_LEAVES[:9], bad),  # type: ignore[arg-type]
        ]
        for i, call in enumerate(calls):
            if bad is None and i in (1, 3, 5):
                assert call() is not None  # None is the default size: all of the tree
                continue
            with pytest.raises(ValueError):
                call()
        assert tree.size == 9

    @pytest.mark.parametrize("bad", [True, False, -1, 1.0, "1", None])
    def test_bad_indices_and_sizes_in_verification(self, bad: object) -> None:
        tree = MerkleTree(SMALL_LEAVES[:2])
        leaf, root, proof = SMALL_LEAVES[1], tree.root(), tree.inclusion_proof(1)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, bad, 2, proof, root)  # type: ignore[arg-type]
        with pytest.raises(ProofError):
            verify_inclusion(leaf, 1, bad, proof, root)  # type: ignore[arg-type]
        with pytest.raises(ProofError):
            root_from_inclusion_proof(leaf, bad, 2, proof)  # type: ignore[arg-type]
        old_root, proof = tree.root(1), tree.consistency_proof(1)
        with pytest.raises(ProofError):
            verify_consistency(bad, 2, old_root, root, proof)  # type: ignore[arg-type]
        with pytest.raises(ProofError):
            verify_consistency(1, bad, old_root, root, proof)  # type: ignore[arg-type]

    def test_out_of_range(self) -> None:
        tree = MerkleTree(SMALL_LEAVES[:9])
        for call in (
            lambda: tree.leaf(9),
            lambda: tree.root(10),
            lambda: tree.inclusion_proof(9),
            lambda: tree.inclusion_proof(3, 3),
            lambda: tree.inclusion_proof(0, 10),
            lambda: tree.inclusion_proof(0, 0),
            lambda: tree.consistency_proof(10),
            lambda: tree.consistency_proof(5, 4),
            lambda: tree.consistency_proof(5, 10),
            lambda: tree.truncate(10),
            lambda: inclusion_proof_from_leaves(SMALL_LEAVES[:9], 9),
            lambda: inclusion_proof_from_leaves([], 0),
            lambda: consistency_proof_from_leaves(SMALL_LEAVES[:9], 10),
        ):
            with pytest.raises(ValueError):
                call()
        assert MerkleTree().root() == EMPTY_ROOT
        assert tree.consistency_proof(0) == tree.consistency_proof(9) == []
        assert consistency_proof_from_leaves(SMALL_LEAVES[:9], 0) == []

    def test_index_out_of_range_in_verification(self) -> None:
        tree = MerkleTree(SMALL_LEAVES[:4])
        proof = tree.inclusion_proof(3)
        with pytest.raises(ProofError, match="index 4 is out of range for a tree of size 4"):
            root_from_inclusion_proof(SMALL_LEAVES[3], 4, 4, proof)
        with pytest.raises(ProofError, match="out of range"):
            verify_inclusion(SMALL_LEAVES[0], 0, 0, [], EMPTY_ROOT)

    def test_old_size_larger_than_new_size(self) -> None:
        tree = MerkleTree(SMALL_LEAVES[:9])
        with pytest.raises(ProofError, match="old size 9 is larger than new size 6"):
            verify_consistency(9, 6, tree.root(9), tree.root(6), tree.consistency_proof(6))
        with pytest.raises(ValueError, match="old size 7 is larger than new size 6"):
            tree.consistency_proof(7, 6)
