"""Row commitments: salt, row encoding, sorted RFC 6962 root, membership and absence proofs
(property tests, tampering, forgeries, JSON form) and the speed of rows_root."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.rows import (
    RowAbsenceProof,
    RowMembershipProof,
    RowProof,
    RowProofError,
    RowTree,
    proof_from_json,
    prove_row,
    row_bytes,
    row_leaf,
    row_salt,
    rows_root,
    sorted_row_leaves,
    verify_row,
)
from gateway.query.respond import encode_result
from gateway.tlog.rfc6962 import (
    EMPTY_ROOT,
    inclusion_proof_from_leaves,
    root_from_leaves,
    verify_inclusion,
)

KEY = b"audit-key-for-tests-0123456789ab"
AUDIT_ID = "0198f0c2-7a40-7000-8000-000000000001"
SALT = row_salt(KEY, AUDIT_ID)
OTHER_SALT = row_salt(KEY, "0198f0c2-7a40-7000-8000-000000000002")

Row = list[object]

# -- independent reference implementation (RFC 6962 §2.1, written out again) ------------


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_leaf(salt: bytes, row: Sequence[object]) -> bytes:
    text = json.dumps(list(row), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(b"\x00" + salt + text.encode("utf-8")).digest()


def ref_root(salt: bytes, rows: Sequence[Sequence[object]]) -> bytes:
    return ref_mth(sorted(ref_leaf(salt, r) for r in rows))


# -- strategies -----------------------------------------------------------------------

cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["海淀区", "朝阳区", "张伟", "王芳", "", "110101199003077774", "a,b", '"]']),
    st.text(alphabet=st.sampled_from("ab'\"\\,[]\n 0海淀区张伟\u2028😀"), max_size=6),
)
rows_st = st.lists(st.lists(cells, max_size=4), max_size=24)


@st.composite
def rows_with_duplicates(draw: st.DrawFn) -> list[Row]:
    rows = draw(rows_st)
    if rows:
        rows += draw(st.lists(st.sampled_from(rows), max_size=4))
    return draw(st.permutations(rows))


def present(rows: Sequence[Sequence[object]], row: Sequence[object]) -> bool:
    # Presence is by encoded bytes, not Python equality: 1 == 1.0 == True, but the three
    # are different rows in the response (and in the tree).
    return row_bytes(row) in {row_bytes(r) for r in rows}


def outcome(
    salt: bytes, root: bytes, row: Sequence[object], proof: RowProof, size: int
) -> bool | None:
    """verify_row's answer, or None if it rejected the proof (any other exception fails)."""
    try:
        return verify_row(salt, root, row, proof, size=size)
    except RowProofError:
        return None


# -- salt and encoding --------------------------------------------------------------------


def test_row_salt_is_the_documented_hmac() -> None:
    expected = hmac.new(KEY, b"gateway/rows/v1\x00" + AUDIT_ID.encode(), "sha256").digest()
    assert expected == SALT
    assert len(SALT) == 32
    assert (
        row_salt(KEY, "审计-1")
        == hmac.new(KEY, b"gateway/rows/v1\x00" + "审计-1".encode(), "sha256").digest()
    )
    assert row_salt(KEY, AUDIT_ID) != row_salt(KEY + b"x", AUDIT_ID)
    assert SALT != OTHER_SALT


def test_row_salt_rejects_short_keys() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        row_salt(b"short", AUDIT_ID)


def test_row_bytes_is_compact_json_without_ascii_escapes() -> None:
    assert row_bytes([1, "海淀区", None, True, 1.5, -0.0]) == (
        '[1,"海淀区",null,true,1.5,-0.0]'.encode()
    )
    assert row_bytes(("a", 2)) == b'["a",2]'
    assert row_bytes([]) == b"[]"
    # 1, 1.0 and true are different rows.
    assert len({row_bytes([1]), row_bytes([1.0]), row_bytes([True])}) == 3


