"""Payments finish by themselves: a payment authorised but never settled (the worker that
was fulfilling it died, the webhook never came) is completed by ``settle_stale_payments``
exactly as the webhook would; and closing a checkout never undoes a payment.

Every test runs on SQLite and on PostgreSQL, with the local payment gateway.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from extensions import db
from models import CheckoutSession, LocalPayment, Ticket, WaitingListEntry
from services import payments, purchases, queue, webhooks
from tests.support.buying import open_checkout
from tests.support.factories import make_event, make_user
from tests.support.invariants import assert_queue_invariants

NOW = datetime.now(timezone.utc)
# Past the sweep's grace period (PAYMENT_SETTLE_AFTER_SECONDS, 2 minutes by default).
LATER = NOW + timedelta(minutes=3)


@pytest.fixture(autouse=True)
def clock():
    """Each test's clock starts when the test does: checkout sessions are stamped with the
    wall clock, so a NOW taken when the module was imported drifts behind in a long run.
    (Not through monkeypatch: some tests undo their own patches half way.)"""
    global NOW, LATER
    NOW = datetime.now(timezone.utc)
    LATER = NOW + timedelta(minutes=3)


@pytest.fixture
def app_db(any_db_app):
    return any_db_app


def authorised(session: CheckoutSession) -> str:
    """The buyer pressed Pay: the card is authorised and committed, then the worker died
    before the completion was delivered. Returns the payment's id."""
    payments.LocalGateway().authorize(session)
    db.session.expire_all()
    return LocalPayment.query.filter_by(checkout_session_id=session.id).one().id


def state_of(session_id: str) -> tuple:
    """(session status, its payment's status, the statuses of the buyer's tickets)."""
    db.session.expire_all()
    session = db.session.get(CheckoutSession, session_id)
    payment = LocalPayment.query.filter_by(checkout_session_id=session_id).one_or_none()
    tickets = Ticket.query.filter_by(user_id=session.user_id, event_id=session.event_id).all()
    return session.status, payment.status if payment else None, [t.status for t in tickets]


def test_an_authorised_payment_whose_webhook_never_ran_is_settled(app_db):
    event = make_event(total_tickets=1)
    session = open_checkout(event, make_user(), at=NOW)
    payment_id = authorised(session)

    # Within the grace period the webhook may still be on its way: left alone.
    assert purchases.settle_stale_payments(now=NOW) == 0
    assert state_of(session.id) == ("open", "requires_capture", [])

    assert purchases.settle_stale_payments(now=LATER) == 1
    assert state_of(session.id) == ("paid", "succeeded", ["valid"])
    ticket = Ticket.query.one()
    assert ticket.payment_reference == payment_id
    assert db.session.get(CheckoutSession, session.id).ticket_id == ticket.id

    assert purchases.settle_stale_payments(now=LATER + timedelta(minutes=1)) == 0
    assert state_of(session.id) == ("paid", "succeeded", ["valid"])
    assert assert_queue_invariants(event.id)["sold"] == 1


def test_a_valid_ticket_whose_capture_never_happened_is_captured(app_db):
    event = make_event(total_tickets=1)
    buyer = make_user()
    session = open_checkout(event, buyer, at=NOW)
    payment_id = authorised(session)
    # Fulfilment gave the seat, then stopped before capturing.
    ticket = queue.complete_purchase(entry_id=session.entry_id, user_id=buyer.id,
                                     payment_reference=payment_id,
                                     amount_pence=session.amount_pence, now=NOW)
    assert state_of(session.id) == ("open", "requires_capture", ["valid"])

    assert purchases.settle_stale_payments(now=LATER) == 1
    assert state_of(session.id) == ("paid", "succeeded", ["valid"])
    assert Ticket.query.one().id == ticket.id
    assert purchases.settle_stale_payments(now=LATER) == 0
    assert assert_queue_invariants(event.id)["sold"] == 1


