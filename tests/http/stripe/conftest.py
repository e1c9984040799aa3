"""The Stripe tests' app, on a Stripe-compatible contract server (``support/fake_stripe.py``),
and the helpers they share: signed webhooks and an organizer whose Connect account can take
charges."""

from __future__ import annotations

import json
import time

import pytest

from extensions import db
from models import User
from services import payments
from tests.support.apps import build_test_config, make_app
from tests.support.factories import make_user
from tests.support.fake_stripe import start_fake_stripe

SECRET = "whsec_test_contract"


@pytest.fixture
def stripe_server():
    state, server = start_fake_stripe()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(tmp_path, stripe_server):
    app = make_app(build_test_config(
        tmp_path, PAYMENTS="stripe", STRIPE_SECRET_KEY="sk_test_contract",
        STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_API_BASE=stripe_server.url,
        STRIPE_MAX_NETWORK_RETRIES=0, PLATFORM_FEE_PERCENT=1.0,
    ))
    with app.app_context():
        yield app
        db.session.remove()


def webhook(client, kind: str, obj: dict, event_id: str | None = None):
    payload = json.dumps({"id": event_id or f"evt_{time.time_ns()}", "object": "event",
                          "type": kind, "data": {"object": obj}})
    signature = payments.sign_webhook(payload, secret=SECRET)
    return client.post("/webhooks/stripe", data=payload,
                       headers={"Stripe-Signature": signature, "Content-Type": "application/json"})


@pytest.fixture
def connected_organizer(client, auth, stripe_server):
    """An organizer who went through Connect onboarding and can take charges."""
    organizer = make_user(name="Olga")
    auth.login(organizer)
    response = client.post("/seller/connect")
    db.session.expire_all()
    account_id = db.session.get(User, organizer.id).stripe_connect_id
    assert response.headers["Location"] == f"https://connect.stripe.test/setup/{account_id}"
    webhook(client, "account.updated", stripe_server.enable_charges(account_id))
    auth.logout()
    return db.session.get(User, organizer.id)