@given(st.lists(cells, max_size=8))
def test_row_bytes_matches_json_dumps(row: Row) -> None:
    text = json.dumps(list(row), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert row_bytes(row) == text.encode("utf-8")
    assert row_bytes(tuple(row)) == row_bytes(row)


@given(rows_st)
def test_row_bytes_are_the_rows_exactly_as_in_the_response_body(rows: list[Row]) -> None:
    body = encode_result(
        audit_id=AUDIT_ID,
        columns=[],
        rows=rows,
        truncated=False,
        purpose="social_assistance",
        policy_version="p1",
        row_salt=SALT,
    )
    assert b'"rows":[' + b",".join(row_bytes(r) for r in rows) + b"]," in body


def test_row_bytes_rejects_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError):
        row_bytes([float("nan")])
    with pytest.raises(ValueError):
        row_bytes([float("inf")])
    with pytest.raises(TypeError):
        row_bytes([b"bytes"])
    with pytest.raises(TypeError):
        row_bytes("ab")  # a str is a Sequence, but not a row


def test_row_leaf_is_a_salted_rfc6962_leaf() -> None:
    row = [7, "张伟"]
    assert row_leaf(SALT, row) == hashlib.sha256(b"\x00" + SALT + row_bytes(row)).digest()
    assert row_leaf(SALT, row) != row_leaf(OTHER_SALT, row)
    with pytest.raises(ValueError, match="32 bytes"):
        row_leaf(SALT[:16], row)


# -- the root -------------------------------------------------------------------------------


def test_golden_root() -> None:
    # Pins the whole scheme (salt derivation, encoding, leaf, sort, tree): a change here
    # breaks every root already in the audit log.
    rows: list[Row] = [[1, "海淀区", None], [2, "朝阳区", 3.5], [1, "海淀区", None], [3, "", True]]
    root = rows_root(SALT, rows)
    assert root == ref_root(SALT, rows)
    assert root.hex() == "15f5cdc27c66977a052367f5c2793ca15bdf8a5ea0715ab15add2a762bb6e045"


def test_empty_and_single_row_roots() -> None:
    assert rows_root(SALT, []) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert rows_root(SALT, [["only"]]) == row_leaf(SALT, ["only"])


@given(rows_with_duplicates())
def test_root_is_the_sorted_rfc6962_root_in_any_row_order(rows: list[Row]) -> None:
    root = rows_root(SALT, rows)
    assert root == ref_root(SALT, rows)
    leaves = sorted_row_leaves(SALT, rows)
    assert leaves == sorted(leaves)
    assert root == root_from_leaves(leaves)
    assert rows_root(SALT, list(reversed(rows))) == root
    assert RowTree(SALT, rows).root == root


def test_root_commits_to_the_multiset() -> None:
    # A duplicated row is two deliveries of it: the root must tell them apart.
    assert rows_root(SALT, [["a"], ["a"]]) != rows_root(SALT, [["a"]])
    assert rows_root(SALT, [["a"]]) != rows_root(OTHER_SALT, [["a"]])


def test_rows_root_of_10000_rows_matches_the_reference() -> None:
    rows: list[Row] = [
        [i, f"张伟{i % 97}", ["海淀区", "朝阳区", None][i % 3], i * 0.25, i % 2 == 0, "1101011990"]
        for i in range(10_000)
    ]
    assert rows_root(SALT, rows) == root_from_leaves(sorted(ref_leaf(SALT, r) for r in rows))


# -- proofs of honest trees ---------------------------------------------------------------


@given(rows_with_duplicates())
def test_every_present_row_gets_a_verifying_membership_proof(rows: list[Row]) -> None:
    root, size = rows_root(SALT, rows), len(rows)
    leaves = sorted_row_leaves(SALT, rows)
    for row in rows:
        proof = prove_row(SALT, rows, row)
        assert isinstance(proof, RowMembershipProof)
        assert proof.size == size
        assert leaves[proof.index] == proof.leaf == row_leaf(SALT, row)
        assert verify_row(SALT, root, row, proof, size=size) is True


@given(rows_with_duplicates(), st.lists(st.lists(cells, max_size=4), min_size=1, max_size=6))
def test_absent_rows_get_verifying_absence_proofs(rows: list[Row], others: list[Row]) -> None:
    root, size = rows_root(SALT, rows), len(rows)
    for row in others:
        if present(rows, row):
            continue
        proof = prove_row(SALT, rows, row)
        assert isinstance(proof, RowAbsenceProof)
        assert proof.size == size
        assert (proof.left is None and proof.right is None) == (size == 0)
        assert verify_row(SALT, root, row, proof, size=size) is False


