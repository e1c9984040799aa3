"""The in-process rate-limit store (extensions.SweptMemoryStorage, ``tickethub-memory://``):
fixed windows counted as limits' own ``memory://`` counts them, without its timer thread,
and the keys of ended windows swept away."""

from __future__ import annotations

import threading

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

import extensions
from extensions import SweptMemoryStorage


class Clock:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(extensions.time, "time", clock)
    return clock


def test_the_scheme_names_the_store():
    assert isinstance(storage_from_string("tickethub-memory://"), SweptMemoryStorage)


def test_a_window_counts_its_hits_then_starts_afresh(clock):
    limiter = FixedWindowRateLimiter(SweptMemoryStorage())
    per_minute = parse("3 per minute")
    assert [limiter.hit(per_minute, "poll", "ann") for _ in range(4)] == [True] * 3 + [False]
    assert limiter.hit(per_minute, "poll", "bob")  # everyone has their own count
    stats = limiter.get_window_stats(per_minute, "poll", "ann")
    assert stats.remaining == 0 and stats.reset_time == pytest.approx(clock.now + 60)

    clock.now += 60
    assert limiter.get_window_stats(per_minute, "poll", "ann").remaining == 3
    assert limiter.hit(per_minute, "poll", "ann")


def test_a_refund_of_a_hit_counts_down_within_the_window(clock):
    storage = SweptMemoryStorage()
    storage.incr("k", 60)
    storage.incr("k", 60)
    assert storage.decr("k") == 1
    clock.now += 61
    assert storage.decr("k") == 0 and storage.get("k") == 0


def test_ended_windows_are_swept_once_a_minute_without_a_thread(clock):
    threads = threading.active_count()
    storage = SweptMemoryStorage()
    for person in range(1_000):
        storage.incr(f"poll:{person}", 10)
    assert threading.active_count() <= threads + 1  # at most limits' one start-up timer
    assert len(storage.storage) == 1_000

    clock.now += SweptMemoryStorage.SWEEP_SECONDS
    storage.incr("poll:late", 10)

    assert set(storage.storage) == {"poll:late"} and set(storage.expirations) == {"poll:late"}


def test_hits_from_many_threads_are_all_counted():
    storage = SweptMemoryStorage()

    def hit_many():
        for _ in range(500):
            storage.incr("busy", 60)

    workers = [threading.Thread(target=hit_many) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert storage.get("busy") == 4_000
