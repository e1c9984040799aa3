"""The organizer's words and settings: the cancel confirmation and its result in plural forms
that fit the numbers, the daily sales email setting on the dashboard, and a payouts page
that says one consistent thing with local payments."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

import pytest

from extensions import db
from models import User
from services import queue, webhooks
from tests.support.buying import buy_directly, open_checkout
from tests.support.factories import make_event, make_user

NOW = datetime.now(timezone.utc)


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def words(markup: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def effects(body: str) -> list[str]:
    """What the cancel confirmation says cancelling will do, one item each."""
    listing = re.search(r'<ul id="cancel-effects">(.*?)</ul>', body, re.S).group(1)
    return [words(item) for item in re.findall(r"<li>(.*?)</li>", listing, re.S)]


def gig_with(organizer, *, sold: int, offers: int, waiting: int):
    """An event of ``organizer`` with ``sold`` tickets, ``offers`` held and ``waiting`` in line."""
    event = make_event(organizer, total_tickets=max(1, sold + offers), name="Indie Night")
    for _ in range(sold):
        buy_directly(event, make_user())
    for _ in range(offers + waiting):
        queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    return event


@pytest.mark.parametrize("sold, offers, waiting, expected", [
    (0, 1, 0, ["refund nobody: no tickets are held;",
               "close the waiting list, end the 1 offer held right now;",
               "take the event off the listings, and email you and everyone affected."]),
    (1, 0, 0, ["refund the 1 ticket sold, in full;",
               "close the waiting list (nobody is in it);",
               "take the event off the listings, and email you and everyone affected."]),
    (3, 2, 1, ["refund all 3 tickets sold, in full;",
               "close the waiting list, end the 2 offers held right now and take 1 person out "
               "of the line;",
               "take the event off the listings, and email you and everyone affected."]),
    (2, 0, 4, ["refund all 2 tickets sold, in full;",
               "close the waiting list, take 4 people out of the line;",
               "take the event off the listings, and email you and everyone affected."]),
])
def test_the_cancel_confirmation_counts_in_words_that_fit(client, organizer, sold, offers,
                                                          waiting, expected):
    event = gig_with(organizer, sold=sold, offers=offers, waiting=waiting)
    body = page(client.get(f"/seller/events/{event.id}/cancel"))
    assert effects(body) == expected
    assert "all 1 " not in body and " 0 " not in words(body)


@pytest.mark.parametrize("sold, waiting, flash, notice", [
    (0, 0, "The event is cancelled: nobody had a ticket or a place in line.",
     "You cancelled this event"),
    (1, 1, "The event is cancelled: 1 ticket is being refunded and 1 person in line has been "
           "told.", "its ticket was refunded."),
    (2, 3, "The event is cancelled: 2 tickets are being refunded and 3 people in line have "
           "been told.", "all 2 tickets were refunded."),
])
def test_cancelling_says_what_it_did_once(client, organizer, sold, waiting, flash, notice):
    event = gig_with(organizer, sold=sold, offers=0, waiting=waiting)
    response = client.post(f"/seller/events/{event.id}/cancel", follow_redirects=True)
    body = page(response)
    assert flash + " We've emailed you a summary." in body
    assert body.count("The event is cancelled") == 1 and body.count("You cancelled") == 1
    assert notice in body
    assert "This event was cancelled" not in body


def paid_for(event) -> None:
    """A ticket bought and paid on the local payment page (its refund can be sent)."""
    buyer = make_user()
    webhooks.pay_locally(session_id=open_checkout(event, buyer).id, user_id=buyer.id, now=NOW)


@pytest.mark.parametrize("sold, line", [
    (1, "The refund was sent."),
    (2, "2 of 2 refunds sent."),
])
def test_refund_progress_reads_right_for_one_refund_and_for_several(client, organizer, sold,
                                                                     line):
    event = make_event(organizer, total_tickets=sold)
    for _ in range(sold):
        paid_for(event)
    client.post(f"/seller/events/{event.id}/cancel")  # the refunds are sent at once here
    body = page(client.get(f"/seller/events/{event.id}"))
    progress = re.search(r'<p id="refund-progress"[^>]*>(.*?)</p>', body).group(1)
    assert progress == line


# ------------------------------------------------------------ the daily email setting


def checkbox(body: str) -> str:
    return re.search(r'<input[^>]*name="daily_sales_email"[^>]*>', body).group(0)


def test_the_daily_sales_email_is_off_until_the_organizer_turns_it_on(client, organizer):
    dashboard = page(client.get("/seller"))
    assert "checked" not in checkbox(dashboard)
    assert 'action="/seller/summary-email"' in dashboard

    on = client.post("/seller/summary-email", data={"daily_sales_email": "y"})
    assert on.status_code == 303 and on.headers["Location"] == "/seller"
    after = page(client.get("/seller"))
    assert "You'll get a summary of yesterday's sales by email each morning." in after
    assert "checked" in checkbox(after)
    db.session.rollback()
    assert db.session.get(User, organizer.id).daily_sales_email is True

    off = client.post("/seller/summary-email", data={})  # an unticked box sends nothing
    assert off.status_code == 303
    assert "Daily sales emails are off." in page(client.get("/seller"))
    db.session.rollback()
    assert db.session.get(User, organizer.id).daily_sales_email is False


# ------------------------------------------------------------ payouts with local payments


def test_with_local_payments_the_payouts_page_asks_for_nothing(client, organizer):
    before = page(client.get("/seller/connect"))
    client.post("/seller/connect")  # an old "Set up payouts" press, or a bookmarked form
    after = page(client.get("/seller/connect"))
    for body in (before, after):
        assert 'data-payments="local"' in body
        assert "local test payments" in body and "you need no payout account" in body
        assert "Set up payouts with Stripe" not in body
        assert "Details submitted" not in body and "Stripe dashboard" not in body
        assert 'href="/seller"' in body
