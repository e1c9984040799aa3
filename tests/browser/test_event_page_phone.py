"""The event page on a 360 × 740 phone, JavaScript on and off (issue 15, points 2 to 6): the
waiter's place and the offer holder's "Buy now" are on the first screen, under the title;
releasing, leaving and refunding ask first; "Buy ticket" is one click from the payment page,
which shows how long the hold lasts; My tickets lists the offers held and places in line.
Every page touched passes axe.

Runs against the real app (gunicorn + Huey consumer, see ``conftest.py``).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import PHONE, browser_for
from tests.support.seeding import (
    Person,
    event_words,
    join_words,
    new_person,
    seed,
    ticket_words,
    unique,
    user_words,
)

pytestmark = pytest.mark.browser

# A description long enough to fill a phone's screen several times over.
LONG_DESCRIPTION = " ".join(["An evening of music in a small room, with friends old and new."]
                            * 30)
MODES = pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])


@pytest.fixture(scope="module")
def live_server_env() -> dict:
    return {"TICKET_OFFER_SECONDS": "300"}  # offers outlast every test here: 5 minutes


def event_with(server, *roles: str, name: str, capacity: int) -> tuple[int, list[Person]]:
    """An event (tomorrow, £12.50, a long description; named ``name`` and a unique tail) of a
    fresh organizer's, and one fresh person per role (accounts only)."""
    organizer, people = new_person("organizer"), [new_person(role) for role in roles]
    made = seed(server, *(w for p in (organizer, *people) for w in user_words(p)),
                *event_words(organizer, name=unique(name), capacity=capacity,
                             description=LONG_DESCRIPTION))
    return int(made[-1]), people


def sold_out_event(server, *roles: str, capacity: int = 1) -> tuple[int, Person, list[Person]]:
    """An event (tomorrow, £12.50, a long description) whose every ticket is sold; its
    organizer, and one fresh person per role (accounts only)."""
    organizer, early = new_person("organizer"), [new_person("early") for _ in range(capacity)]
    people = [new_person(role) for role in roles]
    made = seed(server, *(w for p in (organizer, *early, *people) for w in user_words(p)),
                *event_words(organizer, name=unique("Phone Gig "), capacity=capacity,
                             description=LONG_DESCRIPTION))
    event_id = int(made[-1])
    seed(server, *(w for p in early for w in ticket_words(event_id, p)))
    return event_id, organizer, people


def open_event(page: Page, server, event_id: int) -> None:
    page.goto(f"{server.url}/events/{event_id}")


def on_first_screen(page: Page, locator) -> None:
    """``locator`` is visible without scrolling on the phone."""
    page.evaluate("window.scrollTo(0, 0)")
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def axe_clean(page: Page, run_axe, javascript: bool) -> None:
    if javascript:  # axe runs in the page: only with JavaScript on
        assert run_axe(page) == []


@MODES
def test_a_waiter_sees_their_place_first_and_leaving_asks_first(
        live_server, new_context, run_axe, screenshot, javascript):
    event_id, _, (waiter,) = sold_out_event(live_server, "waiter")
    seed(live_server, *join_words(event_id, waiter))
    page = browser_for(live_server, new_context, waiter, javascript=javascript, viewport=PHONE)
    open_event(page, live_server, event_id)

    status = page.locator("#queue-status")
    expect(status).to_have_attribute("data-status", "waiting")
    on_first_screen(page, status.get_by_text("You are number 1 in line"))
    expect(status).to_contain_text("You can close this page: we'll email you when it's your turn.")
    expect(page.locator("#availability .big")).to_have_count(0)  # no "Sold out" headline
    axe_clean(page, run_axe, javascript)
    screenshot(page, f"event-waiter-360x740-{'js' if javascript else 'no-js'}")

    page.get_by_role("link", name="Leave the waiting list…").click()
    page.wait_for_url(f"{live_server.url}/events/{event_id}/release")
    expect(page.get_by_role("heading", name="Leave the waiting list?")).to_be_visible()
    axe_clean(page, run_axe, javascript)
    page.get_by_role("link", name="No, keep my place").click()
    expect(page.locator("#queue-status")).to_have_attribute("data-status", "waiting")

    page.get_by_role("link", name="Leave the waiting list…").click()
    page.get_by_role("button", name="Yes, leave").click()
    page.wait_for_url(f"{live_server.url}/events/{event_id}")
    expect(page.locator("#queue-status")).to_have_attribute("data-status", "expired")
    expect(page.get_by_text("You left the waiting list")).to_have_count(1)


