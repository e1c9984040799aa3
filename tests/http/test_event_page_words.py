"""The event page as a buyer reads it (issue 15, points 2 to 6 and 10): their own status
first, honest words about the line, confirmations before giving anything up, one click from
a free ticket to the payment page, and counts in the right plural form."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from models import CheckoutSession, TicketStatus
from services import queue, queue_reads
from services.timezones import clock
from tests.support.buying import buy_directly
from tests.support.factories import make_event, make_user
from tests.support.html import hook
from tests.support.mailbox import mailbox

HX = {"HX-Request": "true"}


@pytest.fixture
def app(any_db_app):
    """Every test here on SQLite and on PostgreSQL."""
    return any_db_app


def page(response) -> str:
    return response.get_data(as_text=True).replace("&#39;", "'")


def words(html: str) -> str:
    """The text a reader sees, in one line: tags dropped, spaces squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" .", ".")


def event_page(client, event) -> str:
    return page(client.get(f"/events/{event.id}"))


def sign_in_as(auth, user):
    auth.logout()
    auth.login(user)
    return user


def first_in_line_after_the_last_sale(client, auth):
    """The last ticket is sold; a signed-in buyer joins and waits, first in line."""
    event = make_event(total_tickets=1)
    buy_directly(event, make_user())
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    return event


# ------------------------------------------------------------------ counts and copy


@pytest.mark.parametrize("total, held, expected, held_words", [
    (1, 0, "1 of 1 ticket left", "0 sold · 0 held in offers"),
    (2, 1, "1 of 2 tickets left", "0 sold · 1 held in an offer"),
    (3, 0, "3 of 3 tickets left", "0 sold · 0 held in offers"),
])
def test_tickets_left_in_the_right_plural_form(client, app, total, held, expected, held_words):
    event = make_event(total_tickets=total)
    for _ in range(held):
        queue.join_queue(event_id=event.id, user_id=make_user().id,
                         now=datetime.now(timezone.utc))
    text = words(event_page(client, event))
    assert expected in text
    assert held_words in text
    assert f"of {total} tickets left" not in text or total != 1


def test_a_sold_out_event_asks_visitors_to_sign_in_to_join_the_waiting_list(client, app):
    event = make_event(total_tickets=1)
    buy_directly(event, make_user())
    text = words(event_page(client, event))
    assert "Sold out — join the waiting list for returns" in text
    assert "Sign in to join the waiting list" in text
    assert "Sign in to get a ticket" not in text


def test_an_event_on_sale_asks_visitors_to_sign_in_to_get_a_ticket(client, app):
    text = words(event_page(client, make_event()))
    assert "Sign in to get a ticket" in text


def test_a_cancelled_event_says_so_once(client, auth, app):
    organizer = make_user()
    event = make_event(organizer, total_tickets=2)
    buyer = make_user()
    buy_directly(event, buyer)
    from services import events
    events.cancel_event(event_id=event.id, organizer_id=organizer.id,
                        now=datetime.now(timezone.utc))
    auth.login(buyer)
    assert event_page(client, event).count("This event was cancelled") == 1
    sign_in_as(auth, make_user())
    assert event_page(client, event).count("This event was cancelled") == 1


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain form", "htmx"])
def test_leaving_the_waiting_list_is_said_once(client, auth, app, headers):
    event = first_in_line_after_the_last_sale(client, auth)
    response = client.post(f"/events/{event.id}/release", headers=headers)
    shown = page(response) if headers else page(client.get(response.headers["Location"]))
    assert shown.count("You left the waiting list") == 1
    assert hook(shown, "queue-status")["status"] == "expired"


def test_releasing_an_offer_is_said_once(client, auth, app):
    event = make_event(total_tickets=1)
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    response = client.post(f"/events/{event.id}/release")
    shown = page(client.get(response.headers["Location"]))
    assert shown.count("You released your ticket offer") == 1


# ------------------------------------------------------------------ phone first


def test_the_offer_holder_reads_their_status_first_and_never_sold_out_as_a_headline(
        client, auth, app):
    event = make_event(total_tickets=1, description="A long description " * 40)
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    html = event_page(client, event)
    held = html.index("A ticket is held for you until")
    assert held < html.index("Buy now") < html.index('class="facts"') < html.index(
        'class="description"')
    assert held < html.index('id="availability"')
    assert "Sold out" not in html
    assert "No other tickets are free" in words(html)
    # "Release" is a separate step, well below "Buy now" (confirmation page, below).
    assert html.index("Buy now") < html.index("Release this ticket")


def test_a_waiter_reads_their_place_before_the_event_details(client, auth, app):
    event = first_in_line_after_the_last_sale(client, auth)
    html = event_page(client, event)
    assert html.index("You are number 1 in line") < html.index('class="facts"')
    assert '<p class="big">Sold out' not in html


