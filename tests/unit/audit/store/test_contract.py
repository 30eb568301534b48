"""The AuditStore contract, run against memory, SQLite and PostgreSQL stores: appends and
batches, signed heads, proofs, search, export, key rotation, failures and tampering."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest

from gateway.audit import AuditRecord, AuditStore, Outcome, leaf_hash_of, open_audit_store
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.store.protocol import KeyEpoch, SearchQuery, StoredEntry, TreeHead
from gateway.errors import AuditUnavailableError, ConfigurationError
from gateway.tlog.checkpoint import open_checkpoint
from gateway.tlog.errors import NoteError
from gateway.tlog.note import Signer, add_signatures, generate_key, open_note
from gateway.tlog.rfc6962 import EMPTY_ROOT, root_from_leaves, verify_consistency, verify_inclusion
from tests.unit.audit.support import RawLog, assert_log_consistent, make_record, test_signer


def leaves(store: AuditStore) -> list[bytes]:
    return [entry.leaf_hash for entry in store.entries(0, store.size())]


def handover_by(new: CheckpointSigner, seen: list[TreeHead]) -> Callable[[TreeHead], str]:
    """A hand-over note: the old key's final checkpoint, co-signed by the new key."""

    def sign(final: TreeHead) -> str:
        seen.append(final)
        return add_signatures(final.checkpoint, [new.note_signer])

    return sign


# -- appending -------------------------------------------------------------------------


def test_append_get_size(store: AuditStore) -> None:
    assert store.size() == 0
    records = [make_record(i) for i in range(3)]
    assert [store.append(r) for r in records] == [0, 1, 2]
    assert store.size() == 3
    for idx, record in enumerate(records):
        found = store.get(record.audit_id)
        assert found is not None
        assert found[0] == idx
        assert found[1] == record
        assert found[1].canonical_bytes() == record.canonical_bytes()
    assert store.get("no-such-id") is None
    store.check()


def test_chinese_text_survives_storage(store: AuditStore) -> None:
    record = make_record(0, department="广东省人力资源和社会保障厅", reason="已脱敏：身份证号")
    store.append(record)
    found = store.get(record.audit_id)
    assert found is not None
    assert found[1].department == "广东省人力资源和社会保障厅"
    assert found[1].reason == "已脱敏：身份证号"


def test_batch_append_is_contiguous_with_one_checkpoint_per_batch(
    store: AuditStore, signer: CheckpointSigner
) -> None:
    first = store.append_batch([make_record(i) for i in range(5)])
    assert (first.first, first.count, first.head.size) == (0, 5, 5)
    second = store.append_batch([make_record(i) for i in range(5, 8)])
    assert (second.first, second.count, second.head.size) == (5, 3, 8)
    assert store.append(make_record(8)) == 8

    notes = store.checkpoints(0)
    sizes = [open_checkpoint(n, [signer.verifier], origin=signer.origin)[0].size for n in notes]
    assert sizes == [0, 5, 8, 9]
    assert store.checkpoint(5) == first.head.checkpoint
    assert store.checkpoint(8) == second.head.checkpoint
    assert store.checkpoint(3) is None
    assert store.checkpoints(6) == notes[2:]
    assert store.checkpoints(0, limit=2) == notes[:2]
    assert [e.idx for e in store.entries(0, 9)] == list(range(9))
    assert_log_consistent(store, signer)


def test_batch_records_are_stored_in_order(store: AuditStore) -> None:
    records = [make_record(i, system=f"s{i}") for i in range(6)]
    store.append_batch(records)
    for idx, record in enumerate(records):
        assert store.get(record.audit_id) == (idx, record)
    assert [e.record for e in store.entries(0, 6)] == [r.canonical_bytes() for r in records]


def test_empty_batch_and_duplicates_within_a_batch_are_refused(store: AuditStore) -> None:
    with pytest.raises(AuditUnavailableError):
        store.append_batch([])
    twin = make_record(1)
    with pytest.raises(AuditUnavailableError):
        store.append_batch([make_record(0), twin, make_record(2, audit_id=twin.audit_id)])
    assert store.size() == 0
    assert store.append(make_record(3)) == 0