def test_empty_response() -> None:
    proof = prove_row(SALT, [], [1])
    assert proof == RowAbsenceProof(size=0, left=None, right=None)
    assert verify_row(SALT, EMPTY_ROOT, [1], proof, size=0) is False
    # Without neighbours an absence proof only works for the empty tree.
    root = rows_root(SALT, [[2]])
    with pytest.raises(RowProofError):
        verify_row(SALT, root, [1], proof, size=1)
    with pytest.raises(RowProofError):
        verify_row(SALT, root, [1], dataclasses.replace(proof, size=1), size=1)
    with pytest.raises(RowProofError):
        verify_row(SALT, rows_root(SALT, [[2]]), [1], proof, size=0)


def test_single_row() -> None:
    rows: list[Row] = [["张伟", 42]]
    root = rows_root(SALT, rows)
    proof = prove_row(SALT, rows, rows[0])
    assert proof == RowMembershipProof(index=0, size=1, leaf=root, path=())
    assert verify_row(SALT, root, rows[0], proof, size=1) is True
    absent = prove_row(SALT, rows, ["王芳", 42])
    assert isinstance(absent, RowAbsenceProof)
    assert (absent.left is None) != (absent.right is None)
    assert verify_row(SALT, root, ["王芳", 42], absent, size=1) is False


def test_row_tree_proves_like_prove_row() -> None:
    rows: list[Row] = [[i, str(i)] for i in range(37)]
    tree = RowTree(SALT, rows)
    assert tree.size == 37
    for row in [*rows, [99, "99"], [-1, "x"]]:
        assert tree.prove(row) == prove_row(SALT, rows, row)


# -- forgeries and tampering -------------------------------------------------------------


def honest_members(rows: Sequence[Sequence[object]]) -> list[RowMembershipProof]:
    """The genuine membership proof of every index, later copies of duplicates included."""
    leaves = sorted_row_leaves(SALT, rows)
    size, root = len(leaves), root_from_leaves(leaves)
    members = [
        RowMembershipProof(i, size, leaf, tuple(inclusion_proof_from_leaves(leaves, i)))
        for i, leaf in enumerate(leaves)
    ]
    for m in members:  # sanity: they really are honest
        verify_inclusion(m.leaf, m.index, size, m.path, root)
    return members


def test_no_absence_proof_from_honest_neighbours_for_a_present_row() -> None:
    # Every pairing of genuine membership proofs (or None) as neighbours: adjacent or not,
    # in either order, with or without an end. None may pass for a delivered row.
    rows: list[Row] = [[i % 5, "海淀区" if i % 2 else "朝阳区"] for i in range(23)]  # with dups
    size, root = len(rows), rows_root(SALT, rows)
    choices = [None, *honest_members(rows)]
    for row in rows:
        for left in choices:
            for right in choices:
                with pytest.raises(RowProofError):
                    verify_row(SALT, root, row, RowAbsenceProof(size, left, right), size=size)


@given(rows_with_duplicates(), st.lists(cells, max_size=4), st.data())
def test_honest_pieces_in_any_arrangement_never_give_a_wrong_answer(
    rows: list[Row], extra: Row, data: st.DataObject
) -> None:
    size, root = len(rows), rows_root(SALT, rows)
    row = data.draw(st.sampled_from([*rows, extra]))
    truth = present(rows, row)
    members = honest_members(rows)
    choices = [None, *members]
    answers = {
        outcome(SALT, root, row, RowAbsenceProof(size, left, right), size)
        for left in choices
        for right in choices
    }
    answers |= {outcome(SALT, root, row, m, size) for m in members}
    assert answers <= {truth, None}
    assert truth in answers  # the honest proof is among them


def test_the_tree_size_comes_from_the_record_not_from_the_proof() -> None:
    # The root itself, passed off as the only leaf of a one-leaf tree, is a perfectly valid
    # RFC 6962 inclusion proof, and every row's leaf sorts either before or after it. Only
    # the record's row count stops this "proof" that any row at all was not delivered.
    rows: list[Row] = [[i] for i in range(10)]
    root = rows_root(SALT, rows)
    fake_leaf = RowMembershipProof(index=0, size=1, leaf=root, path=())
    for row in rows:
        before = RowAbsenceProof(1, left=None, right=fake_leaf)
        after = RowAbsenceProof(1, left=fake_leaf, right=None)
        forged = before if row_leaf(SALT, row) < root else after
        assert verify_row(SALT, root, row, forged, size=1) is False  # what a naive check says
        with pytest.raises(RowProofError, match="10"):
            verify_row(SALT, root, row, forged, size=len(rows))


