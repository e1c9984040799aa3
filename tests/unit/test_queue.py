"""The waiting-list state machine, transition by transition, with a moving clock.

Every test runs on SQLite and on PostgreSQL (``any_db_app``) and ends by recounting the
queue from its rows (``assert_queue_invariants``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from extensions import db
from models import EndReason, EntryStatus, Event, WaitingListEntry
from services import Forbidden, NotFound, events, queue, queue_reads
from services.events import EventDetails, EventError
from tests.support.factories import make_event, make_user, utc
from tests.support.invariants import assert_queue_invariants

T0 = utc(2030, 1, 1, 12, 0)
OFFER = timedelta(seconds=1800)


@pytest.fixture
def app_db(any_db_app):
    return any_db_app


def event_with(capacity: int, **fields) -> Event:
    return make_event(now=T0, total_tickets=capacity, starts_at=T0 + timedelta(days=7), **fields)


def join(event, user, at=T0):
    return queue.join_queue(event_id=event.id, user_id=user.id, now=at)


def status_of(event, user, at=T0):
    return queue_reads.queue_status(event_id=event.id, user_id=user.id, now=at)


def buy(entry, at=T0, ref=None):
    return queue.complete_purchase(
        entry_id=entry.id, user_id=entry.user_id, payment_reference=ref or f"pay-{entry.id}",
        amount_pence=1250, now=at,
    )


def reload(event) -> Event:
    db.session.rollback()
    return db.session.get(Event, event.id)


# ------------------------------------------------------------------ join


def test_first_buyer_is_offered_a_ticket_at_once_with_a_30_minute_hold(app_db):
    event, ann = event_with(2), make_user()
    entry = join(event, ann)
    assert entry.status == EntryStatus.OFFERED
    assert entry.offer_expires_at == T0 + OFFER
    status = status_of(event, ann)
    assert (status.status, status.position, status.offer_expires_at) == ("offered", 1, T0 + OFFER)
    a = queue_reads.availability(reload(event), now=T0)
    assert (a.total, a.sold, a.reserved, a.remaining, a.sold_out) == (2, 0, 1, 1, False)
    assert_queue_invariants(event.id)


def test_buyers_beyond_capacity_wait_in_join_order(app_db):
    event = event_with(1)
    ann, bob, cat = make_user(), make_user(), make_user()
    assert join(event, ann).status == EntryStatus.OFFERED
    assert join(event, bob).status == EntryStatus.WAITING
    assert join(event, cat).status == EntryStatus.WAITING
    assert status_of(event, bob).position == 2
    assert status_of(event, cat).position == 3
    assert status_of(event, cat).people_ahead == 2
    assert queue_reads.availability(reload(event), now=T0).sold_out
    assert_queue_invariants(event.id)


@pytest.mark.parametrize("setup, message", [
    ("twice", "already in the waiting list"),
    ("ticket", "already have a ticket"),
    ("organizer", "organize this event"),
    ("cancelled", "cancelled"),
    ("past", "already taken place"),
])
def test_join_refusals_change_nothing(app_db, setup, message):
    organizer, ann = make_user(), make_user()
    event = event_with(3, organizer=organizer)
    user = ann
    if setup == "twice":
        join(event, ann)
    elif setup == "ticket":
        buy(join(event, ann))
    elif setup == "organizer":
        user = organizer
    elif setup == "cancelled":
        events.cancel_event(event_id=event.id, organizer_id=organizer.id, now=T0)
    before = assert_queue_invariants(event.id)
    at = event.starts_at + timedelta(minutes=1) if setup == "past" else T0
    with pytest.raises(queue.QueueError, match=message):
        join(event, user, at=at)
    assert assert_queue_invariants(event.id) == before


def test_join_unknown_event_is_not_found(app_db):
    with pytest.raises(NotFound):
        queue.join_queue(event_id=999, user_id=make_user().id, now=T0)


def test_a_new_buyer_never_skips_an_earlier_waiter_when_an_offer_lapses(app_db):
    event = event_with(1)
    ann, bob, cat = make_user(), make_user(), make_user()
    join(event, ann)
    join(event, bob)
    later = T0 + OFFER + timedelta(seconds=1)
    # Ann's offer lapsed and no worker ran: Cat's join must pass the ticket to Bob first.
    assert join(event, cat, at=later).status == EntryStatus.WAITING
    assert status_of(event, bob, at=later).status == "offered"
    assert status_of(event, ann, at=later).status == "expired"
    assert status_of(event, cat, at=later).position == 2
    assert_queue_invariants(event.id)


# ------------------------------------------------------------------ lazy expiry on reads


def test_an_offer_past_its_deadline_reads_as_expired_before_any_worker_runs(app_db):
    event, ann = event_with(1), make_user()
    join(event, ann)
    deadline = T0 + OFFER
    assert status_of(event, ann, at=deadline - timedelta(seconds=1)).status == "offered"
    assert status_of(event, ann, at=deadline).status == "expired"
    a = queue_reads.availability(reload(event), now=deadline)
    assert (a.reserved, a.remaining) == (0, 1)
    # Nothing was written by reading.
    assert db.session.get(WaitingListEntry, 1).status == EntryStatus.OFFERED


# ------------------------------------------------------------------ release


def test_declining_an_offer_passes_it_to_the_next_waiter(app_db):
    event = event_with(1)
    ann, bob = make_user(), make_user()
    join(event, ann)
    join(event, bob)
    at = T0 + timedelta(minutes=5)
    entry = queue.release(event_id=event.id, user_id=ann.id, now=at)
    assert (entry.status, entry.end_reason) == (EntryStatus.EXPIRED, EndReason.DECLINED)
    bob_status = status_of(event, bob, at=at)
    assert bob_status.status == "offered"
    assert bob_status.offer_expires_at == at + OFFER
    assert status_of(event, ann, at=at).end_reason == EndReason.DECLINED
    assert_queue_invariants(event.id)


def test_leaving_the_queue_moves_everyone_behind_up(app_db):
    event = event_with(1)
    ann, bob, cat = make_user(), make_user(), make_user()
    for user in (ann, bob, cat):
        join(event, user)
    entry = queue.release(event_id=event.id, user_id=bob.id, now=T0)
    assert entry.end_reason == EndReason.LEFT
    assert status_of(event, cat).position == 2
    assert status_of(event, ann).status == "offered"  # leaving frees no ticket
    assert_queue_invariants(event.id)


def test_release_without_an_active_entry_is_refused(app_db):
    event = event_with(1)
    with pytest.raises(queue.QueueError, match="not in the waiting list"):
        queue.release(event_id=event.id, user_id=make_user().id, now=T0)


def test_a_user_can_rejoin_after_releasing(app_db):
    event, ann = event_with(1), make_user()
    join(event, ann)
    queue.release(event_id=event.id, user_id=ann.id, now=T0)
    assert join(event, ann, at=T0 + timedelta(seconds=1)).status == EntryStatus.OFFERED
    assert_queue_invariants(event.id)


# ------------------------------------------------------------------ expiry by the worker


def test_expire_offer_task_does_nothing_before_the_deadline_and_expires_after(app_db):
    event = event_with(1)
    ann, bob = make_user(), make_user()
    entry = join(event, ann)
    join(event, bob)
    assert queue.expire_offer(entry_id=entry.id, now=T0 + OFFER - timedelta(seconds=1)) is False
    assert status_of(event, ann, at=T0 + OFFER - timedelta(seconds=1)).status == "offered"
    assert queue.expire_offer(entry_id=entry.id, now=T0 + OFFER) is True
    assert queue.expire_offer(entry_id=entry.id, now=T0 + OFFER) is False  # idempotent
    db.session.rollback()
    assert db.session.get(WaitingListEntry, entry.id).end_reason == EndReason.OFFER_EXPIRED
    assert status_of(event, bob, at=T0 + OFFER).status == "offered"
    assert_queue_invariants(event.id)


def test_the_sweep_expires_every_overdue_offer_and_offers_next_in_order(app_db):
    first, second = event_with(2), event_with(1)
    users = [make_user() for _ in range(5)]
    for user in users:
        join(first, user)
    join(second, users[0])
    join(second, users[1])
    assert queue.expire_offers(now=T0 + OFFER - timedelta(seconds=1)) == 0
    assert queue.expire_offers(now=T0 + OFFER) == 3
    at = T0 + OFFER
    assert [status_of(first, u, at=at).status for u in users] == [
        "expired", "expired", "offered", "offered", "waiting"]
    assert [status_of(second, u, at=at).status for u in users[:2]] == ["expired", "offered"]
    assert status_of(first, users[4], at=at).position == 3
    assert_queue_invariants(first.id)
    assert_queue_invariants(second.id)


# ------------------------------------------------------------------ purchase


def test_purchase_turns_a_live_offer_into_a_ticket(app_db):
    event = event_with(1)
    ann, bob = make_user(), make_user()
    entry = join(event, ann)
    join(event, bob)
    ticket = buy(entry, at=T0 + timedelta(minutes=10))
    assert (ticket.status, ticket.amount_pence, ticket.user_id) == ("valid", 1250, ann.id)
    assert status_of(event, ann).status == "purchased"
    assert status_of(event, bob).status == "waiting"
    a = queue_reads.availability(reload(event), now=T0)
    assert (a.sold, a.reserved, a.remaining) == (1, 0, 0)
    assert_queue_invariants(event.id)


def test_purchase_happens_exactly_once_per_payment_reference(app_db):
    event, ann = event_with(2), make_user()
    entry = join(event, ann)
    first = buy(entry, ref="pi_123")
    again = buy(entry, ref="pi_123")
    assert first.id == again.id
    assert assert_queue_invariants(event.id)["sold"] == 1


def test_purchase_of_someone_elses_offer_is_forbidden(app_db):
    event, ann, eve = event_with(1), make_user(), make_user()
    entry = join(event, ann)
    with pytest.raises(Forbidden):
        queue.complete_purchase(entry_id=entry.id, user_id=eve.id, payment_reference="x",
                                amount_pence=1250, now=T0)
    assert assert_queue_invariants(event.id)["sold"] == 0


@pytest.mark.parametrize("how", ["expired", "released"])
def test_purchase_after_the_offer_ended_is_refused(app_db, how):
    event, ann = event_with(1), make_user()
    entry = join(event, ann)
    at = T0 + timedelta(minutes=1)
    if how == "expired":
        at = T0 + OFFER
    else:
        queue.release(event_id=event.id, user_id=ann.id, now=at)
    with pytest.raises(queue.OfferNotLive):
        buy(entry, at=at)
    assert assert_queue_invariants(event.id)["sold"] == 0


# ------------------------------------------------------------------ capacity and cancellation


def _details(event, **changes) -> EventDetails:
    fields = dict(name=event.name, description=event.description, location=event.location,
                  starts_at=event.starts_at, price_pence=event.price_pence,
                  total_tickets=event.total_tickets)
    fields.update(changes)
    return EventDetails(**fields)


def test_raising_capacity_offers_the_new_tickets_to_waiters_in_order(app_db):
    organizer = make_user()
    event = event_with(1, organizer=organizer)
    users = [make_user() for _ in range(4)]
    for user in users:
        join(event, user)
    events.update_event(event_id=event.id, organizer_id=organizer.id,
                        details=_details(event, total_tickets=3), now=T0)
    statuses = [status_of(event, u).status for u in users]
    assert statuses == ["offered", "offered", "offered", "waiting"]
    assert status_of(event, users[3]).position == 4
    assert_queue_invariants(event.id)


def test_capacity_cannot_drop_below_sold_plus_held_offers(app_db):
    organizer = make_user()
    event = event_with(3, organizer=organizer)
    buy(join(event, make_user()))
    join(event, make_user())
    with pytest.raises(EventError, match="can't be below 2"):
        events.update_event(event_id=event.id, organizer_id=organizer.id,
                            details=_details(event, total_tickets=1), now=T0)
    assert reload(event).total_tickets == 3


def test_cancelling_an_event_ends_its_queue(app_db):
    organizer = make_user()
    event = event_with(1, organizer=organizer)
    ann, bob = make_user(), make_user()
    join(event, ann)
    join(event, bob)
    events.cancel_event(event_id=event.id, organizer_id=organizer.id, now=T0)
    for user in (ann, bob):
        status = status_of(event, user)
        assert (status.status, status.end_reason) == ("expired", EndReason.EVENT_CANCELLED)
    assert queue_reads.availability(reload(event), now=T0).remaining == 0
    assert_queue_invariants(event.id)
