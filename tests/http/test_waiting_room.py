"""The waiting room over HTTP: an unchanged poll is a bare 304 that writes no cookie, the
remaining tickets are one public fragment anyone may cache, and everything per-user stays
private."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services import queue, queue_reads
from tests.support.factories import make_event, make_user
from tests.support.html import hook


@pytest.fixture
def event(app):
    return make_event(total_tickets=1)


@pytest.fixture
def waiter(client, auth, event):
    """Bob, second in line behind Ann's offer, signed in on ``client``."""
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=datetime.now(timezone.utc))
    bob = make_user(name="Bob")
    auth.login(bob)
    client.post(f"/events/{event.id}/join")
    return bob


def test_an_unchanged_poll_is_a_304_that_sets_no_cookie(client, event, waiter):
    first = client.get(f"/events/{event.id}/status")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = client.get(f"/events/{event.id}/status",
                       headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.data == b""
    assert "Set-Cookie" not in again.headers
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Cache-Control"] == "private, no-cache"


def test_a_change_anywhere_in_the_line_answers_the_poll_with_the_new_widget(client, event, waiter):
    first = client.get(f"/events/{event.id}/status")
    ahead = queue_reads.queue_status(event_id=event.id, user_id=waiter.id,
                                     now=datetime.now(timezone.utc))
    assert ahead.position == 2
    holder = queue_reads.latest_entry(event_id=event.id, user_id=waiter.id - 1)
    queue.release(event_id=event.id, user_id=holder.user_id, now=datetime.now(timezone.utc))
    changed = client.get(f"/events/{event.id}/status",
                         headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert hook(changed.get_data(as_text=True), "queue-status")["status"] == "offered"


def test_the_widget_states_its_cadence_and_uses_it(client, event, waiter):
    html = client.get(f"/events/{event.id}/status").get_data(as_text=True)
    seconds = hook(html, "queue-status")["poll-seconds"]
    assert f'hx-trigger="every {seconds}s, visible-again"' in html
    assert f"checks your place again in about {seconds} seconds" in html


def test_the_remaining_tickets_are_one_public_fragment_for_everyone(client, auth, event):
    anonymous = client.get(f"/events/{event.id}/availability")
    assert anonymous.status_code == 200
    assert anonymous.headers["Cache-Control"] == "public, max-age=2"
    assert "Set-Cookie" not in anonymous.headers
    assert "Cookie" not in anonymous.headers.get("Vary", "")
    auth.login(make_user())
    signed_in = client.get(f"/events/{event.id}/availability")
    assert signed_in.data == anonymous.data  # identical for every viewer
    assert hook(anonymous.get_data(as_text=True), "availability") == {
        "remaining": "1", "total": "1", "sold": "0", "reserved": "0", "sold-out": "false"}
    same = client.get(f"/events/{event.id}/availability",
                      headers={"If-None-Match": anonymous.headers["ETag"]})
    assert same.status_code == 304


def test_a_visitor_not_signed_in_polls_only_the_shared_fragment(client, event):
    html = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert f'hx-get="/events/{event.id}/availability"' in html
    assert f'hx-get="/events/{event.id}/status"' not in html
    assert "data-poll-seconds" not in html  # no place in line to watch


def test_unknown_events_have_no_fragments(client):
    assert client.get("/events/999/status").status_code == 404
    assert client.get("/events/999/availability").status_code == 404


@pytest.mark.app_config(RATELIMIT_ENABLED=True, STATUS_POLL_LIMIT="3 per minute")
def test_polling_too_fast_keeps_the_widget_and_says_when_to_ask_again(client, auth, event,
                                                                     waiter):
    path = f"/events/{event.id}/status"
    etag = None
    for _ in range(3):  # unchanged or not, every poll counts
        answer = client.get(path, headers={"HX-Request": "true",
                                           **({"If-None-Match": etag} if etag else {})})
        assert answer.status_code in (200, 304)
        etag = answer.headers["ETag"]

    too_fast = client.get(path, headers={"HX-Request": "true"})

    assert too_fast.status_code == 429
    assert too_fast.headers["HX-Reswap"] == "none"  # what is on screen stays
    assert 1 <= int(too_fast.headers["Retry-After"]) <= 60
    # The limit is the viewer's own: someone else polling the same event is answered.
    auth.logout()
    assert auth.login(make_user(name="Cleo")).status_code == 303
    assert client.get(path, headers={"HX-Request": "true"}).status_code == 200