def test_duplicate_audit_id_fails_without_gap(store: AuditStore) -> None:
    first = make_record(0)
    assert store.append(first) == 0
    with pytest.raises(AuditUnavailableError) as info:
        store.append(make_record(1, audit_id=first.audit_id))
    assert info.value.status == 503
    assert store.size() == 1
    assert store.append(make_record(2)) == 1
    store.check()


def test_failed_batch_leaves_size_root_and_head_unchanged(
    store: AuditStore, signer: CheckpointSigner
) -> None:
    existing = [make_record(i) for i in range(3)]
    store.append_batch(existing)
    head = store.head()
    fresh = make_record(10)
    with pytest.raises(AuditUnavailableError):
        store.append_batch([fresh, make_record(11, audit_id=existing[1].audit_id), make_record(12)])
    assert store.size() == 3
    assert store.head() == head
    assert store.get(fresh.audit_id) is None
    assert store.checkpoints(0)[-1] == head.checkpoint
    assert [e.idx for e in store.entries(0, 10)] == [0, 1, 2]

    # The next batch continues the same tree at the same index.
    done = store.append_batch([fresh, make_record(13)])
    assert (done.first, done.head.size) == (3, 5)
    verify_consistency(3, 5, head.root, done.head.root, store.consistency_proof(3, 5))
    all_leaves = leaves(store)
    verify_inclusion(all_leaves[3], 3, 5, store.inclusion_proof(3, 5), done.head.root)
    assert_log_consistent(store, signer)


def test_contiguous_indices_under_8_threads(store: AuditStore, signer: CheckpointSigner) -> None:
    threads, per_thread = 8, 50
    start = threading.Barrier(threads)

    def work(t: int) -> list[tuple[int, str]]:
        start.wait()
        out = []
        for i in range(per_thread):
            record = make_record(i, system=f"thread-{t}")
            out.append((store.append(record), record.audit_id))
        return out

    with ThreadPoolExecutor(threads) as pool:
        results = [pair for chunk in pool.map(work, range(threads)) for pair in chunk]
    indices = sorted(idx for idx, _ in results)
    assert indices == list(range(threads * per_thread))
    assert store.size() == threads * per_thread
    for idx, audit_id in results[::37]:
        found = store.get(audit_id)
        assert found is not None
        assert found[0] == idx
    assert_log_consistent(store, signer)


def test_concurrent_batches_and_proof_readers(store: AuditStore, signer: CheckpointSigner) -> None:
    threads, batches, per_batch = 4, 10, 7
    start = threading.Barrier(threads + 1)
    stop = threading.Event()
    problems: list[BaseException] = []

    def write(t: int) -> list[int]:
        start.wait()
        firsts = []
        for b in range(batches):
            done = store.append_batch(
                [make_record(i, system=f"t{t}-b{b}") for i in range(per_batch)]
            )
            assert done.count == per_batch
            firsts.append(done.first)
        return firsts

    def read() -> None:
        # Proofs for whatever head is current must verify while writers append.
        start.wait()
        while not stop.is_set():
            try:
                head = store.head()
                if head.size:
                    entry = store.entries(head.size - 1, head.size)[0]
                    proof = store.inclusion_proof(head.size - 1, head.size)
                    verify_inclusion(entry.leaf_hash, head.size - 1, head.size, proof, head.root)
            except BaseException as exc:  # pragma: no cover - reported below
                problems.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with ThreadPoolExecutor(threads) as pool:
            firsts = sorted(f for chunk in pool.map(write, range(threads)) for f in chunk)
    finally:
        stop.set()
        reader.join()
    assert not problems, problems
    assert firsts == list(range(0, threads * batches * per_batch, per_batch))
    assert_log_consistent(store, signer)