@MODES
def test_the_offer_holder_sees_buy_now_first_and_release_asks_first(
        live_server, new_context, run_axe, screenshot, javascript):
    event_id, (holder,) = event_with(live_server, "holder", name="Last Seat ", capacity=1)
    seed(live_server, *join_words(event_id, holder))  # the only ticket, held for them
    page = browser_for(live_server, new_context, holder, javascript=javascript, viewport=PHONE)
    open_event(page, live_server, event_id)

    status = page.locator("#queue-status")
    expect(status).to_have_attribute("data-status", "offered")
    on_first_screen(page, status.get_by_text("A ticket is held for you until"))
    buy = page.get_by_role("button", name=re.compile("^Buy now"))
    on_first_screen(page, buy)
    expect(page.get_by_text("Sold out")).to_have_count(0)
    release = page.get_by_role("link", name="Release this ticket…")
    gap = release.bounding_box()["y"] - (buy.bounding_box()["y"] + buy.bounding_box()["height"])
    assert gap >= 48, f"Release is only {gap}px below Buy now"
    axe_clean(page, run_axe, javascript)
    screenshot(page, f"event-offer-360x740-{'js' if javascript else 'no-js'}")

    release.click()
    page.wait_for_url(f"{live_server.url}/events/{event_id}/release")
    expect(page.get_by_role("heading", name="Release your ticket?")).to_be_visible()
    axe_clean(page, run_axe, javascript)
    page.get_by_role("button", name="Yes, release it").click()
    page.wait_for_url(f"{live_server.url}/events/{event_id}")
    expect(page.locator("#queue-status")).to_have_attribute("data-status", "expired")
    expect(page.get_by_text("You released your ticket offer")).to_have_count(1)


@MODES
def test_buy_ticket_is_one_click_from_the_payment_page(
        live_server, new_context, run_axe, javascript):
    event_id, (buyer,) = event_with(live_server, "buyer", name="Open Gig ", capacity=5)
    page = browser_for(live_server, new_context, buyer, javascript=javascript, viewport=PHONE)
    open_event(page, live_server, event_id)

    page.get_by_role("button", name="Buy ticket").click()  # the one click
    page.wait_for_url(re.compile(r"/pay/local/cs_local_"))
    hold = page.locator("#hold")
    expect(hold).to_contain_text(re.compile(r"held for you until \d\d:\d\d"))
    if javascript:
        expect(hold.locator(".countdown")).to_have_text(re.compile(r"^[45]:\d\d$"))
    else:
        expect(hold).to_contain_text("5 minutes from when this page was shown")
    on_first_screen(page, page.get_by_role("button", name="Pay £12.50"))
    axe_clean(page, run_axe, javascript)

    page.get_by_role("button", name="Pay £12.50").click()
    page.wait_for_url(re.compile(r"/checkout/success"))


@MODES
def test_my_tickets_lists_an_offer_with_buy_now_and_a_place_in_line(
        live_server, new_context, run_axe, javascript):
    full_id, _, (buyer,) = sold_out_event(live_server, "buyer")
    name = unique("Held Gig ")
    held_id, _ = event_with(live_server, name=name, capacity=3)
    seed(live_server, *join_words(held_id, buyer), *join_words(full_id, buyer))
    page = browser_for(live_server, new_context, buyer, javascript=javascript, viewport=PHONE)
    page.goto(f"{live_server.url}/tickets")

    offer = page.locator(f"#offers li[data-event-id='{held_id}']")
    expect(offer).to_contain_text(name)
    expect(offer).to_contain_text(re.compile(r"Held until \d\d:\d\d"))
    place = page.locator(f"#in-line li[data-event-id='{full_id}']")
    expect(place).to_contain_text("number 1 in line")
    on_first_screen(page, offer.get_by_role("button", name=re.compile("^Buy now")))
    axe_clean(page, run_axe, javascript)

    offer.get_by_role("button", name=re.compile("^Buy now")).click()
    page.wait_for_url(re.compile(r"/pay/local/cs_local_"))


@MODES
def test_the_organizers_refund_asks_first(live_server, new_context, run_axe, javascript):
    event_id, organizer, _ = sold_out_event(live_server)
    page = browser_for(live_server, new_context, organizer, javascript=javascript,
                       viewport=PHONE)
    page.goto(f"{live_server.url}/seller/events/{event_id}")
    refund = page.get_by_role("link", name=re.compile(r"^Refund… ticket #\d+$"))
    ticket = re.search(r"#(\d+)", refund.inner_text()).group(1)
    refund.click()
    page.wait_for_url(f"{live_server.url}/seller/tickets/{ticket}/refund")
    expect(page.get_by_role("heading", name=f"Refund ticket #{ticket}?")).to_be_visible()
    axe_clean(page, run_axe, javascript)
    page.get_by_role("button", name=f"Yes, refund ticket #{ticket}").click()
    page.wait_for_url(f"{live_server.url}/seller/events/{event_id}")
    expect(page.locator(".flash-success")).to_contain_text(f"Ticket #{ticket} is refunded")
