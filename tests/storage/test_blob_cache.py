"""The stored images a process keeps in memory: bounded by bytes, least recently used out first."""

from __future__ import annotations

from storage.blob_cache import BlobCache


def test_the_cache_holds_at_most_its_budget_dropping_the_least_recently_used() -> None:
    cache = BlobCache(max_bytes=10)
    cache.keep({"a": b"aaaa", "b": b"bbbb"})
    assert cache.split(["a"]) == ({"a": b"aaaa"}, [])  # "a" is now the more recent
    cache.keep({"c": b"cccc"})
    assert cache.split(["a", "b", "c"]) == ({"a": b"aaaa", "c": b"cccc"}, ["b"])
    assert cache.held_bytes == 8


def test_an_image_larger_than_the_budget_is_not_kept_and_evicts_nothing() -> None:
    cache = BlobCache(max_bytes=10)
    cache.keep({"a": b"aaaa", "huge": b"x" * 11})
    assert cache.split(["a", "huge"]) == ({"a": b"aaaa"}, ["huge"])


def test_a_zero_budget_keeps_nothing() -> None:
    cache = BlobCache(max_bytes=0)
    cache.keep({"a": b"aaaa"})
    assert cache.split(["a"]) == ({}, ["a"]) and cache.held_bytes == 0


def test_clear_empties_it() -> None:
    cache = BlobCache(max_bytes=100)
    cache.keep({"a": b"aaaa"})
    cache.clear()
    assert cache.split(["a"]) == ({}, ["a"]) and cache.held_bytes == 0