def test_records_holding_nul_and_noncharacters(store: AuditStore) -> None:
    # U+0000 can arrive in a consumer's SQL or purpose (JSON "\u0000"); PostgreSQL text
    # cannot hold it, so that store escapes its searchable copies. Nothing may differ.
    odd = make_record(
        0,
        sql="SELECT 1 -- a\x00b \uffff0c",
        purpose="p\x00q",
        department="d\uffff",
        system="s\uffff\uffff",
        tables=("ds\x00x.t",),
    )
    plain = make_record(1, sql="SELECT '0b' FROM pop.people", tables=("ds.t",))
    store.append_batch([plain, odd])  # odd is the newest, so it is met first
    assert store.get(odd.audit_id) == (1, odd)

    def idxs(**filters: object) -> list[int]:
        return [idx for idx, _ in store.search(SearchQuery(**filters))]  # type: ignore[arg-type]

    assert idxs(text="\x00") == [1]
    assert idxs(text="a\x00b") == [1]
    assert idxs(text="\uffff0c") == [1]
    # "0b" is no substring of odd's SQL, although it is one of an escaped form of it.
    assert idxs(text="0b") == [0]
    assert idxs(text="0b", limit=1) == [0]
    assert idxs(text="0c") == [1]
    assert idxs(purpose="p\x00q") == [1]
    assert idxs(purpose="p") == []
    assert idxs(department="d\uffff") == [1]
    assert idxs(system="s\uffff\uffff") == [1]
    assert idxs(system="s\uffff") == []
    assert idxs(dataset="ds\x00x") == [1]
    assert idxs(dataset="ds") == [0]
    store.check()


# -- signed heads and proofs -------------------------------------------------------------


def test_empty_log_has_a_signed_head(store: AuditStore, signer: CheckpointSigner) -> None:
    head = store.head()
    assert (head.size, head.root) == (0, EMPTY_ROOT)
    checkpoint, verified = open_checkpoint(head.checkpoint, [signer.verifier], origin=signer.origin)
    assert (checkpoint.size, checkpoint.root_hash) == (0, EMPTY_ROOT)
    assert verified == (signer.verifier,)
    assert store.origin == signer.origin
    assert store.checkpoints(0) == [head.checkpoint]
    assert store.checkpoint(0) == head.checkpoint
    assert store.key_history() == [KeyEpoch(signer.origin, signer.verifier.encode(), 0, None)]


def test_head_is_signed_and_is_the_root_of_all_leaves(
    store: AuditStore, signer: CheckpointSigner
) -> None:
    records = [make_record(i) for i in range(11)]
    for chunk in (records[:1], records[1:4], records[4:]):
        store.append_batch(chunk)
    head = store.head()
    checkpoint, _ = open_checkpoint(head.checkpoint, [signer.verifier], origin=signer.origin)
    expected = [leaf_hash_of(r.canonical_bytes()) for r in records]
    assert leaves(store) == expected
    assert checkpoint.size == head.size == store.size() == 11
    assert checkpoint.root_hash == head.root == root_from_leaves(expected)
    with pytest.raises(NoteError):
        open_checkpoint(head.checkpoint, [test_signer("other.test.invalid/1").verifier])


def test_inclusion_and_consistency_proofs_verify(store: AuditStore) -> None:
    records = [make_record(i) for i in range(40)]
    at = 0
    for n in (1, 2, 5, 8, 3, 13, 8):  # 40 in batches of odd sizes
        store.append_batch(records[at : at + n])
        at += n
    all_leaves = [r.leaf_hash() for r in records]
    assert leaves(store) == all_leaves
    sizes = [1, 2, 3, 7, 8, 13, 16, 27, 32, 39, 40]
    roots = {size: root_from_leaves(all_leaves[:size]) for size in [0, *sizes]}
    for size in sizes:
        for index in range(size):
            proof = store.inclusion_proof(index, size)
            verify_inclusion(all_leaves[index], index, size, proof, roots[size])
        for old in [0, *sizes]:
            if old <= size:
                proof = store.consistency_proof(old, size)
                verify_consistency(old, size, roots[old], roots[size], proof)
    # Every stored checkpoint names the root of its prefix.
    for note in store.checkpoints(0):
        checkpoint, _ = open_checkpoint(note, [test_signer().verifier])
        assert checkpoint.root_hash == root_from_leaves(all_leaves[: checkpoint.size])


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("inclusion_proof", (5, 5)),
        ("inclusion_proof", (0, 6)),
        ("inclusion_proof", (-1, 3)),
        ("inclusion_proof", (0, 0)),
        ("consistency_proof", (3, 2)),
        ("consistency_proof", (0, 6)),
        ("consistency_proof", (-1, 2)),
    ],
)
def test_proof_arguments_are_checked(store: AuditStore, method: str, args: tuple[int, int]) -> None:
    store.append_batch([make_record(i) for i in range(5)])
    with pytest.raises(ValueError):
        getattr(store, method)(*args)


