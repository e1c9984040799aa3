"""The audit trail: every transition of an entry or ticket, with time, actor and reason."""

from __future__ import annotations

from datetime import timedelta

from services import events, purchases, queue, queue_reads
from tests.support.factories import make_event, make_user, utc

T0 = utc(2030, 1, 1, 12)


def trail(event):
    return [(a.action, a.subject_id, a.actor_id) for a in reversed(events.audit_trail(event.id))]


def test_each_transition_is_recorded_with_who_did_it(any_db_app):
    organizer = make_user()
    event = make_event(organizer, now=T0, total_tickets=1, starts_at=T0 + timedelta(days=3))
    ann, bob = make_user(), make_user()
    queue.join_queue(event_id=event.id, user_id=ann.id, now=T0)
    queue.join_queue(event_id=event.id, user_id=bob.id, now=T0 + timedelta(minutes=1))
    queue.release(event_id=event.id, user_id=ann.id, now=T0 + timedelta(minutes=2))
    entry = queue_reads.latest_entry(event_id=event.id, user_id=bob.id)
    ticket = queue.complete_purchase(entry_id=entry.id, user_id=bob.id, payment_reference="pi_1",
                                     amount_pence=1250, now=T0 + timedelta(minutes=3))
    purchases.refund_ticket(ticket_id=ticket.id, organizer_id=organizer.id,
                            now=T0 + timedelta(minutes=4))
    assert trail(event) == [
        ("joined", ann.id, ann.id),
        ("offered", ann.id, None),
        ("joined", bob.id, bob.id),
        ("released", ann.id, ann.id),
        ("offered", bob.id, None),
        ("purchased", bob.id, bob.id),
        ("sold_out", None, None),  # the organizer is emailed, once
        ("refunded", bob.id, organizer.id),
    ]
    newest = events.audit_trail(event.id)[0]
    assert newest.ticket_id == ticket.id and newest.created_at == T0 + timedelta(minutes=4)


def test_expiry_and_cancellation_are_recorded_as_the_system_and_the_organizer(any_db_app):
    organizer = make_user()
    event = make_event(organizer, now=T0, total_tickets=1, starts_at=T0 + timedelta(days=3))
    ann, bob = make_user(), make_user()
    queue.join_queue(event_id=event.id, user_id=ann.id, now=T0)
    queue.join_queue(event_id=event.id, user_id=bob.id, now=T0)
    queue.expire_offers(now=T0 + timedelta(minutes=30))
    events.cancel_event(event_id=event.id, organizer_id=organizer.id,
                        now=T0 + timedelta(minutes=31))
    actions = [a for a, _, _ in trail(event)]
    assert actions == ["joined", "offered", "joined", "expired", "offered", "event_cancelled"]
    assert trail(event)[-1] == ("event_cancelled", bob.id, organizer.id)
    assert trail(event)[3] == ("expired", ann.id, None)