def test_someone_without_a_place_reads_about_the_event_first(client, auth, app):
    event = make_event(total_tickets=3)
    auth.login(make_user())
    html = event_page(client, event)
    assert html.index('class="facts"') < html.index('id="event-status"')


# ------------------------------------------------------------------ honest queue words


def test_the_next_buyer_after_the_last_ticket_sold_is_told_what_must_happen(client, auth, app):
    event = first_in_line_after_the_last_sale(client, auth)
    text = words(event_page(client, event))
    assert "You are number 1 in line" in text
    assert "0 people ahead of you · 1 person in line in all." in text
    assert ("Every ticket is sold or held right now, so one comes to you only when one comes "
            "back: when someone holding an offer releases it or lets it run out, or a sold "
            "ticket is refunded.") in text
    assert "You can close this page: we'll email you when it's your turn." in text
    assert re.search(r"This page checks your place again in about \d+ seconds", text)
    assert "Estimated wait" not in text


def test_a_waiter_behind_offers_learns_when_the_earliest_ends_in_the_events_zone(
        client, auth, app):
    event = make_event(total_tickets=2, timezone="America/New_York")
    first, second = make_user(), make_user()
    t0 = datetime.now(timezone.utc)
    queue.join_queue(event_id=event.id, user_id=first.id, now=t0 - timedelta(minutes=5))
    queue.join_queue(event_id=event.id, user_id=second.id, now=t0)
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    earliest = queue_reads.latest_entry(event_id=event.id, user_id=first.id).offer_expires_at
    text = words(event_page(client, event))
    assert "You are number 3 in line" in text
    assert "2 people ahead of you (all holding ticket offers) · 3 people in line in all." in text
    assert (f"The earliest offer ahead of you ends at {clock(earliest, 'America/New_York')}"
            in text)
    assert clock(earliest, "America/New_York").endswith(("EST", "EDT"))
    # Everyone ahead holds a fresh offer: the deadline is the honest answer, not a guess.
    assert "Estimated wait" not in text


def churn(event, *, offers: int, at: datetime) -> None:
    """``offers`` offers made and released one after another, a minute apart, ending at."""
    for i in range(offers):
        moment = at - timedelta(minutes=offers - i)
        user = make_user()
        queue.join_queue(event_id=event.id, user_id=user.id, now=moment)
        queue.release(event_id=event.id, user_id=user.id, now=moment + timedelta(seconds=5))


def test_two_instant_releases_give_no_estimate(client, auth, app):
    """The issue's case: an estimate from two ended offers said "about 1 minute"."""
    event = make_event(total_tickets=1)
    now = datetime.now(timezone.utc)
    churn(event, offers=2, at=now)
    holder = make_user()
    queue.join_queue(event_id=event.id, user_id=holder.id, now=now)
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=now)
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    text = words(event_page(client, event))
    assert "You are number 3 in line" in text
    assert "Estimated wait" not in text
    assert "Too few offers have ended yet to estimate your wait." in text


def test_an_estimate_rests_on_enough_ended_offers_and_says_how_sure_it_is(client, auth, app):
    event = make_event(total_tickets=1)
    now = datetime.now(timezone.utc)
    churn(event, offers=6, at=now)
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=now)  # holds the offer
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=now)  # waits
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    text = words(event_page(client, event))
    assert "2 people ahead of you (1 of them holding a ticket offer)" in text
    found = re.search(r"Estimated wait: (about \d+ minutes?|\d+–\d+ minutes)\. A rough guess: "
                      r"it comes from how fast the last 6 offers ended", text)
    assert found, text


# ------------------------------------------------------------------ confirmations


def test_release_asks_first_and_the_question_posts_to_the_release_url(client, auth, app):
    event = make_event(total_tickets=1)
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    html = event_page(client, event)
    assert f'href="/events/{event.id}/release"' in html
    assert f'hx-post="/events/{event.id}/release"' not in html  # no one-tap release
    question = page(client.get(f"/events/{event.id}/release"))
    assert "Release your ticket?" in question
    assert re.search(rf'<form method="post" action="/events/{event.id}/release">', question)
    assert "Yes, release it" in question
    # Asking changes nothing; the POST acts at once.
    assert hook(event_page(client, event), "queue-status")["status"] == "offered"
    assert client.post(f"/events/{event.id}/release").status_code == 303
    assert hook(event_page(client, event), "queue-status")["status"] == "expired"


def test_leaving_the_line_asks_first(client, auth, app):
    event = first_in_line_after_the_last_sale(client, auth)
    assert "Leave the waiting list…" in event_page(client, event)
    question = words(page(client.get(f"/events/{event.id}/release")))
    assert "Leave the waiting list?" in question
    assert "You give up your place (number 1) in line" in question
    assert "Yes, leave" in question


