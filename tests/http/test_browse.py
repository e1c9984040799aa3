"""Browsing: the list of upcoming events, search, an event's page and its image."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import current_app

from services.events import EventDetails, cancel_event, create_event
from services.queue import join_queue
from tests.support.factories import image_bytes, make_event, make_user, utc

NOW = datetime.now(timezone.utc)


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def listed(client, **query) -> list[str]:
    """The event names on the list page, top to bottom."""
    response = client.get("/", query_string=query)
    assert response.status_code == 200
    return re.findall(r'<h2><a href="/events/\d+">(.*?)</a></h2>', page(response))


def event_in(days: float, name: str, **fields):
    return make_event(name=name, starts_at=NOW + timedelta(days=days), **fields)


def past_event(name: str = "Last week's gig"):
    return make_event(now=NOW - timedelta(days=10), name=name, starts_at=NOW - timedelta(days=3))


def cancelled_event(name: str = "Called-off gig"):
    event = event_in(5, name)
    return cancel_event(event_id=event.id, organizer_id=event.organizer_id, now=NOW)


def event_with_image():
    details = EventDetails("Poster gig", "", "Soho", NOW + timedelta(days=3), 1250, 10)
    return create_event(
        organizer_id=make_user().id, details=details, image=image_bytes("PNG"), now=NOW
    )


def availability(response) -> dict[str, str]:
    """The data-* attributes of the #availability hook."""
    tag = re.search(r'<div id="availability"[^>]*>', page(response), re.S)
    assert tag, "no #availability on the page"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(0)))


def join_form_on(response, event) -> bool:
    return f'action="/events/{event.id}/join"' in page(response)


# --------------------------------------------------------------------- the list


def test_the_home_page_lists_upcoming_events_soonest_first(client):
    event_in(20, "Later")
    event_in(1, "Tomorrow")
    event_in(7, "Next week")

    assert listed(client) == ["Tomorrow", "Next week", "Later"]


def test_past_and_cancelled_events_are_not_listed(client):
    event_in(2, "Still on")
    past_event("Over already")
    cancelled_event("Called off")

    assert listed(client) == ["Still on"]


def test_each_listed_event_shows_its_date_place_and_price(client):
    make_event(name="Jazz Night", location="The Crypt", price_pence=1250,
               starts_at=utc(2030, 12, 7, 19, 30))

    home = page(client.get("/"))

    assert "Sat 7 Dec 2030, 19:30 UTC" in home
    assert "The Crypt" in home
    assert "£12.50" in home


def card_of(body: str, name: str) -> str:
    match = re.search(rf'<li class="card"[^>]*>(?:(?!</li>).)*?>{re.escape(name)}</a>.*?</li>',
                      body, re.S)
    assert match, f"no card for {name}"
    return match.group(0)


