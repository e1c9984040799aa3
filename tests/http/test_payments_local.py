"""Buying through the local payment page (PAYMENTS=local, the embedded default): the same
signed-webhook fulfilment as Stripe, manual capture, and no money without a seat."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

import blueprints.events
import blueprints.payments
from blueprints.helpers import now as real_now
from extensions import db
from models import CheckoutSession, LocalPayment, Ticket, WaitingListEntry, WebhookEvent
from services import payments
from tests.support.factories import make_event, make_user
from tests.support.invariants import assert_queue_invariants


@pytest.fixture
def event(app):
    return make_event(total_tickets=1, price_pence=1250)


@pytest.fixture
def ann(auth):
    user = make_user(name="Ann")
    auth.login(user)
    return user


def join_and_checkout(client, event) -> str:
    """Join (offered at once) and press "Buy now": returns the local payment page's path."""
    assert client.post(f"/events/{event.id}/join").status_code == 303
    response = client.post(f"/events/{event.id}/checkout")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/pay/local/cs_local_")
    return response.headers["Location"]


def pay(client, page: str, action: str = "pay"):
    return client.post(page, data={"action": action})


def clock(monkeypatch, delta: timedelta):
    def moved():
        return real_now() + delta

    for module in (blueprints.events, blueprints.payments):
        monkeypatch.setattr(module, "now", moved)


def test_paying_on_the_local_page_issues_the_ticket_and_captures(client, event, ann):
    page = join_and_checkout(client, event)
    shown = client.get(page).get_data(as_text=True)
    assert "test payment page" in shown and "Pay £12.50" in shown
    response = pay(client, page)
    assert response.status_code == 303
    result = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Payment complete" in result
    ticket = Ticket.query.one()
    assert (ticket.user_id, ticket.status, ticket.amount_pence) == (ann.id, "valid", 1250)
    assert db.session.get(LocalPayment, ticket.payment_reference).status == "succeeded"
    assert CheckoutSession.query.one().status == "paid"
    assert f"/tickets/{ticket.id}" in result
    assert assert_queue_invariants(event.id)["sold"] == 1


def test_buy_now_twice_reuses_one_session(client, event, ann):
    page = join_and_checkout(client, event)
    again = client.post(f"/events/{event.id}/checkout")
    assert again.headers["Location"] == page
    assert CheckoutSession.query.count() == 1


def test_a_declined_card_takes_nothing_and_keeps_the_offer(client, event, ann):
    page = join_and_checkout(client, event)
    response = pay(client, page, "decline")
    assert response.status_code == 402
    assert "declined" in response.get_data(as_text=True)
    assert Ticket.query.count() == 0
    assert LocalPayment.query.count() == 0
    assert WaitingListEntry.query.one().status == "offered"


def test_cancel_returns_to_the_event_with_the_offer_still_held(client, event, ann):
    page = join_and_checkout(client, event)
    response = pay(client, page, "cancel")
    assert response.status_code == 303
    back = client.get(response.headers["Location"])
    assert back.headers["Location"].endswith(f"/events/{event.id}")
    assert WaitingListEntry.query.one().status == "offered"


def test_checkout_needs_a_live_offer(client, event, ann):
    response = client.post(f"/events/{event.id}/checkout")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "don&#39;t hold a ticket offer" in page
    assert CheckoutSession.query.count() == 0


def test_paying_after_the_offer_passed_to_someone_else_charges_nothing(
        client, auth, event, ann, monkeypatch):
    page = join_and_checkout(client, event)
    auth.logout()
    auth.login(make_user(name="Bob"))
    client.post(f"/events/{event.id}/join")  # Bob waits behind Ann
    auth.logout()
    auth.login(ann)
    clock(monkeypatch, timedelta(minutes=31))  # Ann's offer is over; it passes to Bob
    response = pay(client, page)
    result = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "you were not charged" in result
    assert Ticket.query.count() == 0
    assert LocalPayment.query.one().status == "canceled"  # authorisation released
    assert CheckoutSession.query.one().status == "not_charged"
    assert assert_queue_invariants(event.id)["offered"] == 1  # Bob's


