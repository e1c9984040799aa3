"""The event clock a status poll is compared by: one read, cached per process, and a
fingerprint that changes exactly when what a viewer is shown can change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services import queue, queue_reads
from tests.support.factories import make_event, make_user

NOW = datetime.now(timezone.utc)


def test_the_clock_carries_the_version_and_the_earliest_live_deadline(any_db_app):
    event = make_event(total_tickets=2)
    clock = queue_reads.event_clock(event.id)
    assert (clock.version, clock.next_deadline, clock.cancelled) == (0, None, False)
    first = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW + timedelta(minutes=1))
    clock = queue_reads.event_clock(event.id)
    assert clock.version == 2
    assert clock.next_deadline == first.offer_expires_at
    assert queue_reads.event_clock(10_000) is None


def test_the_fingerprint_changes_with_every_transition_and_when_an_offer_lapses(any_db_app):
    event = make_event(total_tickets=1)
    ann, bob = make_user(), make_user()
    before = queue_reads.event_clock(event.id).fingerprint(user_id=ann.id, now=NOW)
    entry = queue.join_queue(event_id=event.id, user_id=bob.id, now=NOW)
    clock = queue_reads.event_clock(event.id)
    assert clock.fingerprint(user_id=ann.id, now=NOW) != before  # someone else's join too
    assert clock.fingerprint(user_id=ann.id, now=NOW) != clock.fingerprint(user_id=bob.id, now=NOW)
    # Time alone: the offer's deadline passing changes what everyone is shown.
    lapsed = entry.offer_expires_at + timedelta(seconds=1)
    assert clock.has_stale_offers(lapsed) and not clock.has_stale_offers(NOW)
    before_deadline = clock.fingerprint(user_id=ann.id, now=NOW)
    assert clock.fingerprint(user_id=ann.id, now=lapsed) != before_deadline


def test_a_cached_clock_is_reused_until_this_process_changes_the_event(any_db_app):
    event = make_event(total_tickets=1)
    assert queue_reads.cached_event_clock(event.id, max_age=60) is None  # never read yet
    read = queue_reads.event_clock(event.id)
    assert queue_reads.cached_event_clock(event.id, max_age=60) is read
    assert queue_reads.cached_event_clock(event.id, max_age=0) is None  # too old for 0 s
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)  # forgets it
    assert queue_reads.cached_event_clock(event.id, max_age=60) is None
    assert queue_reads.event_clock(event.id).version == read.version + 1