def availability_line(card: str) -> str:
    line = re.search(r'<p class="availability[^"]*">(.*?)</p>', card, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", line).split())


def test_each_card_says_whether_tickets_can_be_had(client):
    plenty = event_in(1, "Plenty", total_tickets=100)
    few = event_in(2, "Few", total_tickets=20)
    sold_out = event_in(3, "Gone", total_tickets=1)
    later = make_event(name="Later", total_tickets=50, timezone="Europe/London",
                       starts_at=utc(2099, 7, 10, 19, 0), sale_starts_at=utc(2099, 7, 3, 9, 0))
    for event, taken in ((few, 18), (sold_out, 1)):
        for _ in range(taken):
            join_queue(event_id=event.id, user_id=make_user().id, now=NOW)  # offered at once

    home = page(client.get("/"))

    assert availability_line(card_of(home, "Plenty")) == "On sale"
    assert availability_line(card_of(home, "Few")) == "Only 2 left"
    assert availability_line(card_of(home, "Gone")) == "Sold out — join the waiting list"
    assert availability_line(card_of(home, "Later")) == "On sale Fri 3 Jul 2099, 10:00 BST"
    hooks = re.findall(r'<li class="card" data-availability="([a-z-]+)" '
                       r'data-remaining="(\d+)">.*?<a href="/events/(\d+)"', home, re.S)
    assert hooks == [("on-sale", "100", str(plenty.id)), ("few-left", "2", str(few.id)),
                     ("sold-out", "0", str(sold_out.id)), ("not-yet", "50", str(later.id))]


def test_search_results_say_what_was_searched(client):
    event_in(1, "Jazz Night")
    event_in(2, "Late Jazz")
    event_in(3, "Folk Session")

    plain = page(client.get("/"))
    one = page(client.get("/", query_string={"q": "folk"}))
    two = page(client.get("/", query_string={"q": "jazz"}))

    assert "<h1>Upcoming events</h1>" in plain
    assert "<h1>Events matching “folk”</h1>" in one and "<h1>Upcoming events</h1>" not in one
    assert "1 upcoming event matches." in one
    assert "<h1>Events matching “jazz”</h1>" in two and "2 upcoming events match." in two


def test_an_empty_site_says_there_is_nothing_yet(client):
    assert "No upcoming events yet." in page(client.get("/"))


def test_searching_narrows_the_list(client):
    event_in(1, "Jazz Night", description="Candlelit")
    event_in(2, "Folk Session", location="Hackney")
    event_in(3, "Late Jazz", location="Soho")

    assert listed(client, q="jazz") == ["Jazz Night", "Late Jazz"]
    assert listed(client, q="hackney") == ["Folk Session"]
    assert listed(client, q="candlelit") == ["Jazz Night"]


def test_a_search_without_matches_says_so_and_offers_the_full_list(client):
    event_in(1, "Jazz Night")

    response = client.get("/", query_string={"q": "opera"})

    assert "No upcoming events match “opera”" in page(response)
    assert 'href="/">See all events' in page(response)


def test_the_search_term_is_shown_back_safely(client):
    response = client.get("/", query_string={"q": "<script>alert(1)</script>"})

    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert "&lt;script&gt;" in response.get_data(as_text=True)


@pytest.mark.app_config(EVENTS_PER_PAGE=2)
def test_the_list_comes_a_page_at_a_time(client):
    for day in range(1, 6):
        event_in(day, f"Day {day}")

    first = page(client.get("/"))
    assert listed(client) == ["Day 1", "Day 2"]
    assert "Page 1 of 3" in first
    assert 'rel="next" href="/?page=2"' in first and 'rel="prev"' not in first

    assert listed(client, page=2) == ["Day 3", "Day 4"]
    assert listed(client, page=3) == ["Day 5"]
    assert 'rel="next"' not in page(client.get("/?page=3"))


@pytest.mark.app_config(EVENTS_PER_PAGE=2)
def test_search_results_are_paged_too_and_keep_the_search(client):
    for day in range(1, 4):
        event_in(day, f"Jazz {day}")
    event_in(4, "Folk")

    assert listed(client, q="jazz", page=2) == ["Jazz 3"]
    assert 'href="/?q=jazz&amp;page=2"' in client.get("/?q=jazz").get_data(as_text=True)


@pytest.mark.parametrize("page_number", ["0", "-1", "abc"])
def test_a_nonsense_page_number_shows_the_first_page(client, page_number):
    event_in(1, "Tomorrow")

    assert listed(client, page=page_number) == ["Tomorrow"]


# --------------------------------------------------------------------- an event's page


def test_the_event_page_shows_the_details_a_buyer_needs(client):
    event = make_event(name="Jazz Night", location="The Crypt", description="Candlelit jazz.",
                       price_pence=1250, starts_at=utc(2030, 12, 7, 19, 30))

    response = client.get(f"/events/{event.id}")

    assert response.status_code == 200
    text = page(response)
    for detail in ("Jazz Night", "The Crypt", "Candlelit jazz.", "Sat 7 Dec 2030, 19:30 UTC",
                   "£12.50"):
        assert detail in text


def test_a_fresh_event_has_every_ticket_left(client):
    event = make_event(total_tickets=10)

    hook = availability(client.get(f"/events/{event.id}"))

    assert hook == {"remaining": "10", "total": "10", "sold": "0", "reserved": "0",
                    "sold-out": "false"}


def test_the_event_page_shows_the_events_image(client):
    event = event_with_image()

    text = page(client.get(f"/events/{event.id}"))

    assert f'src="/uploads/{event.image_filename}"' in text


def test_a_visitor_is_invited_to_sign_in_and_a_buyer_can_get_a_ticket(client, auth):
    event = event_in(3, "Jazz Night")
    assert "Sign in to get a ticket" in page(client.get(f"/events/{event.id}"))

    auth.login(make_user())

    assert join_form_on(client.get(f"/events/{event.id}"), event)


def test_a_past_event_says_so_and_sells_nothing(client, auth):
    event = past_event()
    auth.login(make_user())

    response = client.get(f"/events/{event.id}")

    assert response.status_code == 200
    assert "This event has already taken place." in page(response)
    assert not join_form_on(response, event)


def test_a_cancelled_event_says_so_and_sells_nothing(client, auth):
    event = cancelled_event()
    auth.login(make_user())

    response = client.get(f"/events/{event.id}")

    assert response.status_code == 200
    assert "This event was cancelled." in page(response)
    assert availability(response)["remaining"] == "0"
    assert not join_form_on(response, event)


def test_an_unknown_event_is_not_found(client):
    response = client.get("/events/999999")

    assert response.status_code == 404
    assert "We couldn't find that page." in page(response)


# --------------------------------------------------------------------- uploaded images


def test_a_stored_image_is_served(client):
    event = event_with_image()
    stored = Path(current_app.config["UPLOAD_FOLDER"]) / event.image_filename

    with client.get(f"/uploads/{event.image_filename}") as response:  # closes the file
        assert response.status_code == 200
        assert response.mimetype == "image/webp"
        assert response.data == stored.read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/uploads/../private.txt",
        "/uploads/..%2Fprivate.txt",
        "/uploads/%2e%2e/private.txt",
        "/uploads/..%5Cprivate.txt",
        "/uploads/does-not-exist.webp",
    ],
)
def test_nothing_outside_the_upload_folder_is_served(client, path):
    uploads = Path(current_app.config["UPLOAD_FOLDER"])
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads.parent / "private.txt").write_text("top secret")

    response = client.get(path)

    assert response.status_code == 404
    assert b"top secret" not in response.data