def test_leaving_the_lobby_asks_first_and_is_said_once(client, auth, app):
    event = make_event(sale_starts_at=datetime.now(timezone.utc) + timedelta(hours=2))
    auth.login(make_user())
    client.post(f"/events/{event.id}/join")
    html = event_page(client, event)
    assert hook(html, "queue-status")["status"] == "lobby"
    assert html.index("You're in the lobby") < html.index('class="facts"')
    assert "Leave the lobby…" in html
    question = words(page(client.get(f"/events/{event.id}/release")))
    assert "Leave the lobby?" in question and "Yes, leave" in question
    left = event_page(client, event)
    assert hook(left, "queue-status")["status"] == "lobby"  # asking changed nothing
    response = client.post(f"/events/{event.id}/release")
    shown = page(client.get(response.headers["Location"]))
    assert shown.count("You left the lobby") == 1
    assert "You left the waiting list" not in shown


def test_asking_to_release_with_nothing_to_release_goes_back_to_the_event(client, auth, app):
    event = make_event()
    auth.login(make_user())
    response = client.get(f"/events/{event.id}/release")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/events/{event.id}")
    assert "no ticket offer or place in line" in page(client.get(response.headers["Location"]))


def test_the_organizers_refund_asks_first(client, auth, app):
    organizer = make_user()
    event = make_event(organizer)
    ticket = buy_directly(event, make_user(name="Bea"))
    auth.login(organizer)
    detail = page(client.get(f"/seller/events/{event.id}"))
    assert f'href="/seller/tickets/{ticket.id}/refund"' in detail
    assert f'action="/seller/tickets/{ticket.id}/refund"' not in detail
    question = words(page(client.get(f"/seller/tickets/{ticket.id}/refund")))
    assert f"Refund ticket #{ticket.id}?" in question
    assert "Bea's ticket" in question and "£12.50 goes back to them" in question
    assert ticket.status == TicketStatus.VALID  # asking changed nothing
    assert client.post(f"/seller/tickets/{ticket.id}/refund").status_code == 303
    from extensions import db
    db.session.refresh(ticket)
    assert ticket.status == TicketStatus.REFUNDED


# ------------------------------------------------------------------ one click to pay


def test_buy_ticket_goes_straight_to_the_payment_page_showing_the_time_left(client, auth, app):
    event = make_event(total_tickets=5)
    auth.login(make_user())
    response = client.post(f"/events/{event.id}/join")
    assert response.status_code == 303
    payment = page(client.get(response.headers["Location"]))
    session = CheckoutSession.query.one()
    expires = session.entry.offer_expires_at
    assert hook(payment, "hold")["offer-expires"] == expires.isoformat().replace("+00:00", "Z")
    text = words(payment)
    assert f"Your ticket is held for you until {clock(expires, event.timezone)}" in text
    assert "30 minutes from when this page was shown" in text


def test_a_ticket_held_on_joining_sends_no_offer_email_but_a_later_offer_does(
        client, auth, app):
    event = make_event(total_tickets=1)
    ann = make_user(name="Ann")
    bob = make_user(name="Bob")
    auth.login(ann)
    client.post(f"/events/{event.id}/join")
    sign_in_as(auth, bob)
    client.post(f"/events/{event.id}/join")
    assert not [key for key in mailbox(app) if key.startswith("offer_made")]
    sign_in_as(auth, ann)
    client.post(f"/events/{event.id}/release")  # Bob is offered Ann's ticket later
    bob_entry = queue_reads.latest_entry(event_id=event.id, user_id=bob.id)
    assert [key for key in mailbox(app) if key.startswith("offer_made")] == [
        f"offer_made-{bob_entry.id}"]


def test_a_free_events_ticket_is_one_click_away(client, auth, app):
    event = make_event(price_pence=0)
    auth.login(make_user())
    response = client.post(f"/events/{event.id}/join")
    assert response.status_code == 303
    assert re.search(r"/tickets/\d+$", response.headers["Location"])


# ------------------------------------------------------------------ my tickets


def test_my_tickets_lists_offers_and_places_in_line(client, auth, app):
    offered = make_event(name="Held gig", total_tickets=1)
    full = make_event(name="Full gig", total_tickets=1)
    buy_directly(full, make_user())
    later = datetime.now(timezone.utc) + timedelta(days=2)
    lobby = make_event(name="Lobby gig", sale_starts_at=later)
    auth.login(make_user())
    for event in (offered, full, lobby):
        client.post(f"/events/{event.id}/join")
    html = page(client.get("/tickets"))
    text = words(html)
    assert "Held for you: buy before the offer ends" in text
    offer = re.search(r'<li class="offer".*?</li>', html, re.DOTALL).group(0)
    assert "Held gig" in offer and "Buy now — £12.50" in offer
    assert re.search(r"Held until \d\d:\d\d \w+ \(30 minutes left", words(offer))
    assert f'action="/events/{offered.id}/checkout"' in offer
    assert "Full gig" in text and "number 1 in line" in text
    assert "Lobby gig" in text and "in the lobby" in text
    assert f'href="/events/{full.id}"' in html and f'href="/events/{lobby.id}"' in html