def test_a_second_store_on_the_same_log_serves_the_same_proofs(
    durable_location: str, signer: CheckpointSigner
) -> None:
    writer = open_audit_store(durable_location, signer)
    reader = open_audit_store(durable_location, signer)
    try:
        writer.append_batch([make_record(i) for i in range(20)])
        all_leaves = leaves(writer)
        root = root_from_leaves(all_leaves)
        # The reader has never seen these entries: it catches up from storage.
        for index in (0, 7, 19):
            verify_inclusion(all_leaves[index], index, 20, reader.inclusion_proof(index, 20), root)
        assert reader.consistency_proof(5, 20) == writer.consistency_proof(5, 20)
        writer.append_batch([make_record(i) for i in range(20, 25)])
        new_root = writer.head().root
        verify_consistency(20, 25, root, new_root, reader.consistency_proof(20, 25))
        with pytest.raises(ValueError):
            reader.inclusion_proof(0, 26)
        # And the reader can append after the writer, continuing the same tree.
        assert reader.append(make_record(25)) == 25
        assert_log_consistent(writer, signer)
    finally:
        reader.close()
        writer.close()


# -- search and export -----------------------------------------------------------------


def test_search_filters_and_order(store: AuditStore) -> None:
    rows = [
        make_record(0, department="A", system="s1", outcome=Outcome.SERVED),
        make_record(1, department="B", system="s1", outcome=Outcome.REFUSED, status=403),
        make_record(2, department="A", system="s2", outcome=Outcome.FAILED, status=502),
        make_record(3, department=None, system=None, outcome=Outcome.REFUSED, status=401),
        make_record(4, department="A", system="s1", outcome=Outcome.SERVED),
    ]
    for r in rows:
        store.append(r)

    def idxs(**filters: object) -> list[int]:
        return [idx for idx, _ in store.search(SearchQuery(**filters))]  # type: ignore[arg-type]

    assert idxs() == [4, 3, 2, 1, 0]  # newest first
    assert idxs(department="A") == [4, 2, 0]
    assert idxs(system="s1") == [4, 1, 0]
    assert idxs(outcome=Outcome.REFUSED) == [3, 1]
    assert idxs(department="A", system="s1", outcome=Outcome.SERVED) == [4, 0]
    assert idxs(since=rows[1].time) == [4, 3, 2, 1]  # inclusive
    assert idxs(until=rows[3].time) == [2, 1, 0]  # exclusive
    assert idxs(since=rows[1].time, until=rows[3].time, department="A") == [2]
    assert idxs(limit=2) == [4, 3]
    assert idxs(department="nobody") == []
    found = store.search(SearchQuery(department="B"))
    assert found == [(1, rows[1])]


def test_search_by_dataset_matches_whole_names_literally(store: AuditStore) -> None:
    for n, tables in enumerate(
        [
            ("pop_x.people",),
            ("popAx.people",),
            ("pop.people", "tax.returns", "pop.households"),
            (),
            ("pop%.t",),
            ("civil_affairs.marriages",),
        ]
    ):
        store.append(make_record(n, tables=tables))

    def idxs(dataset: str) -> list[int]:
        return [idx for idx, _ in store.search(SearchQuery(dataset=dataset))]

    assert idxs("pop_x") == [0]  # '_' is not a wildcard
    assert idxs("popAx") == [1]
    assert idxs("pop") == [2]  # whole names only: not pop_x, popAx or pop%
    assert idxs("tax") == [2]
    assert idxs("pop%") == [4]  # '%' is not a wildcard either
    assert idxs("p%") == []
    assert idxs("pop_") == []
    assert idxs("people") == []  # a table, not a dataset
    assert idxs("pop.people") == []
    assert idxs("civil_affairs") == [5]
    assert idxs("civil") == []
    assert idxs("") == []
    assert [i for i, _ in store.search(SearchQuery(dataset="pop", system="population-portal"))] == [
        2
    ]


