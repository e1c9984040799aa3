"""Every URL sent to Stripe is built on ``BASE_URL``: a request with a forged ``Host`` header
cannot make Stripe send a buyer or an organizer to someone else's server."""

from __future__ import annotations

import pytest

from tests.support.factories import make_event, make_user

BASE_URL = "https://tickets.example"
FORGED = {"Host": "evil.example"}


@pytest.fixture(autouse=True)
def public_address(app):
    app.config["BASE_URL"] = BASE_URL


def test_connect_onboarding_returns_to_the_configured_address(client, auth, stripe_server):
    auth.login(make_user())

    assert client.post("/seller/connect", headers=FORGED).status_code == 303

    sent = stripe_server.calls("/v1/account_links")[0].params
    assert sent["refresh_url"] == f"{BASE_URL}/seller/connect"
    assert sent["return_url"] == f"{BASE_URL}/seller/connect"


def test_checkout_returns_to_the_configured_address(
        client, auth, stripe_server, connected_organizer):
    event = make_event(connected_organizer, price_pence=1250)
    auth.login(make_user())
    client.post(f"/events/{event.id}/join", headers=FORGED)

    response = client.post(f"/events/{event.id}/checkout", headers=FORGED)

    assert response.status_code == 303
    sent = stripe_server.calls("/v1/checkout/sessions")[0].params
    assert sent["success_url"] == f"{BASE_URL}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert sent["cancel_url"] == f"{BASE_URL}/checkout/cancel?session_id={{CHECKOUT_SESSION_ID}}"