def test_interior_nodes_cannot_pose_as_neighbours() -> None:
    # The same trick one level down: claim a smaller tree whose last "leaf" is the hash of
    # the two rightmost leaves of a 4-leaf tree.
    rows: list[Row] = [[i] for i in range(4)]
    tree = RowTree(SALT, rows)
    leaves = sorted_row_leaves(SALT, rows)
    n23 = hashlib.sha256(b"\x01" + leaves[2] + leaves[3]).digest()
    n01 = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
    fake = RowMembershipProof(index=2, size=3, leaf=n23, path=(n01,))
    forged = RowAbsenceProof(3, left=fake, right=None)
    for row in rows:
        with pytest.raises(RowProofError):
            verify_row(SALT, tree.root, row, forged, size=4)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def _member_mutations(m: RowMembershipProof) -> list[Callable[[int], RowMembershipProof]]:
    def path_at(i: int) -> Callable[[int], RowMembershipProof]:
        return lambda bit: dataclasses.replace(
            m, path=(*m.path[:i], _flip(m.path[i], bit), *m.path[i + 1 :])
        )

    mutations: list[Callable[[int], RowMembershipProof]] = [
        lambda bit: dataclasses.replace(m, index=m.index ^ (1 << (bit % 70))),
        lambda bit: dataclasses.replace(m, size=m.size ^ (1 << (bit % 70))),
        lambda bit: dataclasses.replace(m, leaf=_flip(m.leaf, bit)),
        lambda bit: dataclasses.replace(m, path=(*m.path, m.leaf)),
        lambda bit: dataclasses.replace(m, path=m.path[:-1]),
        lambda bit: dataclasses.replace(m, path=m.path[::-1]),
    ]
    mutations += [path_at(i) for i in range(len(m.path))]
    return mutations


def _mutations(proof: RowProof) -> list[Callable[[int], RowProof]]:
    if isinstance(proof, RowMembershipProof):
        return list(_member_mutations(proof))
    a = proof
    out: list[Callable[[int], RowProof]] = [
        lambda bit: dataclasses.replace(a, size=a.size ^ (1 << (bit % 70))),
        lambda bit: dataclasses.replace(a, left=None),
        lambda bit: dataclasses.replace(a, right=None),
        lambda bit: dataclasses.replace(a, left=a.right, right=a.left),
    ]

    def on_left(mutate: Callable[[int], RowMembershipProof]) -> Callable[[int], RowProof]:
        return lambda bit: dataclasses.replace(a, left=mutate(bit))

    def on_right(mutate: Callable[[int], RowMembershipProof]) -> Callable[[int], RowProof]:
        return lambda bit: dataclasses.replace(a, right=mutate(bit))

    if a.left is not None:
        out += [on_left(mutate) for mutate in _member_mutations(a.left)]
    if a.right is not None:
        out += [on_right(mutate) for mutate in _member_mutations(a.right)]
    return out


@settings(max_examples=300)
@given(rows_with_duplicates(), st.lists(cells, max_size=4), st.data())
def test_tampered_proofs_never_give_a_wrong_answer(
    rows: list[Row], extra: Row, data: st.DataObject
) -> None:
    root, size = rows_root(SALT, rows), len(rows)
    row = data.draw(st.sampled_from([*rows, extra]))
    truth = present(rows, row)
    proof = prove_row(SALT, rows, row)
    assert outcome(SALT, root, row, proof, size) is truth
    mutations = _mutations(proof)
    mutate = data.draw(st.sampled_from(mutations)) if mutations else None
    if mutate is not None:
        tampered = mutate(data.draw(st.integers(min_value=0, max_value=255)))
        assert outcome(SALT, root, row, tampered, size) in (truth, None)
    # The wrong salt, root or size: rejected, or (for an absent row) still "absent".
    assert outcome(OTHER_SALT, root, row, proof, size) in (truth, None)
    wrong_root = _flip(root, data.draw(st.integers(min_value=0, max_value=255)))
    assert outcome(SALT, wrong_root, row, proof, size) in (truth, None)
    wrong_size = data.draw(st.integers(min_value=0, max_value=size + 3).filter(lambda n: n != size))
    assert outcome(SALT, root, row, proof, wrong_size) is None
    if truth:
        assert outcome(OTHER_SALT, root, row, proof, size) is None


