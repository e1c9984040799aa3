"""The local page's Pay in one locked transaction (issue 12, point 4): the seat, the ledger's
captured payment, the paid session, the audit row and the emails' outbox rows commit
together; the cases it leaves to the webhook way (the last ticket, a lapsed offer, a second
press) still come out as they always did. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from extensions import db
from models import AuditEntry, CheckoutSession, LocalPayment, OutboxItem, Ticket, WebhookEvent
from services import outbox
from tests.support.factories import make_event, make_user
from tests.support.invariants import assert_queue_invariants
from tests.support.visitors import Visitor


@pytest.fixture(autouse=True)
def queue_not_run_inline(monkeypatch):
    """Follow-ups are handed over (as to Huey) but not run, so their rows stay to be read."""
    monkeypatch.setattr(outbox, "_dispatcher", lambda handover: None)


def open_payment_page(app, event) -> tuple[Visitor, str]:
    """A new buyer presses "Buy ticket" (held at once): them, and their payment page."""
    buyer = Visitor(app, make_user())
    joined = buyer.open(f"/events/{event.id}/join", "POST")
    assert joined.status_code == 303 and joined.headers["Location"].startswith("/pay/local/")
    return buyer, joined.headers["Location"]


def press_pay(buyer: Visitor, page: str):
    response = buyer.open(page, "POST", {"action": "pay"})
    session_id = page.rsplit("/", 1)[1]
    assert response.status_code == 303
    assert response.headers["Location"] == f"/checkout/success?session_id={session_id}"
    return session_id


def emails(kind: str) -> list[int]:
    return sorted(item.args[1] for item in OutboxItem.query.filter_by(kind="send_notification")
                  if item.args[0] == kind)


def test_every_sale_issues_one_ticket_captured_with_its_emails(any_db_app):
    event = make_event(total_tickets=3, price_pence=1250)
    pages = [open_payment_page(any_db_app, event) for _ in range(3)]

    tickets = []
    for buyer, page in pages:
        session_id = press_pay(buyer, page)
        db.session.expire_all()
        session = db.session.get(CheckoutSession, session_id)
        ticket = Ticket.query.filter_by(user_id=buyer.user.id).one()
        payment = LocalPayment.query.filter_by(checkout_session_id=session_id).one()
        assert (session.status, session.ticket_id, session.payment_intent_id) == (
            "paid", ticket.id, payment.id)
        assert (ticket.status, ticket.amount_pence, ticket.payment_reference) == (
            "valid", 1250, payment.id)
        assert (payment.status, payment.amount_pence) == ("succeeded", 1250)
        assert len(ticket.door_code) == 10
        assert "Payment complete" in buyer.open(
            f"/checkout/success?session_id={session_id}", "GET").get_data(as_text=True)
        tickets.append(ticket.id)

    assert emails("ticket_purchased") == tickets
    assert emails("first_sale") == tickets[:1]
    assert emails("sold_out") == [event.id]  # the last ticket went the webhook way
    purchases = AuditEntry.query.filter_by(event_id=event.id, action="purchased").all()
    assert sorted(row.ticket_id for row in purchases) == tickets
    assert all(row.reason.startswith("payment pi_local_") for row in purchases)
    assert WebhookEvent.query.count() == 1  # only the last one's completion was delivered
    counts = assert_queue_invariants(event.id)
    assert (counts["sold"], counts["offered"]) == (3, 0)


def test_a_second_press_lands_on_the_same_result_and_changes_nothing(any_db_app):
    event = make_event(total_tickets=3, price_pence=1250)
    buyer, page = open_payment_page(any_db_app, event)
    press_pay(buyer, page)
    db.session.expire_all()
    version = db.session.get(type(event), event.id).queue_version
    assert version == 3  # joined (offered), the offer ended, sold

    press_pay(buyer, page)

    db.session.expire_all()
    assert (Ticket.query.count(), LocalPayment.query.count()) == (1, 1)
    assert db.session.get(type(event), event.id).queue_version == version
    assert emails("ticket_purchased") == [Ticket.query.one().id]


def test_a_lapsed_offer_paid_while_someone_waits_is_not_charged(any_db_app, monkeypatch):
    """The offer ran out and its ticket passed on: the webhook way's refusal, as before."""
    event = make_event(total_tickets=2, price_pence=1250)
    buyer, page = open_payment_page(any_db_app, event)
    open_payment_page(any_db_app, event)  # the other ticket is held too
    waiter = Visitor(any_db_app, make_user())
    assert waiter.open(f"/events/{event.id}/join", "POST").status_code == 303

    import blueprints.payments
    from blueprints.helpers import now as real_now
    monkeypatch.setattr(blueprints.payments, "now", lambda: real_now() + timedelta(hours=1))
    session_id = press_pay(buyer, page)

    db.session.expire_all()
    assert db.session.get(CheckoutSession, session_id).status == "not_charged"
    assert Ticket.query.filter_by(user_id=buyer.user.id).count() == 0
    assert LocalPayment.query.one().status == "canceled"
    assert_queue_invariants(event.id)


def test_someone_elses_payment_page_is_404_and_pays_nothing(any_db_app):
    event = make_event(total_tickets=3, price_pence=1250)
    _, page = open_payment_page(any_db_app, event)
    stranger = Visitor(any_db_app, make_user())

    assert stranger.open(page, "POST", {"action": "pay"}).status_code == 404

    db.session.expire_all()
    assert (Ticket.query.count(), LocalPayment.query.count()) == (0, 0)
