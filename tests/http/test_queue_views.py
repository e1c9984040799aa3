"""Joining and leaving the waiting list through the event page: plain forms and HTMX."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from models import WaitingListEntry
from tests.support.factories import make_event, make_user
from tests.support.html import hook

HX = {"HX-Request": "true"}




@pytest.fixture
def event(app):
    return make_event(total_tickets=1)


@pytest.fixture
def ann(auth):
    user = make_user(name="Ann")
    auth.login(user)
    return user


def test_anonymous_visitors_are_asked_to_sign_in_to_join(client, event):
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "Sign in to get a ticket" in page
    assert hook(page, "queue-status")["status"] == "none"
    response = client.post(f"/events/{event.id}/join")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_joining_with_a_plain_form_goes_straight_to_pay_for_the_held_ticket(client, event, ann):
    """A free ticket: one click ("Buy ticket") holds it and opens the payment page (issue 15,
    point 6); the event page shows the hold meanwhile."""
    response = client.post(f"/events/{event.id}/join")
    assert response.status_code == 303
    assert "/pay/local/" in response.headers["Location"]
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    status = hook(page, "queue-status")
    assert status["status"] == "offered"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", status["offer-expires"])
    assert "A ticket is held for you until" in page
    availability = hook(page, "availability")
    assert (availability["remaining"], availability["reserved"], availability["sold-out"]) == (
        "0", "1", "true")


def test_joining_with_htmx_goes_to_the_payment_page_too(client, event, ann):
    response = client.post(f"/events/{event.id}/join", headers=HX)
    assert response.status_code == 200
    assert "/pay/local/" in response.headers["HX-Redirect"]
    assert hook(client.get(f"/events/{event.id}/status").get_data(as_text=True),
                "queue-status")["status"] == "offered"


def test_joining_a_line_with_htmx_returns_the_widget_to_swap(client, auth, event, ann):
    client.post(f"/events/{event.id}/join")
    auth.logout()
    auth.login(make_user())
    response = client.post(f"/events/{event.id}/join", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="event-status"')
    assert "<html" not in html
    assert hook(html, "queue-status")["status"] == "waiting"
    assert "HX-Request" in response.headers["Vary"]


def test_a_second_buyer_waits_and_sees_their_position(client, auth, event, ann):
    client.post(f"/events/{event.id}/join")
    auth.logout()
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    html = client.get(f"/events/{event.id}/status").get_data(as_text=True)
    # Second in line behind a fresh offer: the front of the line asks again every 2 s.
    status = hook(html, "queue-status")
    assert re.fullmatch(r"[0-9a-f]{16}", status.pop("entry-ref"))
    assert status == {"status": "waiting", "position": "2", "poll-seconds": "2"}
    assert "You are number 2 in line" in html


@pytest.mark.parametrize("sale", ["open", "lobby"])
def test_a_join_that_waits_sets_no_cookie_and_the_page_says_where_you_are(
        app, client, auth, ann, sale):
    """The join's 303 re-signs no session (no flash message): the event page's own status
    says what happened, in the line or in the lobby."""
    starts = ({"sale_starts_at": datetime.now(timezone.utc) + timedelta(hours=2)}
              if sale == "lobby" else {})
    event = make_event(total_tickets=1, **starts)
    if sale == "open":
        client.post(f"/events/{event.id}/join")  # Ann holds the one ticket
        auth.logout()
        auth.login(make_user())

    response = client.post(f"/events/{event.id}/join")

    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{event.id}"
    assert "Set-Cookie" not in response.headers
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    if sale == "lobby":
        assert hook(page, "queue-status")["status"] == "lobby"
        assert "You're in the lobby" in page
    else:
        assert hook(page, "queue-status")["status"] == "waiting"
        assert "You are number 2 in line" in page


def test_releasing_an_offer_passes_it_on(client, auth, event, ann):
    client.post(f"/events/{event.id}/join")
    auth.logout()
    bob = make_user()
    auth.login(bob)
    client.post(f"/events/{event.id}/join")
    auth.logout()
    auth.login(ann)
    response = client.post(f"/events/{event.id}/release", headers=HX)
    assert hook(response.get_data(as_text=True), "queue-status")["status"] == "expired"
    auth.logout()
    auth.login(bob)
    assert hook(client.get(f"/events/{event.id}/status").get_data(as_text=True),
                "queue-status")["status"] == "offered"


@pytest.mark.parametrize("headers, marker", [({}, "<html"), (HX, 'id="event-status"')])
def test_joining_twice_shows_why_and_changes_nothing(client, event, ann, headers, marker):
    client.post(f"/events/{event.id}/join")
    response = client.post(f"/events/{event.id}/join", headers=headers)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert marker in html
    assert "already in the waiting list" in html
    assert WaitingListEntry.query.count() == 1


def test_releasing_without_a_place_is_refused(client, event, ann):
    response = client.post(f"/events/{event.id}/release")
    assert response.status_code == 409
    assert "not in the waiting list" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/events/999", "/events/999/status"])
def test_unknown_events_are_404(client, path):
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("action", ["join", "release"])
def test_actions_on_unknown_events_are_404(client, ann, action):
    assert client.post(f"/events/999/{action}").status_code == 404


LIMIT_MESSAGE = ("You've joined the waiting list too many times. "
                 "Please wait 30 minutes before trying again.")


@pytest.mark.app_config(RATELIMIT_ENABLED=True)
@pytest.mark.parametrize("headers, marker", [({}, "<html"), (HX, 'id="event-status"')])
def test_the_fourth_join_in_half_an_hour_is_rate_limited(client, event, ann, headers, marker):
    for _ in range(3):
        assert client.post(f"/events/{event.id}/join").status_code == 303
        assert client.post(f"/events/{event.id}/release").status_code == 303
    response = client.post(f"/events/{event.id}/join", headers=headers)
    html = response.get_data(as_text=True)
    assert response.status_code == 429
    assert LIMIT_MESSAGE in html.replace("&#39;", "'")
    assert marker in html
    assert int(response.headers["Retry-After"]) > 29 * 60
    assert WaitingListEntry.query.filter_by(status="waiting").count() == 0
    assert WaitingListEntry.query.filter_by(status="offered").count() == 0


@pytest.mark.app_config(RATELIMIT_ENABLED=True)
def test_refused_joins_do_not_use_up_the_limit(client, event, ann):
    client.post(f"/events/{event.id}/join")
    for _ in range(5):
        assert client.post(f"/events/{event.id}/join").status_code == 409
    client.post(f"/events/{event.id}/release")
    assert client.post(f"/events/{event.id}/join").status_code == 303


@pytest.mark.app_config(RATELIMIT_ENABLED=True)
def test_the_join_limit_is_per_user_per_event(client, auth, event, ann):
    """Churning one event's line is limited (3 joins per 30 minutes by default); buying for
    other events is never held back by it, nor is anyone else."""
    for _ in range(3):
        assert client.post(f"/events/{event.id}/join").status_code == 303
        client.post(f"/events/{event.id}/release")
    limited = client.post(f"/events/{event.id}/join")
    assert limited.status_code == 429
    assert "too many times" in limited.get_data(as_text=True)
    for _ in range(3):  # other events: a ticket each, whatever happened on the first
        other = make_event(total_tickets=40)
        assert client.post(f"/events/{other.id}/join").status_code == 303
        assert 'data-status="offered"' in client.get(f"/events/{other.id}").get_data(
            as_text=True)
    auth.logout()
    auth.login(make_user())
    assert client.post(f"/events/{event.id}/join").status_code == 303


def test_an_unchanged_status_costs_a_304_with_no_body(client, event, ann):
    first = client.get(f"/events/{event.id}/status")
    etag = first.headers["ETag"]
    again = client.get(f"/events/{event.id}/status", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    client.post(f"/events/{event.id}/join")
    changed = client.get(f"/events/{event.id}/status", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert hook(changed.get_data(as_text=True), "queue-status")["status"] == "offered"
    assert changed.headers["ETag"] != etag


def test_someone_else_joining_changes_the_status_etag(client, auth, event, ann):
    etag = client.get(f"/events/{event.id}/status").headers["ETag"]
    auth.logout()
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    auth.logout()
    auth.login(ann)
    response = client.get(f"/events/{event.id}/status", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert hook(response.get_data(as_text=True), "availability")["remaining"] == "0"


def test_reading_the_status_passes_on_an_offer_that_ran_out(client, auth, event, ann, monkeypatch):
    from datetime import timedelta

    import blueprints.events
    from blueprints.helpers import now as real_now

    client.post(f"/events/{event.id}/join")
    auth.logout()
    bob = make_user()
    auth.login(bob)
    client.post(f"/events/{event.id}/join")
    # No worker runs: half an hour later, Bob's own poll finds Ann's offer over and his own.
    monkeypatch.setattr(blueprints.events, "now", lambda: real_now() + timedelta(minutes=31))
    html = client.get(f"/events/{event.id}/status").get_data(as_text=True)
    assert hook(html, "queue-status")["status"] == "offered"
    assert WaitingListEntry.query.filter_by(user_id=ann.id).one().end_reason == "offer_expired"


@pytest.mark.app_config(RATELIMIT_ENABLED=True, QUEUE_JOIN_LIMIT="3 per 2 seconds")
def test_joining_is_allowed_again_once_the_window_has_passed(client, event, ann):
    import time

    for _ in range(3):
        client.post(f"/events/{event.id}/join")
        client.post(f"/events/{event.id}/release")
    refused = client.post(f"/events/{event.id}/join")
    assert refused.status_code == 429
    time.sleep(int(refused.headers["Retry-After"]) + 1)
    assert client.post(f"/events/{event.id}/join").status_code == 303
