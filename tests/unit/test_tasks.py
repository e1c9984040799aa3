"""Huey tasks: an offer's expiry is scheduled at its deadline; the sweep is a thin wrapper."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import tasks
from extensions import db
from models import WaitingListEntry
from services import outbox, queue
from tests.support.factories import make_event, make_user


def scheduled_expiries():
    return [(t.args, t.eta) for t in tasks.huey.scheduled()
            if t.name.endswith("expire_offer_at_deadline")]


def test_each_offer_schedules_its_own_expiry_at_the_deadline(app):
    tasks.huey.flush()
    event = make_event(total_tickets=2)
    now = datetime.now(timezone.utc)
    first = queue.join_queue(event_id=event.id, user_id=make_user().id, now=now)
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=now)
    waiting = queue.join_queue(event_id=event.id, user_id=make_user().id, now=now)
    assert waiting.status == "waiting"
    expiries = dict(scheduled_expiries())
    assert len(expiries) == 2
    # Huey keeps etas as naive UTC.
    assert expiries[(first.id,)] == first.offer_expires_at.replace(tzinfo=None)
    # The waiter's offer, made when the first is released, schedules one more.
    queue.release(event_id=event.id, user_id=first.user_id, now=now)
    assert (waiting.id,) in [args for args, _ in scheduled_expiries()]


def test_an_offer_already_overdue_when_scheduled_is_expired_by_its_task(app):
    event = make_event(total_tickets=1)
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    # Huey runs a task whose eta has passed at once (immediate mode here, the consumer live).
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=past)
    assert db.session.get(WaitingListEntry, entry.id).end_reason == "offer_expired"
    assert tasks.expire_offer_at_deadline.call_local(entry.id) is False  # nothing left to do


def test_the_minute_sweep_expires_offers_whose_task_was_lost(app, monkeypatch):
    monkeypatch.setattr(outbox, "_dispatcher", lambda handover: None)  # handed over, then lost
    event = make_event(total_tickets=1)
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    lost = queue.join_queue(event_id=event.id, user_id=make_user().id, now=past)
    waiter = queue.join_queue(event_id=event.id, user_id=make_user().id, now=past)
    assert tasks.sweep_expired_offers.call_local() == 1
    assert db.session.get(WaitingListEntry, lost.id).end_reason == "offer_expired"
    # The waiter was offered a fresh 30 minutes from the sweep, not from the old deadline.
    passed_on = db.session.get(WaitingListEntry, waiter.id)
    assert passed_on.status == "offered"
    assert passed_on.offer_expires_at > datetime.now(timezone.utc) + timedelta(minutes=29)
