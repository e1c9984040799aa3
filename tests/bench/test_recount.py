"""What the HTTP benchmark prints after a rush (``bench.http_rush.recount``): the event's
queue recounted from its rows, whether its invariants hold, and the payments made. On SQLite
and PostgreSQL, as the benchmark runs on both."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import update

from bench.http_rush import recount
from extensions import db
from models import Event
from services import queue, webhooks
from tests.support.buying import open_checkout
from tests.support.factories import make_event, make_user

NOW = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


def test_a_rush_is_recounted_from_its_rows(any_db_app):
    event = make_event(now=NOW, total_tickets=2)
    payer, holder, *waiters = (make_user() for _ in range(4))
    session = open_checkout(event, payer, at=NOW)
    webhooks.pay_locally(session_id=session.id, user_id=payer.id, now=NOW)
    for user in (holder, *waiters):
        queue.join_queue(event_id=event.id, user_id=user.id, now=NOW)

    assert recount(event.id) == {
        "capacity": 2, "entries": 4, "sold": 1, "offered": 1, "waiting": 2, "lobby": 0,
        "oversold": 0,
        "duplicate_entries": 0, "duplicate_tickets": 0, "invariants": "hold",
        "paid_sessions": 1,
    }


def test_a_broken_invariant_is_named_beside_figures_counted_from_the_rows(any_db_app):
    event = make_event(now=NOW, total_tickets=1)
    for user in (make_user() for _ in range(3)):
        queue.join_queue(event_id=event.id, user_id=user.id, now=NOW)
    db.session.execute(update(Event).where(Event.id == event.id).values(waiting_count=5))
    db.session.commit()

    counts = recount(event.id)

    assert (counts["offered"], counts["waiting"]) == (1, 2)  # the rows, not the counter
    assert counts["invariants"] == ("FAILED: counters (sold, offered, waiting, lobby) "
                                    "(0, 1, 5, 0) but the rows say (0, 1, 2, 0)")
