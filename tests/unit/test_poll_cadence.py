"""The waiting room's cadence: how often each viewer's page asks again grows with how long
they can expect to wait, not with the length of the line; with bounded jitter."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from services import queue, queue_reads
from services.queue_reads import (
    POLL_FAST,
    POLL_JITTER,
    POLL_SLOWEST,
    POLL_WATCHING,
    QueueStatus,
    poll_seconds,
)
from tests.support.factories import make_event, make_user

NOW = datetime.now(timezone.utc)
FIXED = random.Random(7)


def waiting(ahead: int, wait_minutes: tuple[int, int] | None = None) -> QueueStatus:
    return QueueStatus("waiting", position=ahead + 1, waiting_ahead=ahead,
                       estimated_wait=wait_minutes)


def bounds(base: float) -> tuple[int, int]:
    return max(POLL_FAST, round(base * (1 - POLL_JITTER))), round(base * (1 + POLL_JITTER))


def test_offer_holders_and_the_front_of_the_line_ask_every_two_seconds():
    for status in (QueueStatus("offered"), waiting(0), waiting(2)):
        assert poll_seconds(status, rng=FIXED) in range(POLL_FAST, bounds(POLL_FAST)[1] + 1)


def test_the_back_of_a_long_line_asks_rarely_and_the_middle_in_between():
    far = [poll_seconds(waiting(20_000), rng=FIXED) for _ in range(50)]
    middle = [poll_seconds(waiting(40), rng=FIXED) for _ in range(50)]
    assert min(far) >= bounds(POLL_SLOWEST)[0] and max(far) <= bounds(POLL_SLOWEST)[1]
    assert bounds(20)[0] <= min(middle) and max(middle) <= bounds(20)[1]  # 40 × 0.5 s


def test_the_queues_pace_decides_when_it_is_known():
    # Expected in 12 minutes: asks about every 2 minutes' sixth, i.e. 60 s at most...
    assert poll_seconds(waiting(5, (10, 14)), rng=FIXED) >= bounds(POLL_SLOWEST)[0]
    # ...expected in a minute: every ~10 s, though only five are ahead.
    assert bounds(10)[0] <= poll_seconds(waiting(5, (1, 1)), rng=FIXED) <= bounds(10)[1]


def test_the_cadence_does_not_grow_with_the_line_once_the_wait_is_known():
    quick = (1, 1)  # the line moves fast: one minute to go whoever is asking
    assert poll_seconds(waiting(10, quick), rng=random.Random(1)) == poll_seconds(
        waiting(10_000, quick), rng=random.Random(1))


def test_jitter_spreads_pages_within_bounds():
    seen = {poll_seconds(waiting(20_000), rng=random.Random(seed)) for seed in range(200)}
    low, high = bounds(POLL_SLOWEST)
    assert min(seen) >= low and max(seen) <= high
    assert len(seen) > 10  # not in lockstep


def test_someone_watching_without_a_place_asks_now_and_then_and_a_buyer_never():
    assert bounds(POLL_WATCHING)[0] <= poll_seconds(None, rng=FIXED) <= bounds(POLL_WATCHING)[1]
    assert bounds(POLL_WATCHING)[0] <= poll_seconds(QueueStatus("expired"), rng=FIXED)
    assert poll_seconds(QueueStatus("purchased"), rng=FIXED) is None


@pytest.mark.parametrize("ahead", [0, 1500])
def test_a_real_queue_gives_its_waiters_their_cadence(app, ahead):
    """Through the service, with a moving clock: the front waits 2 s, the back far longer,
    and moving forward shortens it."""
    event = make_event(total_tickets=1)
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)  # the one offer
    for i in range(ahead):
        queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW + timedelta(seconds=i))
    me, later = make_user(), NOW + timedelta(seconds=ahead + 1)  # the offer is still live
    queue.join_queue(event_id=event.id, user_id=me.id, now=later)
    status = queue_reads.queue_status(event_id=event.id, user_id=me.id, now=later)
    assert status.waiting_ahead == ahead
    seconds = poll_seconds(status, rng=FIXED)
    if ahead == 0:
        assert seconds <= bounds(POLL_FAST)[1]
    else:
        assert seconds >= bounds(POLL_SLOWEST)[0]
