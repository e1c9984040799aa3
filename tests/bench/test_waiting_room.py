"""What the waiting-room benchmark builds and reads: a bulk-inserted line on the move that the
app reads like a real one (places, a pace for the estimated wait, the invariants), and the
poll rate such a line demands. On SQLite and PostgreSQL, as the benchmark runs on both."""

from __future__ import annotations

from bench.queues import NOW, build_queue
from bench.waiting_room import LIVE_OFFERS, line_demand
from services import queue_reads
from tests.support.invariants import assert_queue_invariants


def test_a_line_on_the_move_reads_like_a_real_one(any_db_app):
    event_id, last = build_queue(50, capacity=10, now=NOW, live_offers=3, ended_offers=6)

    assert_queue_invariants(event_id)
    last_waiter = queue_reads.queue_status(event_id=event_id, user_id=last, now=NOW)
    first_waiter = queue_reads.queue_status(event_id=event_id, user_id=last - 49, now=NOW)
    assert (first_waiter.status, first_waiter.position) == ("waiting", 4)  # 3 offers ahead
    assert (last_waiter.status, last_waiter.position) == ("waiting", 53)
    # Six offers ended 4 s apart: a pace, so everyone with waiters ahead gets an estimate;
    # the first waiter, with only offer holders ahead, gets their deadlines instead.
    second_waiter = queue_reads.queue_status(event_id=event_id, user_id=last - 48, now=NOW)
    assert first_waiter.estimated_wait is None
    assert second_waiter.estimated_wait is not None
    assert last_waiter.estimated_wait[0] >= second_waiter.estimated_wait[0]


def test_the_back_of_a_line_polls_slower_than_its_front(any_db_app):
    line = line_demand(1_000, samples=20)

    assert line["people"] == 1_000 + LIVE_OFFERS
    assert line["polls"][0] < line["polls"][-1]
    assert all(queue_reads.POLL_FAST <= p <= 72 for p in line["polls"])
    # Everyone asks at most every 2 s and at least every 72 s.
    assert line["people"] / 72 <= line["demand"] <= line["people"] / 2