def test_search_by_purpose(store: AuditStore) -> None:
    store.append(make_record(0, purpose="social_assistance"))
    store.append(make_record(1, purpose="tax_audit"))
    store.append(make_record(2, purpose=None, department=None, system=None, status=401))
    store.append(make_record(3, purpose="social_assistance"))
    assert [i for i, _ in store.search(SearchQuery(purpose="social_assistance"))] == [3, 0]
    assert [i for i, _ in store.search(SearchQuery(purpose="tax_audit"))] == [1]
    assert [
        i for i, _ in store.search(SearchQuery(purpose="social"))
    ] == []  # equality, not substring
    assert [i for i, _ in store.search(SearchQuery(purpose="social_assistance", limit=1))] == [3]


def test_search_by_text_is_a_case_sensitive_literal_substring(store: AuditStore) -> None:
    sqls = [
        "SELECT name FROM pop.people WHERE name LIKE 'a_b%'",
        "select name from pop.people",
        None,
        "SELECT id_number FROM pop.people WHERE district = '海淀区'",
        "SELECT 100% FROM t",
    ]
    for n, text in enumerate(sqls):
        store.append(make_record(n, sql=text))

    def idxs(text: str, **more: object) -> list[int]:
        return [idx for idx, _ in store.search(SearchQuery(text=text, **more))]  # type: ignore[arg-type]

    assert idxs("SELECT") == [4, 3, 0]
    assert idxs("select") == [1]
    assert idxs("a_b%") == [0]
    assert idxs("a%b") == []
    assert idxs("_") == [3, 0]
    assert idxs("%") == [4, 0]
    assert idxs("海淀") == [3]
    assert idxs("pop.people") == [3, 1, 0]
    assert idxs("pop.people", limit=2) == [3, 1]
    assert idxs("nothing like this") == []
    assert idxs("") == [4, 3, 1, 0]  # every record that has SQL