def test_an_authorisation_whose_offer_passed_to_a_waiter_is_cancelled(app_db):
    event = make_event(total_tickets=1)
    ann, bob = make_user(), make_user()
    session = open_checkout(event, ann, at=NOW)
    authorised(session)
    queue.join_queue(event_id=event.id, user_id=bob.id, now=NOW)  # Bob waits behind Ann
    lapsed = NOW + timedelta(seconds=queue.offer_seconds() + 60)
    queue.expire_offers(now=lapsed)  # Ann's offer ends; the ticket is offered to Bob
    # Closing Ann's checkout leaves it open: her payment must be released, not forgotten.
    assert purchases.close_checkout(entry_id=session.entry_id) is False

    assert purchases.settle_stale_payments(now=lapsed + purchases.settle_after()) == 1
    assert state_of(session.id) == ("not_charged", "canceled", [])
    assert WaitingListEntry.query.filter_by(user_id=bob.id).one().status == "offered"
    assert purchases.settle_stale_payments(now=lapsed + 2 * purchases.settle_after()) == 0
    assert state_of(session.id) == ("not_charged", "canceled", [])
    assert assert_queue_invariants(event.id) == {"sold": 0, "offered": 1, "waiting": 0,
                                                 "entries": 2}


def test_a_failure_on_one_payment_is_logged_and_the_others_are_settled(app_db, monkeypatch,
                                                                      caplog):
    event = make_event(total_tickets=2)
    first = open_checkout(event, make_user(), at=NOW)
    second = open_checkout(event, make_user(), at=NOW)
    first_payment, _ = authorised(first), authorised(second)
    capture = payments.LocalGateway.capture

    def down_for_the_first(self, payment_intent_id):
        if payment_intent_id == first_payment:
            raise payments.PaymentError()
        capture(self, payment_intent_id)

    monkeypatch.setattr(payments.LocalGateway, "capture", down_for_the_first)
    with caplog.at_level(logging.WARNING):
        assert purchases.settle_stale_payments(now=LATER) == 1
    assert state_of(second.id) == ("paid", "succeeded", ["valid"])
    assert state_of(first.id) == ("open", "requires_capture", ["valid"])  # seat held, retried
    assert any(first.id in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    monkeypatch.undo()
    assert purchases.settle_stale_payments(now=LATER) == 1
    assert state_of(first.id) == ("paid", "succeeded", ["valid"])
    assert assert_queue_invariants(event.id)["sold"] == 2


def test_recorded_payments_come_first_and_the_work_per_run_is_bounded(app_db):
    event = make_event(total_tickets=2)
    browsing = open_checkout(event, make_user(), at=NOW)  # older, nobody has paid
    paid = open_checkout(event, make_user(), at=NOW)
    authorised(paid)
    assert purchases.settle_stale_payments(now=LATER, batch=1) == 1
    assert state_of(paid.id) == ("paid", "succeeded", ["valid"])
    # A session nobody paid for stays open while its offer lives.
    assert purchases.settle_stale_payments(now=LATER, batch=1) == 0
    assert state_of(browsing.id) == ("open", None, [])
    assert WaitingListEntry.query.filter_by(id=browsing.entry_id).one().status == "offered"


def test_closing_a_checkout_never_overwrites_a_payment_honoured_meanwhile(app_db, monkeypatch):
    event = make_event(total_tickets=1)
    buyer = make_user()
    session = open_checkout(event, buyer, at=NOW)
    assert db.session.get(CheckoutSession, session.id).status == "open"  # the closer's stale row
    gateway_answer = payments.LocalGateway.expire_checkout_session

    def while_the_buyer_pays(self, session_id):
        closable = gateway_answer(self, session_id)  # nothing paid yet, so closable
        with app_db.app_context():  # meanwhile the buyer presses Pay (another request)
            webhooks.pay_locally(session_id=session_id, user_id=buyer.id, now=NOW)
            db.session.remove()
        return closable

    monkeypatch.setattr(payments.LocalGateway, "expire_checkout_session", while_the_buyer_pays)
    assert purchases.close_checkout(entry_id=session.entry_id) is False
    assert state_of(session.id) == ("paid", "succeeded", ["valid"])
    assert assert_queue_invariants(event.id)["sold"] == 1


def test_a_checkout_with_a_recorded_payment_is_not_closed(app_db):
    event = make_event(total_tickets=1)
    session = open_checkout(event, make_user(), at=NOW)
    authorised(session)
    assert purchases.close_checkout(entry_id=session.entry_id) is False
    assert state_of(session.id) == ("open", "requires_capture", [])
