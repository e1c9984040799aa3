"""The Stripe gateway against a Stripe-compatible server (``support/fake_stripe.py``): what
Ticket Hub sends Stripe, and Stripe-signed webhooks through ``/webhooks/stripe``."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

from extensions import db
from models import CheckoutSession, Ticket, User, WebhookEvent
from services import purchases, queue
from services.tickets import token_for
from tests.http.stripe.conftest import webhook
from tests.support.factories import make_event, make_user
from tests.support.invariants import assert_queue_invariants


def test_a_paid_event_waits_for_stripe_connect_onboarding(client, auth, stripe_server):
    organizer = make_user()
    auth.login(organizer)
    form = {"name": "Gig", "description": "", "location": "Leeds",
            "event_date": "2031-05-01T19:00", "total_tickets": "10"}
    refused = client.post("/seller/events/new", data={**form, "price": "12.50"})
    assert refused.status_code == 422
    assert "Set up payouts with Stripe" in refused.get_data(as_text=True)
    assert client.post("/seller/events/new", data={**form, "price": "0"}).status_code == 303

    assert client.post("/seller/connect").status_code == 303
    account = stripe_server.calls("/v1/accounts")[0].params
    assert (account["type"], account["country"], account["email"]) == (
        "express", "GB", organizer.email)
    page = client.get("/seller/connect").get_data(as_text=True)
    assert 'data-charges-enabled="false"' in page and "external_account" in page

    account_id = db.session.get(User, organizer.id).stripe_connect_id
    enabled = stripe_server.enable_charges(account_id)
    assert webhook(client, "account.updated", enabled).status_code == 200
    assert client.post("/seller/events/new", data={**form, "price": "12.50"}).status_code == 303


def test_checkout_asks_stripe_for_a_manual_capture_destination_charge(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=2, price_pence=1250)
    buyer = make_user()
    auth.login(buyer)
    client.post(f"/events/{event.id}/join")
    before = datetime.now(timezone.utc).timestamp()
    response = client.post(f"/events/{event.id}/checkout")
    session = CheckoutSession.query.one()
    assert response.headers["Location"] == session.url
    call = stripe_server.calls("/v1/checkout/sessions")[0]
    sent = call.params
    assert sent["payment_intent_data[capture_method]"] == "manual"
    assert sent["payment_intent_data[application_fee_amount]"] == "13"  # 1% of £12.50, half up
    destination = sent["payment_intent_data[transfer_data][destination]"]
    assert destination == connected_organizer.stripe_connect_id
    assert sent["line_items[0][price_data][currency]"] == "gbp"
    assert sent["line_items[0][price_data][unit_amount]"] == "1250"
    assert sent["metadata[entry_id]"] == str(session.entry_id)
    assert sent["metadata[user_id]"] == str(buyer.id)
    assert int(sent["expires_at"]) >= before + 30 * 60
    assert "{CHECKOUT_SESSION_ID}" in sent["success_url"]
    assert call.headers["Idempotency-Key"] == f"checkout-entry-{session.entry_id}"
    assert call.headers["Authorization"] == "Bearer sk_test_contract"


def buy_through_stripe(client, auth, stripe_server, event, buyer) -> CheckoutSession:
    auth.login(buyer)
    client.post(f"/events/{event.id}/join")
    client.post(f"/events/{event.id}/checkout")
    session = CheckoutSession.query.filter_by(user_id=buyer.id).one()
    stripe_server.authorize(session.id)
    return session


def sold_ticket(client, auth, stripe_server, organizer, *, price_pence: int = 1250):
    """One ticket of a one-ticket event, paid at Stripe and fulfilled by the signed
    webhook: (event, ticket). Leaves the buyer signed out."""
    event = make_event(organizer, total_tickets=1, price_pence=price_pence)
    session = buy_through_stripe(client, auth, stripe_server, event, make_user())
    webhook(client, "checkout.session.completed", stripe_server.sessions[session.id])
    auth.logout()
    return event, Ticket.query.one()


def test_a_signed_completion_issues_the_ticket_then_captures(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    buyer = make_user()
    session = buy_through_stripe(client, auth, stripe_server, event, buyer)
    obj = stripe_server.sessions[session.id]
    assert webhook(client, "checkout.session.completed", obj).status_code == 200
    ticket = Ticket.query.one()
    assert (ticket.user_id, ticket.payment_reference, ticket.amount_pence) == (
        buyer.id, obj["payment_intent"], 1250)
    assert stripe_server.intents[obj["payment_intent"]]["status"] == "succeeded"
    assert len(stripe_server.calls("/capture")) == 1
    # Stripe retries the same delivery: nothing more happens.
    assert webhook(client, "checkout.session.completed", obj).status_code == 200
    assert len(stripe_server.calls("/capture")) == 1
    assert Ticket.query.count() == 1
    assert_queue_invariants(event.id)


def test_an_offer_released_before_payment_expires_its_session_and_a_late_payment_is_not_taken(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    buyer, other = make_user(), make_user()
    session = buy_through_stripe(client, auth, stripe_server, event, buyer)
    auth.logout()
    auth.login(other)
    client.post(f"/events/{event.id}/join")
    auth.logout()
    auth.login(buyer)
    client.post(f"/events/{event.id}/release")  # the offer passes to the other buyer
    # Our task tried to expire the session, but the buyer had already paid at Stripe.
    assert len(stripe_server.calls(f"/v1/checkout/sessions/{session.id}/expire")) == 1
    obj = stripe_server.sessions[session.id]
    webhook(client, "checkout.session.completed", obj)
    assert stripe_server.intents[obj["payment_intent"]]["status"] == "canceled"
    assert CheckoutSession.query.one().status == "not_charged"
    assert Ticket.query.count() == 0
    assert_queue_invariants(event.id)


def test_an_open_session_is_expired_when_the_offer_ends(client, auth, stripe_server,
                                                        connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    buyer = make_user()
    auth.login(buyer)
    client.post(f"/events/{event.id}/join")
    client.post(f"/events/{event.id}/checkout")
    client.post(f"/events/{event.id}/release")
    session = CheckoutSession.query.one()
    assert session.status == "expired"
    assert stripe_server.sessions[session.id]["status"] == "expired"


def test_when_the_authorisation_is_gone_no_ticket_is_issued(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    session = buy_through_stripe(client, auth, stripe_server, event, make_user())
    obj = stripe_server.sessions[session.id]
    stripe_server.intents[obj["payment_intent"]]["status"] = "canceled"  # auth lapsed at Stripe
    stripe_server.fail_next["/capture"] = (400, "invalid_request_error")
    webhook(client, "checkout.session.completed", obj)
    assert CheckoutSession.query.one().status == "not_charged"
    assert Ticket.query.one().status == "cancelled"
    assert_queue_invariants(event.id)


def test_refunds_reverse_the_transfer_and_the_fee(client, auth, stripe_server, connected_organizer):
    _, ticket = sold_ticket(client, auth, stripe_server, connected_organizer)
    auth.login(connected_organizer)
    client.post(f"/seller/tickets/{ticket.id}/refund")
    call = stripe_server.calls("/v1/refunds")[0]
    assert call.params["payment_intent"] == ticket.payment_reference
    assert call.params["reverse_transfer"] == "true"
    assert call.params["refund_application_fee"] == "true"
    assert call.headers["Idempotency-Key"] == f"refund-ticket-{ticket.id}"
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).refund_reference.startswith("re_")


def test_a_refund_made_in_the_stripe_dashboard_frees_the_seat(
        client, auth, stripe_server, connected_organizer):
    event, ticket = sold_ticket(client, auth, stripe_server, connected_organizer)
    charge = {"id": "ch_1", "object": "charge", "payment_intent": ticket.payment_reference,
              "refunded": True, "amount_refunded": 1250}
    assert webhook(client, "charge.refunded", charge).status_code == 200
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "refunded"
    assert assert_queue_invariants(event.id)["sold"] == 0


def test_stripe_being_down_at_checkout_is_a_clear_message(client, auth, stripe_server,
                                                          connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    auth.login(make_user())
    # "Buy ticket" holds the ticket and goes on to pay at once: Stripe fails that step ...
    stripe_server.fail_next["/v1/checkout/sessions"] = (500, "api_error")
    response = client.post(f"/events/{event.id}/join")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "payment service isn&#39;t answering" in page
    assert 'data-status="offered"' in page  # ... the ticket stays held, "Buy now" on screen
    assert CheckoutSession.query.count() == 0
    # ... and so does "Buy now" while Stripe is still down.
    stripe_server.fail_next["/v1/checkout/sessions"] = (500, "api_error")
    response = client.post(f"/events/{event.id}/checkout")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "payment service isn&#39;t answering" in page
    assert CheckoutSession.query.count() == 0


def test_cancelling_50_sold_tickets_survives_a_failure_half_way_and_refunds_each_once(
        client, auth, stripe_server, connected_organizer):
    import tasks

    event = make_event(connected_organizer, total_tickets=50, price_pence=1000)
    buyers = [make_user() for _ in range(50)]
    for buyer in buyers:
        session = buy_through_stripe(client, auth, stripe_server, event, buyer)
        webhook(client, "checkout.session.completed", stripe_server.sessions[session.id])
        auth.logout()
    assert Ticket.query.filter_by(status="valid").count() == 50
    stripe_server.fail_on_call["/v1/refunds"] = 25  # Stripe fails the 25th refund
    auth.login(connected_organizer)
    assert client.post(f"/seller/events/{event.id}/cancel").status_code == 303
    assert Ticket.query.filter_by(status="refunded").count() == 50
    owed = Ticket.query.filter(Ticket.refund_settled_at.is_(None)).count()
    assert owed == 1
    page = client.get(f"/seller/events/{event.id}").get_data(as_text=True)
    assert 'data-sent="49" data-total="50"' in page
    # The resuming sweep runs (twice, as after a crash and restart): each ticket is refunded
    # exactly once at Stripe, thanks to one idempotency key per ticket.
    tasks.resume_refunds.call_local()
    tasks.resume_refunds.call_local()
    db.session.expire_all()
    assert Ticket.query.filter(Ticket.refund_settled_at.is_(None)).count() == 0
    refunded = [r["payment_intent"] for r in stripe_server.refunds]
    assert len(refunded) == 50 and len(set(refunded)) == 50


def test_a_used_ticket_is_refunded_too_when_the_event_is_cancelled(
        client, auth, stripe_server, connected_organizer):
    event, ticket = sold_ticket(client, auth, stripe_server, connected_organizer, price_pence=1000)
    ticket.status = "used"
    db.session.commit()
    auth.login(connected_organizer)
    client.post(f"/seller/events/{event.id}/cancel")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "refunded"
    assert [r["payment_intent"] for r in stripe_server.refunds] == [ticket.payment_reference]


def test_a_session_expiring_after_it_completed_changes_nothing(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    session = buy_through_stripe(client, auth, stripe_server, event, make_user())
    obj = stripe_server.sessions[session.id]
    webhook(client, "checkout.session.completed", obj)
    webhook(client, "checkout.session.expired", dict(obj, status="expired"))
    assert CheckoutSession.query.one().status == "paid"
    assert Ticket.query.one().status == "valid"


def test_a_completion_arriving_after_the_expiry_event_still_follows_the_late_payment_rule(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    session = buy_through_stripe(client, auth, stripe_server, event, make_user())
    obj = stripe_server.sessions[session.id]
    webhook(client, "checkout.session.expired", dict(obj, status="expired"))  # out of order
    webhook(client, "checkout.session.completed", obj)
    # The offer is still live (30 minutes), so the seat is given and the money taken.
    assert CheckoutSession.query.one().status == "paid"
    assert stripe_server.intents[obj["payment_intent"]]["status"] == "succeeded"


def test_an_event_cancelled_during_checkout_takes_no_money(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    session = buy_through_stripe(client, auth, stripe_server, event, make_user())
    auth.logout()
    auth.login(connected_organizer)
    client.post(f"/seller/events/{event.id}/cancel")
    obj = stripe_server.sessions[session.id]
    webhook(client, "checkout.session.completed", obj)
    assert stripe_server.intents[obj["payment_intent"]]["status"] == "canceled"
    assert CheckoutSession.query.one().status == "not_charged"
    assert Ticket.query.count() == 0


def test_nobody_sees_another_organizers_connect_account(client, auth, stripe_server,
                                                        connected_organizer):
    other = make_user()
    auth.login(other)
    page = client.get("/seller/connect").get_data(as_text=True)
    assert connected_organizer.stripe_connect_id not in page
    assert "Set up payouts with Stripe" in page
    assert not stripe_server.calls(f"/v1/accounts/{connected_organizer.stripe_connect_id}/")


# ------------------------------------------------------------ payments that finish by themselves


def test_a_payment_whose_webhook_never_came_is_settled_by_the_sweep(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    session = buy_through_stripe(client, auth, stripe_server, event, make_user())
    intent = stripe_server.sessions[session.id]["payment_intent"]  # paid; no webhook arrives
    later = datetime.now(timezone.utc) + purchases.settle_after() + timedelta(minutes=1)
    assert purchases.settle_stale_payments(now=later) == 1
    assert stripe_server.calls(f"/v1/checkout/sessions/{session.id}")[0].method == "GET"
    assert stripe_server.intents[intent]["status"] == "succeeded"
    db.session.expire_all()
    assert CheckoutSession.query.one().status == "paid"
    assert Ticket.query.one().payment_reference == intent
    assert purchases.settle_stale_payments(now=later) == 0
    assert len(stripe_server.calls("/capture")) == 1
    assert_queue_invariants(event.id)


def test_an_offer_ending_as_the_buyer_pays_leaves_the_session_open_for_fulfilment(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    session = buy_through_stripe(client, auth, stripe_server, event, make_user())
    client.post(f"/events/{event.id}/release")  # the offer ends just as the payment completes
    # Stripe refuses to expire a complete session, so it is not marked expired...
    assert len(stripe_server.calls(f"/v1/checkout/sessions/{session.id}/expire")) == 1
    db.session.expire_all()
    assert CheckoutSession.query.one().status == "open"
    # ...and with no webhook, the sweep applies the late-payment rule: the seat is still
    # free and nobody waits for it, so the buyer keeps it.
    later = datetime.now(timezone.utc) + purchases.settle_after() + timedelta(minutes=1)
    assert purchases.settle_stale_payments(now=later) == 1
    db.session.expire_all()
    assert CheckoutSession.query.one().status == "paid"
    assert Ticket.query.one().status == "valid"
    assert_queue_invariants(event.id)


def test_an_authorisation_cancelled_before_capture_voids_its_ticket(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, total_tickets=1, price_pence=1250)
    buyer = make_user()
    session = buy_through_stripe(client, auth, stripe_server, event, buyer)
    intent = stripe_server.sessions[session.id]["payment_intent"]
    # Fulfilment gave the seat, then stopped before capturing; later the authorisation
    # lapses at Stripe and Stripe says so.
    session.payment_intent_id = intent
    db.session.commit()
    queue.complete_purchase(entry_id=session.entry_id, user_id=buyer.id, payment_reference=intent,
                            amount_pence=1250, now=datetime.now(timezone.utc))
    stripe_server.intents[intent]["status"] = "canceled"
    cancelled = webhook(client, "payment_intent.canceled", stripe_server.intents[intent])
    assert cancelled.status_code == 200
    db.session.expire_all()
    assert CheckoutSession.query.one().status == "not_charged"
    assert Ticket.query.one().status == "cancelled"
    assert assert_queue_invariants(event.id)["sold"] == 0


# ------------------------------------------------------------ refunds made in Stripe's dashboard


def test_a_dashboard_refund_of_a_ticket_used_at_the_door_is_recorded_and_shown(
        client, auth, stripe_server, connected_organizer, caplog):
    event, ticket = sold_ticket(client, auth, stripe_server, connected_organizer)
    auth.login(connected_organizer)
    client.post(f"/seller/events/{event.id}/checkin", data={"token": token_for(ticket)})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "used"

    charge = {"id": "ch_1", "object": "charge", "payment_intent": ticket.payment_reference,
              "refunded": True, "amount_refunded": 1250}
    with caplog.at_level(logging.WARNING):
        first = webhook(client, "charge.refunded", charge, event_id="evt_refund")
        again = webhook(client, "charge.refunded", charge, event_id="evt_refund")  # retried
    assert (first.status_code, first.json["outcome"]) == (200, "handled")
    assert (again.status_code, again.json["outcome"]) == (200, "duplicate")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    db.session.expire_all()
    refunded = db.session.get(Ticket, ticket.id)
    assert refunded.status == "refunded" and refunded.refund_settled_at is not None
    assert db.session.get(WebhookEvent, "evt_refund").type == "charge.refunded"
    assert stripe_server.refunds == []  # the money went back at Stripe; we send nothing more
    page = client.get(f"/seller/events/{event.id}").get_data(as_text=True)
    figures = re.search(r'<dl class="facts" id="figures">(.*?)</dl>', page, re.S).group(1)
    # Still sold and still checked in (that happened), now refunded: nothing earned.
    assert "<dt>Sold</dt><dd>1</dd>" in figures and "<dt>Refunded</dt><dd>1</dd>" in figures
    assert "<dt>Checked in</dt><dd>1</dd>" in figures
    assert "<dt>Refunds</dt><dd>−£12.50</dd>" in figures
    assert "<dt>Net</dt><dd>£0.00</dd>" in figures
    assert 'data-sent="1" data-total="1"' in page
    assert "<td>refunded</td>" in page
    assert assert_queue_invariants(event.id)["sold"] == 0
