"""Signed webhook deliveries that can't apply: a body we can't read is answered 400 and
changes nothing; a valid event about something that isn't ours is recorded and answered
200 "ignored". Never a 500, nothing logged as an error. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import pytest

from extensions import db
from models import CheckoutSession, LocalPayment, Ticket, WebhookEvent
from services import payments
from tests.support.buying import open_checkout
from tests.support.factories import make_event, make_user


@pytest.fixture
def authorised_session(any_db_app) -> CheckoutSession:
    """An open checkout whose card is authorised: a completion would issue a ticket."""
    session = open_checkout(make_event(total_tickets=1), make_user())
    payments.LocalGateway().authorize(session)
    return session


def deliver(app, body: bytes | str):
    """POST ``body`` to the webhook, correctly signed with the app's webhook secret."""
    if isinstance(body, str):
        signature = payments.sign_webhook(body, secret=payments.webhook_secret())
    else:  # bytes that are not text: sign them as Stripe signs the bytes it sends
        timestamp = int(time.time())
        mac = hmac.new(payments.webhook_secret().encode(), f"{timestamp}.".encode() + body,
                       hashlib.sha256)
        signature = f"t={timestamp},v1={mac.hexdigest()}"
    return app.test_client().post("/webhooks/stripe", data=body, headers={
        "Stripe-Signature": signature, "Content-Type": "application/json"})


def event(kind: str, obj, **extra) -> str:
    return json.dumps({"id": "evt_1", "object": "event", "type": kind,
                       "data": {"object": obj}, **extra})


def completion(session, **changes) -> dict:
    return {"id": session.id, "object": "checkout.session", "status": "complete",
            "payment_intent": session.payment_intent_id, **changes}


MALFORMED = {
    "not JSON": lambda s: "{",
    "not UTF-8": lambda s: b'{"id": "evt_\xff"}',
    "a list": lambda s: "[1, 2]",
    "a string": lambda s: '"checkout.session.completed"',
    "null": lambda s: "null",
    "a huge number": lambda s: "1e400",
    "an empty object": lambda s: "{}",
    "an id that is a number": lambda s: json.dumps(
        {"id": 7, "type": "checkout.session.completed", "data": {"object": completion(s)}}),
    "an id with a NUL": lambda s: json.dumps(
        {"id": "evt_\u0000", "type": "checkout.session.completed",
         "data": {"object": completion(s)}}),
    "a 100 KB id": lambda s: json.dumps(
        {"id": "evt_" + "x" * 100_000, "type": "checkout.session.completed",
         "data": {"object": completion(s)}}),
    "no data": lambda s: json.dumps({"id": "evt_1", "type": "checkout.session.completed"}),
    "data a list": lambda s: json.dumps(
        {"id": "evt_1", "type": "checkout.session.completed", "data": [completion(s)]}),
    "no object": lambda s: json.dumps({"id": "evt_1", "type": "checkout.session.completed",
                                       "data": {}}),
    "object a string": lambda s: event("checkout.session.completed", s.id),
    "session id missing": lambda s: event("checkout.session.completed",
                                          {"payment_intent": s.payment_intent_id}),
    "session id with a NUL": lambda s: event("checkout.session.completed",
                                             completion(s, id=s.id + "\u0000")),
    "payment_intent null": lambda s: event("checkout.session.completed",
                                           completion(s, payment_intent=None)),
    "payment_intent a number": lambda s: event("checkout.session.completed",
                                               completion(s, payment_intent=12)),
    "payment_intent an object": lambda s: event("checkout.session.completed",
                                                completion(s, payment_intent={"id": 1})),
    "expired session id a list": lambda s: event("checkout.session.expired", {"id": [s.id]}),
    "cancelled intent without id": lambda s: event("payment_intent.canceled", {}),
    "refunded not a boolean": lambda s: event(
        "charge.refunded", {"id": "ch_1", "payment_intent": s.payment_intent_id,
                            "refunded": "yes"}),
    "account requirements a list": lambda s: event(
        "account.updated", {"id": "acct_1", "requirements": ["external_account"]}),
}


@pytest.mark.parametrize("how", MALFORMED)
def test_a_signed_body_that_cant_be_read_is_refused_and_changes_nothing(
        any_db_app, authorised_session, how, caplog):
    with caplog.at_level(logging.WARNING):
        response = deliver(any_db_app, MALFORMED[how](authorised_session))
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    db.session.expire_all()
    assert WebhookEvent.query.count() == 0
    assert Ticket.query.count() == 0
    assert CheckoutSession.query.one().status == "open"
    assert LocalPayment.query.one().status == "requires_capture"
    # The real completion still works afterwards.
    assert deliver(any_db_app, event("checkout.session.completed",
                                     completion(authorised_session))).status_code == 200
    assert CheckoutSession.query.one().status == "paid"


NOT_OURS = {
    "completion of an unknown session": ("checkout.session.completed",
                                         {"id": "cs_unknown", "payment_intent": "pi_unknown"}),
    "expiry of an unknown session": ("checkout.session.expired", {"id": "cs_unknown"}),
    "cancelled unknown payment": ("payment_intent.canceled", {"id": "pi_unknown"}),
    "refund of an unknown payment": ("charge.refunded", {"id": "ch_1", "payment_intent": "pi_x",
                                                         "refunded": True}),
    "refund of a charge outside Checkout": ("charge.refunded", {"id": "ch_1",
                                                                "payment_intent": None,
                                                                "refunded": True}),
    "update of an unknown account": ("account.updated", {"id": "acct_unknown"}),
}


@pytest.mark.parametrize("how", NOT_OURS)
def test_a_valid_event_about_something_not_ours_is_recorded_and_ignored(
        any_db_app, authorised_session, how, caplog):
    kind, obj = NOT_OURS[how]
    with caplog.at_level(logging.WARNING):
        response = deliver(any_db_app, event(kind, obj))
        again = deliver(any_db_app, event(kind, obj))
    assert (response.status_code, response.json["outcome"]) == (200, "ignored")
    assert (again.status_code, again.json["outcome"]) == (200, "duplicate")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    db.session.expire_all()
    assert db.session.get(WebhookEvent, "evt_1").type == kind
    assert Ticket.query.count() == 0
    assert CheckoutSession.query.one().status == "open"