@given(rows_with_duplicates(), st.lists(cells, max_size=4), st.data())
def test_a_proof_for_one_row_says_nothing_about_another(
    rows: list[Row], other: Row, data: st.DataObject
) -> None:
    root, size = rows_root(SALT, rows), len(rows)
    row = data.draw(st.sampled_from([*rows, other]))
    proof = prove_row(SALT, rows, row)
    assert outcome(SALT, root, other, proof, size) in (present(rows, other), None)


def test_garbage_in_place_of_proofs_is_rejected() -> None:
    rows: list[Row] = [[1], [2], [3]]
    root = rows_root(SALT, rows)
    member = prove_row(SALT, rows, [2])
    assert isinstance(member, RowMembershipProof)
    bad: list[object] = [
        None,
        "proof",
        member.to_json(),
        dataclasses.replace(member, index=True),
        dataclasses.replace(member, index=-1),
        dataclasses.replace(member, path=list(member.path)),  # type: ignore[arg-type]
        dataclasses.replace(member, path=(b"short", *member.path[1:])),
        RowAbsenceProof(3, left=member, right=member),
    ]
    for proof in bad:
        with pytest.raises(RowProofError):
            verify_row(SALT, root, [2], proof, size=3)  # type: ignore[arg-type]
    with pytest.raises(RowProofError):
        verify_row(SALT, root[:31], [2], member, size=3)
    with pytest.raises(ValueError):
        verify_row(SALT[:31], root, [2], member, size=3)
    with pytest.raises(ValueError):
        verify_row(SALT, root, [2], member, size=-1)


# -- JSON form -----------------------------------------------------------------------------


@given(rows_with_duplicates(), st.lists(cells, max_size=4), st.data())
def test_json_round_trip(rows: list[Row], extra: Row, data: st.DataObject) -> None:
    row = data.draw(st.sampled_from([*rows, extra]))
    proof = prove_row(SALT, rows, row)
    obj = json.loads(json.dumps(proof.to_json()))
    assert proof_from_json(obj) == proof
    assert type(proof).from_json(obj) == proof
    root = rows_root(SALT, rows)
    assert verify_row(SALT, root, row, proof_from_json(obj), size=len(rows)) is present(rows, row)


def test_json_shape() -> None:
    rows: list[Row] = [[1], [2], [3]]
    member = prove_row(SALT, rows, [2])
    assert isinstance(member, RowMembershipProof)
    obj = member.to_json()
    assert set(obj) == {"type", "index", "size", "leaf", "path"}
    assert obj["type"] == "present"
    assert obj["leaf"] == base64.b64encode(member.leaf).decode()
    assert obj["path"] == [base64.b64encode(h).decode() for h in member.path]
    absent = prove_row(SALT, rows, [4])
    assert absent.to_json()["type"] == "absent"
    assert set(absent.to_json()) == {"type", "size", "left", "right"}


def test_malformed_json_is_rejected() -> None:
    rows: list[Row] = [[1], [2], [3]]
    member = prove_row(SALT, rows, [2]).to_json()
    absent = prove_row(SALT, rows, [4]).to_json()
    leaf = member["leaf"]
    assert isinstance(leaf, str)
    bad: list[object] = [
        None,
        [],
        {**member, "type": "other"},
        {**member, "extra": 1},
        {k: v for k, v in member.items() if k != "path"},
        {**member, "index": True},
        {**member, "index": -1},
        {**member, "index": 1.0},
        {**member, "size": "3"},
        {**member, "leaf": leaf[:-4]},  # 29 bytes
        {**member, "leaf": leaf.rstrip("=")},  # unpadded
        {**member, "leaf": leaf[:-2] + "B="},  # non-canonical spare bits
        {**member, "leaf": "!" + leaf[1:]},
        {**member, "leaf": "海" + leaf[1:]},
        {**member, "leaf": list(b"x" * 32)},
        {**member, "path": "not a list"},
        {**member, "path": [leaf] * 65},
        {**absent, "left": {**member, "type": "absent"}},
        {**absent, "right": 7},
        {**absent, "size": None},
    ]
    for obj in bad:
        with pytest.raises(RowProofError):
            proof_from_json(obj)
    with pytest.raises(RowProofError):
        RowAbsenceProof.from_json(member)
    with pytest.raises(RowProofError):
        RowMembershipProof.from_json(absent)
