"""Property-based: any sequence of joins, releases, expiries, purchases and capacity edits,
on SQLite and PostgreSQL, keeps every invariant and FIFO after every single step."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services import ServiceError, events, queue, queue_reads
from services.events import EventDetails
from tests.support.factories import make_event, make_user, utc
from tests.support.invariants import assert_queue_invariants

T0 = utc(2030, 1, 1, 12)
USERS = 6

# Joins come most often: a queue needs people in it for the other steps to matter.
ACTIONS = ["join"] * 5 + ["release"] * 2 + ["buy"] * 2 + ["wait", "capacity"]
steps = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 40)), min_size=4, max_size=30)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps, capacity=st.integers(1, 3))
def test_every_sequence_keeps_the_invariants(any_db_app, steps, capacity):
    organizer = make_user()
    event = make_event(organizer, now=T0, total_tickets=capacity, starts_at=T0 + timedelta(days=2))
    users = [make_user() for _ in range(USERS)]
    now = T0
    for action, arg in steps:
        try:
            user = users[arg % USERS]
            if action == "join":
                queue.join_queue(event_id=event.id, user_id=user.id, now=now)
            elif action == "release":
                queue.release(event_id=event.id, user_id=user.id, now=now)
            elif action == "buy":
                entry = queue_reads.latest_entry(event_id=event.id, user_id=user.id)
                if entry is not None:
                    queue.complete_purchase(entry_id=entry.id, user_id=user.id,
                                            payment_reference=f"p{entry.id}",
                                            amount_pence=100, now=now)
            elif action == "wait":
                now += timedelta(minutes=arg + 1)
                if arg % 2:  # sometimes the sweep runs; otherwise only lazy expiry applies
                    queue.expire_offers(now=now)
            elif action == "capacity":
                current = events.get_event(event.id)
                events.update_event(event_id=event.id, organizer_id=organizer.id, now=now,
                                    details=EventDetails(current.name, current.description,
                                                         current.location, current.starts_at,
                                                         current.price_pence, arg % 5 + 1))
        except ServiceError:
            pass  # a refusal is a legitimate outcome; it must change nothing
        assert_queue_invariants(event.id)
