"""The AuditStore contract, run against memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from audit_support import make_record

from gateway.audit import AuditStore, Outcome, open_audit_store
from gateway.audit.memory import MemoryAuditStore
from gateway.errors import AuditUnavailableError, ConfigurationError


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
        return [idx for idx, _ in store.search(**filters)]  # type: ignore[arg-type]

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
    found = store.search(department="B")
    assert found == [(1, rows[1])]


@pytest.mark.parametrize(
    "kwargs",
    [{"since": "2026-11-23"}, {"until": "yesterday"}, {"limit": 0}, {"limit": 10_001}],
)
def test_search_rejects_bad_arguments(store: AuditStore, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        store.search(**kwargs)  # type: ignore[arg-type]


def test_duplicate_audit_id_fails_without_gap(store: AuditStore) -> None:
    first = make_record(0)
    assert store.append(first) == 0
    with pytest.raises(AuditUnavailableError) as info:
        store.append(make_record(1, audit_id=first.audit_id))
    assert info.value.status == 503
    assert store.size() == 1
    assert store.append(make_record(2)) == 1
    store.check()


def test_contiguous_indices_under_8_threads(store: AuditStore) -> None:
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
    store.check()


def test_closed_store_is_unavailable(location: str) -> None:
    store = open_audit_store(location)
    store.append(make_record(0))
    store.close()
    store.close()  # idempotent
    with pytest.raises(AuditUnavailableError):
        store.append(make_record(1))
    with pytest.raises(AuditUnavailableError):
        store.size()


def test_check_passes_on_empty_store(store: AuditStore) -> None:
    store.check()


def test_unknown_location_is_a_configuration_error() -> None:
    for location in ("mysql://root@localhost/test", "sqlite:", "sqlite::memory:", ""):
        with pytest.raises(ConfigurationError):
            open_audit_store(location)


def test_memory_store_can_be_made_unavailable() -> None:
    store = MemoryAuditStore()
    store.append(make_record(0))
    store.unavailable = True
    with pytest.raises(AuditUnavailableError):
        store.append(make_record(1))
    store.unavailable = False
    assert store.size() == 1
    assert store.append(make_record(2)) == 1
