"""gateway.cache.LruCache: the one bounded cache (plans, schemas, derived tables,
decision snapshots, verified tokens)."""

from __future__ import annotations

import threading

import pytest

from gateway.cache import LruCache


def test_lru_evicts_the_least_recently_used() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_a_write_also_counts_as_a_use() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)  # replaces, and makes a the most recent
    cache.put("c", 3)
    assert cache.get("a") == 10 and cache.get("b") is None and len(cache) == 2


@pytest.mark.parametrize("size", [0, -5])
def test_a_cache_of_size_zero_or_less_keeps_nothing(size: int) -> None:
    cache: LruCache[str, int] = LruCache(size)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0 and cache.maxsize == 0
    calls: list[str] = []

    def compute() -> int:
        calls.append("a")
        return 2

    assert cache.get_or_compute("a", compute) == 2
    assert cache.get_or_compute("a", compute) == 2
    assert calls == ["a", "a"]


def test_get_or_compute_computes_once_per_key() -> None:
    cache: LruCache[tuple[str, int], str] = LruCache(8)
    calls: list[tuple[str, int]] = []

    def compute(key: tuple[str, int]) -> str:
        calls.append(key)
        return f"{key[0]}{key[1]}"

    assert cache.get_or_compute(("x", 1), lambda: compute(("x", 1))) == "x1"
    assert cache.get_or_compute(("x", 1), lambda: compute(("x", 1))) == "x1"
    assert cache.get_or_compute(("y", 2), lambda: compute(("y", 2))) == "y2"
    assert calls == [("x", 1), ("y", 2)]


def test_get_or_compute_stores_nothing_when_compute_raises() -> None:
    cache: LruCache[str, int] = LruCache(4)

    def fail() -> int:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        cache.get_or_compute("a", fail)
    assert cache.get("a") is None and len(cache) == 0


def test_clear_empties_the_cache() -> None:
    cache: LruCache[int, int] = LruCache(4)
    for i in range(4):
        cache.put(i, i)
    cache.clear()
    assert len(cache) == 0 and cache.get(1) is None


def test_concurrent_use_stays_bounded_and_consistent() -> None:
    cache: LruCache[int, int] = LruCache(64)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(offset: int) -> None:
        barrier.wait()
        try:
            for i in range(5_000):
                key = (i * 7 + offset) % 200
                cache.put(key, key * 2)
                value = cache.get((key + 1) % 200)
                if value is not None and value != ((key + 1) % 200) * 2:
                    raise AssertionError(f"key {key + 1} holds {value}")
                assert len(cache) <= 64
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(cache) == 64