def test_a_late_payment_keeps_its_seat_when_the_ticket_is_still_free(client, event, ann,
                                                                     monkeypatch):
    page = join_and_checkout(client, event)
    clock(monkeypatch, timedelta(minutes=31))  # expired, but nobody else wants the ticket
    pay(client, page)
    assert Ticket.query.one().user_id == ann.id
    assert CheckoutSession.query.one().status == "paid"
    assert assert_queue_invariants(event.id)["sold"] == 1


def test_a_free_event_issues_the_ticket_without_payment(client, app, ann):
    free = make_event(total_tickets=3, price_pence=0)
    response = client.post(f"/events/{free.id}/join")  # one click: no payment to make
    ticket = Ticket.query.one()
    assert response.headers["Location"] == f"/tickets/{ticket.id}"
    assert ticket.amount_pence == 0


def test_only_the_buyer_can_see_their_payment(client, auth, event, ann):
    page = join_and_checkout(client, event)
    session_id = page.rsplit("/", 1)[1]
    auth.logout()
    auth.login(make_user())
    assert client.get(page).status_code == 404
    assert client.get(f"/checkout/success?session_id={session_id}").status_code == 404
    assert client.get("/checkout/success?session_id=cs_nope").status_code == 404


def test_the_success_page_polls_until_the_payment_is_confirmed(client, event, ann):
    page = join_and_checkout(client, event)
    session_id = page.rsplit("/", 1)[1]
    waiting = client.get(f"/checkout/success?session_id={session_id}",
                         headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-status="open"' in waiting and "hx-trigger" in waiting
    assert "Confirming your payment" in waiting
    pay(client, page)
    done = client.get(f"/checkout/success?session_id={session_id}",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-status="paid"' in done and "hx-trigger" not in done


# ------------------------------------------------------------------ the webhook itself


def completed_event(session: CheckoutSession, event_id: str = "evt_1") -> dict:
    event = payments.LocalGateway().authorize(session)
    event["id"] = event_id
    return event


def post_webhook(client, event: dict, *, secret=None, tamper=False, timestamp=None):
    payload = json.dumps(event)
    signature = payments.sign_webhook(payload, secret=secret or payments.webhook_secret(),
                                      timestamp=timestamp)
    if tamper:
        payload = payload.replace("1250", "1")
    return client.post("/webhooks/stripe", data=payload,
                       headers={"Stripe-Signature": signature, "Content-Type": "application/json"})


@pytest.mark.parametrize("how", ["tampered", "wrong secret", "stale", "missing"])
def test_a_badly_signed_webhook_is_refused_and_changes_nothing(client, event, ann, how):
    join_and_checkout(client, event)
    delivery = completed_event(CheckoutSession.query.one())
    if how == "missing":
        response = client.post("/webhooks/stripe", data=json.dumps(delivery))
    else:
        response = post_webhook(
            client, delivery, tamper=how == "tampered",
            secret="whsec_other" if how == "wrong secret" else None,
            timestamp=int(time.time()) - 3600 if how == "stale" else None)
    assert response.status_code == 400
    assert Ticket.query.count() == 0
    assert WebhookEvent.query.count() == 0
    assert CheckoutSession.query.one().status == "open"


def test_redelivered_and_duplicate_completions_issue_one_ticket(client, event, ann):
    join_and_checkout(client, event)
    session = CheckoutSession.query.one()
    first = completed_event(session, "evt_a")
    assert post_webhook(client, first).status_code == 200
    assert post_webhook(client, first).json["outcome"] == "duplicate"
    second = dict(first, id="evt_b")  # Stripe sends a second event for the same session
    assert post_webhook(client, second).status_code == 200
    assert Ticket.query.count() == 1
    assert WebhookEvent.query.count() == 2


def test_unknown_event_types_are_acknowledged(client):
    response = post_webhook(client, {"id": "evt_x", "type": "customer.created",
                                     "data": {"object": {"id": "cus_1"}}})
    assert response.status_code == 200 and response.json["outcome"] == "ignored"


def test_a_gateway_outage_answers_503_so_stripe_retries(client, event, ann, monkeypatch):
    join_and_checkout(client, event)
    delivery = completed_event(CheckoutSession.query.one())

    def down(self, payment_intent_id):
        raise payments.PaymentError()

    monkeypatch.setattr(payments.LocalGateway, "capture", down)
    assert post_webhook(client, delivery).status_code == 503
    assert WebhookEvent.query.count() == 0
    assert CheckoutSession.query.one().status == "open"
    monkeypatch.undo()
    assert post_webhook(client, delivery).status_code == 200  # the retry finishes the job
    assert CheckoutSession.query.one().status == "paid"
    assert Ticket.query.count() == 1


# ------------------------------------------------------------------ refunds


def bought_ticket(client, auth, event, buyer) -> Ticket:
    page = join_and_checkout(client, event)
    pay(client, page)
    return Ticket.query.filter_by(user_id=buyer.id).one()


def test_the_organizer_refunds_a_ticket_and_the_seat_passes_on(client, auth, event, ann):
    ticket = bought_ticket(client, auth, event, ann)
    auth.logout()
    bob = make_user(name="Bob")
    auth.login(bob)
    client.post(f"/events/{event.id}/join")
    auth.logout()
    auth.login(event.organizer)
    response = client.post(f"/seller/tickets/{ticket.id}/refund")
    assert response.status_code == 303
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.status == "refunded" and ticket.refund_settled_at is not None
    assert db.session.get(LocalPayment, ticket.payment_reference).refunded_pence == 1250
    assert WaitingListEntry.query.filter_by(user_id=bob.id).one().status == "offered"
    assert_queue_invariants(event.id)


def test_only_the_organizer_can_refund(client, auth, event, ann):
    ticket = bought_ticket(client, auth, event, ann)
    assert client.post(f"/seller/tickets/{ticket.id}/refund").status_code == 404
    assert db.session.get(Ticket, ticket.id).status == "valid"


def test_cancelling_an_event_refunds_every_ticket_and_closes_the_queue(client, auth, app, ann):
    event = make_event(total_tickets=1, price_pence=1250)
    ticket = bought_ticket(client, auth, event, ann)
    auth.logout()
    bob = make_user()
    auth.login(bob)
    client.post(f"/events/{event.id}/join")
    auth.logout()
    auth.login(event.organizer)
    assert client.post(f"/seller/events/{event.id}/cancel").status_code == 303
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.status == "refunded" and ticket.refund_settled_at is not None
    assert WaitingListEntry.query.filter_by(user_id=bob.id).one().end_reason == "event_cancelled"
    assert_queue_invariants(event.id)


def test_a_captured_payment_without_a_seat_is_refunded_automatically(client, auth, event, ann,
                                                                    monkeypatch):
    join_and_checkout(client, event)
    session = CheckoutSession.query.one()
    delivery = completed_event(session)
    payment = LocalPayment.query.one()
    payment.status = "succeeded"  # captured already (e.g. automatic capture at Stripe)
    db.session.commit()
    auth.logout()
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")  # someone waits for Ann's ticket
    clock(monkeypatch, timedelta(minutes=31))  # the offer is over; the seat went to the waiter
    post_webhook(client, delivery)

    assert CheckoutSession.query.one().status == "refunded"
    assert LocalPayment.query.one().refunded_pence == 1250
    assert Ticket.query.count() == 0


def test_only_the_offer_holder_can_start_its_checkout(client, auth, event, ann):
    client.post(f"/events/{event.id}/join")  # Ann's hold, and her payment page
    auth.logout()
    other = make_user()
    auth.login(other)
    response = client.post(f"/events/{event.id}/checkout")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/events/{event.id}")
    assert CheckoutSession.query.filter_by(user_id=other.id).count() == 0


def test_cancelling_asks_for_confirmation_first(client, auth, event):
    auth.login(event.organizer)
    page = client.get(f"/seller/events/{event.id}").get_data(as_text=True)
    assert f'href="/seller/events/{event.id}/cancel"' in page
    confirm = client.get(f"/seller/events/{event.id}/cancel").get_data(as_text=True)
    assert "can't be undone" in confirm and "Yes, cancel the event" in confirm
    assert db.session.get(type(event), event.id).cancelled_at is None
