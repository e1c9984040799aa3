"""Property-based, on SQLite and PostgreSQL: for any lobby (people joining and leaving before
the on-sale) and any capacity, the draw gives places that are exactly 1..N in the order the
contract's rule gives, the first min(capacity, N) are offered, and every invariant holds
through whatever follows (joins behind, releases, purchases)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extensions import db
from models import Event
from services import draws, queue, queue_reads
from tests.support.factories import make_event, make_user, utc
from tests.support.invariants import assert_queue_invariants
from tests.support.workers import run_action

T0 = utc(2030, 6, 1, 8)
ON_SALE = T0 + timedelta(hours=1)
USERS = 12

before = st.lists(st.tuples(st.sampled_from(["join"] * 4 + ["leave"]), st.integers(0, 99)),
                  max_size=25)
after = st.lists(st.tuples(st.sampled_from(["join", "release", "buy"]), st.integers(0, 99)),
                 max_size=12)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(before=before, after=after, capacity=st.integers(1, 6))
def test_any_lobby_draws_into_a_fair_contiguous_line(any_db_app, before, after, capacity):
    event = make_event(now=T0, total_tickets=capacity, starts_at=T0 + timedelta(days=2),
                       sale_starts_at=ON_SALE)
    users = [make_user() for _ in range(USERS)]
    for n, (action, arg) in enumerate(before, start=1):
        act(action, event.id, users[arg % USERS].id, T0 + timedelta(seconds=n))
    lobby = {e.ref for e in (queue_reads.latest_entry(event_id=event.id, user_id=u.id)
                             for u in users) if e is not None and e.in_lobby}

    queue.draw_lobby(event_id=event.id, now=ON_SALE)
    db.session.rollback()
    drawn = db.session.get(Event, event.id)
    record = draws.draw_record(drawn)
    assert sorted(place for place, _ in record.places) == list(range(1, len(lobby) + 1))
    assert {ref for _, ref in record.places} == lobby
    assert [ref for _, ref in record.places] == draws.draw_order(drawn.draw_seed, event.id, lobby)
    assert drawn.offered_count == min(capacity, len(lobby))
    assert_queue_invariants(event.id)

    for n, (action, arg) in enumerate(after, start=1):
        act(action, event.id, users[arg % USERS].id, ON_SALE + timedelta(seconds=n))


def act(action: str, event_id: int, user_id: int, now) -> None:
    """One step by one person (a refusal is a legitimate outcome that must change nothing),
    then every invariant."""
    run_action("release" if action == "leave" else action, event_id, user_id, now)
    assert_queue_invariants(event_id)
