"""The bounded LRU mapping the per-object and non-argument caches share (openkms/lru.py)."""

from __future__ import annotations

import threading

import pytest

from openkms.lru import LRUCache


def test_the_least_recently_used_entry_is_evicted() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_get_or_compute_computes_once_and_a_hit_counts_as_use() -> None:
    cache: LRUCache[str, str] = LRUCache(2)
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert cache.get_or_compute("a", compute, "a") == "A"
    assert cache.get_or_compute("a", compute, "a") == "A"
    assert cache.get_or_compute("b", compute, "b") == "B"
    assert cache.get_or_compute("a", compute, "a") == "A"
    assert cache.get_or_compute("c", compute, "c") == "C"  # evicts "b", not "a"
    assert calls == ["a", "b", "c"]
    assert "a" in cache and "b" not in cache


def test_a_failed_computation_is_not_cached() -> None:
    cache: LRUCache[str, int] = LRUCache(4)

    def fail() -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("a", fail)
    assert "a" not in cache
    assert cache.get_or_compute("a", lambda: 7) == 7


def test_put_replaces_and_clear_empties() -> None:
    cache: LRUCache[str, int] = LRUCache(4)
    cache.put("a", 1)
    cache.put("a", 2)
    assert cache.get("a") == 2 and len(cache) == 1
    assert cache.get("missing") is None
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        LRUCache(0)


def test_threads_never_overfill_it() -> None:
    cache: LRUCache[int, int] = LRUCache(64)

    def work(offset: int) -> None:
        for i in range(2000):
            key = (i * 7 + offset) % 200
            assert cache.get_or_compute(key, lambda k: k * 2, key) == key * 2

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 64


def test_discard_drops_one_entry_now_and_ignores_an_absent_one() -> None:
    cache: LRUCache[str, int] = LRUCache(4)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.discard("a")
    cache.discard("never")
    assert "a" not in cache and cache.get("a") is None and cache.get("b") == 2 and len(cache) == 1