def test_search_pages_with_before(store: AuditStore) -> None:
    store.append_batch([make_record(i, system=f"s{i % 2}") for i in range(12)])

    def page(**filters: object) -> list[int]:
        return [idx for idx, _ in store.search(SearchQuery(limit=5, **filters))]  # type: ignore[arg-type]

    assert page() == [11, 10, 9, 8, 7]
    assert page(before=7) == [6, 5, 4, 3, 2]
    assert page(before=2) == [1, 0]
    assert page(before=0) == []
    assert page(before=-3) == []
    assert page(before=1000) == [11, 10, 9, 8, 7]
    assert page(system="s1") == [11, 9, 7, 5, 3]
    assert page(system="s1", before=3) == [1]
    # Paging through everything visits every index once.
    seen: list[int] = []
    before: int | None = None
    while True:
        chunk = [i for i, _ in store.search(SearchQuery(limit=4, before=before))]
        if not chunk:
            break
        seen += chunk
        before = chunk[-1]
    assert seen == list(range(11, -1, -1))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"since": "2026-11-23"}, ValueError),
        ({"until": "yesterday"}, ValueError),
        ({"limit": 0}, ValueError),
        ({"limit": 10_001}, ValueError),
        ({"limit": True}, TypeError),
        ({"before": "7"}, TypeError),
        ({"before": True}, TypeError),
        ({"outcome": "maybe"}, ValueError),
    ],
)
def test_search_rejects_bad_arguments(
    store: AuditStore, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.search(SearchQuery(**kwargs))  # type: ignore[arg-type]


def test_entries_export_bytes_and_leaf_hashes(store: AuditStore) -> None:
    records = [make_record(i) for i in range(6)]
    store.append_batch(records)
    entries = store.entries(0, 6)
    assert entries == [
        StoredEntry(i, r.canonical_bytes(), leaf_hash_of(r.canonical_bytes()))
        for i, r in enumerate(records)
    ]
    assert [e.idx for e in store.entries(2, 4)] == [2, 3]
    assert [e.idx for e in store.entries(4, 100)] == [4, 5]
    assert store.entries(6, 6) == []
    assert store.entries(10, 20) == []
    for start, end in ((-1, 2), (3, 2)):
        with pytest.raises(ValueError):
            store.entries(start, end)
    assert AuditRecord.from_canonical(entries[3].record) == records[3]


# -- key rotation ----------------------------------------------------------------------


def test_key_rotation_continues_the_same_tree(store: AuditStore, signer: CheckpointSigner) -> None:
    store.append_batch([make_record(i) for i in range(5)])
    before = store.head()
    new = test_signer("audit.test.invalid/2")
    seen: list[TreeHead] = []
    epoch = store.rotate(new, handover_by(new, seen))

    # The old key's final head, then the hand-over signed by both keys.
    assert len(seen) == 1
    assert (seen[0].size, seen[0].root) == (5, before.root)
    open_checkpoint(seen[0].checkpoint, [signer.verifier], origin=signer.origin)
    assert epoch == KeyEpoch(new.origin, new.verifier.encode(), 5, epoch.handover)
    assert epoch.handover is not None
    _, verified = open_note(epoch.handover, [signer.verifier, new.verifier])
    assert set(verified) == {signer.verifier, new.verifier}
    assert store.key_history() == [
        KeyEpoch(signer.origin, signer.verifier.encode(), 0, None),
        epoch,
    ]
    assert store.origin == new.origin

    # From now on heads are signed by the new key (under the new origin) only.
    head = store.head()
    assert (head.size, head.root) == (5, before.root)
    open_checkpoint(head.checkpoint, [new.verifier], origin=new.origin)
    with pytest.raises(NoteError):
        open_checkpoint(head.checkpoint, [signer.verifier])
    assert store.checkpoint(5) == head.checkpoint

    done = store.append_batch([make_record(i) for i in range(5, 9)])
    assert (done.first, done.head.size) == (5, 9)
    open_checkpoint(done.head.checkpoint, [new.verifier], origin=new.origin)
    verify_consistency(5, 9, before.root, done.head.root, store.consistency_proof(5, 9))
    assert done.head.root == root_from_leaves(leaves(store))
    store.check()


def test_key_rotation_is_durable_and_retires_the_old_key(
    durable_location: str, signer: CheckpointSigner
) -> None:
    new = test_signer("audit.test.invalid/2")
    store = open_audit_store(durable_location, signer)
    stale = open_audit_store(durable_location, signer)  # another process, old key
    try:
        store.append_batch([make_record(i) for i in range(3)])
        before = store.head()
        epoch = store.rotate(new, handover_by(new, []))
        with pytest.raises(ConfigurationError, match="not by the configured key"):
            open_audit_store(durable_location, signer)
        with pytest.raises(AuditUnavailableError) as info:
            stale.append(make_record(3))
        assert "not by the configured key" in (info.value.internal_detail or "")
        with pytest.raises(AuditUnavailableError):
            stale.rotate(test_signer("audit.test.invalid/3"), handover_by(new, []))
        assert store.size() == 3
    finally:
        stale.close()
        store.close()
    with closing(open_audit_store(durable_location, new)) as reopened:
        assert reopened.key_history()[1] == epoch
        assert reopened.append(make_record(4)) == 3
        after = reopened.head()
        open_checkpoint(after.checkpoint, [new.verifier], origin=new.origin)
        proof = reopened.consistency_proof(3, 4)
        verify_consistency(3, 4, before.root, after.root, proof)
        assert_log_consistent(reopened, new)


def test_store_created_by_another_key_is_refused(
    durable_location: str, signer: CheckpointSigner
) -> None:
    open_audit_store(durable_location, signer).close()
    with pytest.raises(ConfigurationError):
        open_audit_store(durable_location, test_signer("audit.test.invalid/other"))
    # Same origin, different key: just as foreign.
    impostor = CheckpointSigner(Signer.parse(generate_key(signer.origin)[0]))
    with pytest.raises(ConfigurationError):
        open_audit_store(durable_location, impostor)
    with closing(open_audit_store(durable_location, signer)) as again:
        assert again.append(make_record(0)) == 0


def test_rotating_to_an_origin_used_before_fails(
    durable_store: AuditStore, signer: CheckpointSigner
) -> None:
    durable_store.append(make_record(0))
    with pytest.raises(AuditUnavailableError):
        durable_store.rotate(signer, handover_by(signer, []))
    assert len(durable_store.key_history()) == 1
    assert durable_store.origin == signer.origin
    assert durable_store.append(make_record(1)) == 1


# -- tampering (behind the store's back) -------------------------------------------------


def test_check_catches_a_consistently_rewritten_row(
    durable_location: str, durable_store: AuditStore, signer: CheckpointSigner
) -> None:
    durable_store.append_batch([make_record(i) for i in range(6)])
    raw = RawLog(durable_location)
    raw.drop_triggers()
    data = bytes(raw.query("SELECT record FROM {t}audit_log WHERE idx = %s", (2,))[0][0])
    forged = data.replace(b'"row_count":12', b'"row_count":0')
    assert forged != data
    AuditRecord.from_canonical(forged)  # still a canonical record with the same columns
    raw.execute(
        "UPDATE {t}audit_log SET record = %s, leaf_hash = %s WHERE idx = %s",
        (forged, leaf_hash_of(forged), 2),
    )
    with pytest.raises(AuditUnavailableError, match="root in audit_state does not match"):
        durable_store.check()
    # A process that reads the log from the start refuses to extend it.
    with (
        closing(open_audit_store(durable_location, signer)) as fresh,
        pytest.raises(AuditUnavailableError) as info,
    ):
        fresh.append(make_record(6))
    assert "root" in (info.value.internal_detail or "")
    assert raw.count() == 6


def test_tampered_state_root_blocks_appends(
    durable_location: str, durable_store: AuditStore, signer: CheckpointSigner
) -> None:
    durable_store.append_batch([make_record(i) for i in range(4)])
    raw = RawLog(durable_location)
    good = bytes(raw.query("SELECT root FROM {t}audit_state")[0][0])
    raw.execute("UPDATE {t}audit_state SET root = %s", (b"\x07" * 32,))
    with pytest.raises(AuditUnavailableError) as info:
        durable_store.append(make_record(4))
    assert "root" in (info.value.internal_detail or "")
    with pytest.raises(AuditUnavailableError, match="root in audit_state does not match"):
        durable_store.check()
    assert raw.count() == 4
    assert durable_store.size() == 4
    # Undone, the log is usable again and nothing was lost or added meanwhile.
    raw.execute("UPDATE {t}audit_state SET root = %s", (good,))
    assert durable_store.append(make_record(5)) == 4
    assert_log_consistent(durable_store, signer)


def test_deleted_tail_blocks_a_fresh_process(
    durable_location: str, durable_store: AuditStore, signer: CheckpointSigner
) -> None:
    durable_store.append_batch([make_record(i) for i in range(4)])
    raw = RawLog(durable_location)
    raw.drop_triggers()
    raw.execute("DELETE FROM {t}audit_log WHERE idx = 3")
    with pytest.raises(AuditUnavailableError, match="size is 4 but 3 rows"):
        durable_store.check()
    with (
        closing(open_audit_store(durable_location, signer)) as fresh,
        pytest.raises(AuditUnavailableError) as info,
    ):
        fresh.append(make_record(9))
    assert "3 entries stored" in (info.value.internal_detail or "")
    assert raw.count() == 3


def test_checkpoints_and_keys_are_append_only(
    durable_location: str, durable_store: AuditStore
) -> None:
    durable_store.append(make_record(0))
    raw = RawLog(durable_location)
    for statement in (
        "UPDATE {t}audit_checkpoints SET note = 'x'",
        "DELETE FROM {t}audit_checkpoints",
        "UPDATE {t}audit_keys SET vkey = 'x'",
        "DELETE FROM {t}audit_keys",
        "UPDATE {t}audit_log SET department = 'x'",
        "DELETE FROM {t}audit_log",
    ):
        with pytest.raises(Exception, match="append-only"):
            raw.execute(statement)
    assert raw.count("audit_checkpoints") == 2
    assert raw.count("audit_keys") == 1
    durable_store.check()


# -- lifecycle -------------------------------------------------------------------------


def test_closed_store_is_unavailable(location: str, signer: CheckpointSigner) -> None:
    store = open_audit_store(location, signer)
    store.append(make_record(0))
    store.close()
    store.close()  # idempotent
    calls: list[Callable[[], object]] = [
        lambda: store.append(make_record(1)),
        lambda: store.append_batch([make_record(2)]),
        store.size,
        store.head,
        store.key_history,
        store.check,
        lambda: store.get(make_record(3).audit_id),
        lambda: store.search(SearchQuery()),
        lambda: store.entries(0, 1),
        lambda: store.checkpoint(1),
        lambda: store.checkpoints(0),
    ]
    for call in calls:
        with pytest.raises(AuditUnavailableError):
            call()


def test_check_passes_on_empty_store(store: AuditStore) -> None:
    store.check()


def test_unknown_location_is_a_configuration_error(signer: CheckpointSigner) -> None:
    for location in ("mysql://root@localhost/test", "sqlite:", "sqlite::memory:", ""):
        with pytest.raises(ConfigurationError):
            open_audit_store(location, signer)


def test_test_signer_is_deterministic() -> None:
    a, b = test_signer(), test_signer()
    assert a.verifier == b.verifier
    assert a.origin == "audit.test.invalid/1"
    assert test_signer("audit.test.invalid/2").verifier != a.verifier
    assert Signer.parse(a.note_signer.encode()).verifier() == a.verifier


def test_memory_store_can_be_made_unavailable(signer: CheckpointSigner) -> None:
    store = MemoryAuditStore(signer)
    store.append(make_record(0))
    store.unavailable = True
    with pytest.raises(AuditUnavailableError):
        store.append(make_record(1))
    with pytest.raises(AuditUnavailableError):
        store.head()
    store.unavailable = False
    assert store.size() == 1
    assert store.append(make_record(2)) == 1


def test_an_open_store_keeps_refusing_a_rolled_back_log(
    durable_location: str, durable_store: AuditStore
) -> None:
    """A consistent rollback (rows, state, checkpoints) behind an open store's back is
    refused on every later append, not only the first."""
    for n in range(5):
        durable_store.append(make_record(n))
    raw = RawLog(durable_location)
    raw.drop_triggers()
    root3 = durable_store.head().root  # any root: state no longer matches what was seen
    raw.execute("DELETE FROM {t}audit_log WHERE idx >= 3")
    raw.execute("UPDATE {t}audit_state SET size = 3, root = %s", (root3,))
    for attempt in range(3):
        with pytest.raises(AuditUnavailableError):
            durable_store.append(make_record(100 + attempt))


def test_an_open_store_notices_its_last_entry_vanished(
    durable_location: str, durable_store: AuditStore
) -> None:
    for n in range(4):
        durable_store.append(make_record(n))
    raw = RawLog(durable_location)
    raw.drop_triggers()
    raw.execute("DELETE FROM {t}audit_log WHERE idx = 3")
    with pytest.raises(AuditUnavailableError):
        durable_store.append(make_record(50))
    assert raw.count() == 3  # nothing was written past the hole


def test_search_answers_by_the_record_bytes_not_by_a_tampered_column(
    durable_location: str, durable_store: AuditStore
) -> None:
    """The database narrows a search by the searchable copies; the verified record bytes
    decide. A copy rewritten behind the store's back neither adds nor hides a record."""
    durable_store.append_batch([make_record(i, department="A") for i in range(3)])
    raw = RawLog(durable_location)
    raw.drop_triggers()
    raw.execute("UPDATE {t}audit_log SET department = %s WHERE idx = %s", ("B", 1))
    assert [i for i, _ in durable_store.search(SearchQuery(department="B"))] == []
    assert [i for i, _ in durable_store.search(SearchQuery(department="A"))] == [2, 0]
    with pytest.raises(AuditUnavailableError, match="row 1: searchable columns disagree"):
        durable_store.check()
