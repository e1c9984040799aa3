"""On a 360 × 740 phone, with JavaScript on and off: the organizer's dashboard fits the screen
and the door is one tap from it, where a ticket's short door code checks its holder in; the
ticket page fits too, prints as the ticket alone, and every page touched passes axe.

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
    new_person,
    seed,
    ticket_words,
    unique,
    user_words,
)

pytestmark = pytest.mark.browser



def fits_the_phone(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def organizer_with_sales(server) -> tuple[Person, list[tuple[int, str, Person]], dict]:
    """An organizer with two events (one with a long name), the first with two tickets sold;
    returns the organizer, ``(event id, name, ...)`` rows, and each fan's ``(ticket id, door
    code)``."""
    organizer = new_person("organizer")
    fans = [new_person("fan") for _ in range(2)]
    names = [unique("Door Gig "), unique("An Evening of Extraordinarily Long Event Names ")]
    made = seed(server, *user_words(organizer), *(w for fan in fans for w in user_words(fan)),
                *event_words(organizer, name=names[0], capacity=10),
                *event_words(organizer, name=names[1], capacity=300, starts_in_hours=48))
    event_ids = [int(made[-2]), int(made[-1])]
    sold = seed(server, *(w for fan in fans for w in ticket_words(event_ids[0], fan)))
    codes = {fan.email: (int(line.split()[0]), line.split()[2]) for fan, line in zip(fans, sold)}
    return organizer, [(event_ids[0], names[0], fans), (event_ids[1], names[1], [])], codes


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_dashboard_fits_a_phone_and_the_door_is_one_tap_away(
        live_server, new_context, screenshot, javascript):
    organizer, events, codes = organizer_with_sales(live_server)
    (event_id, name, fans), _ = events
    page = browser_for(live_server, new_context, organizer, javascript=javascript,
                       viewport=PHONE)

    page.goto(f"{live_server.url}/seller")
    card = page.locator(f"#event-{event_id}")
    expect(card).to_have_attribute("data-sold", "2")
    assert fits_the_phone(page), "the dashboard is wider than the phone"
    check_in = card.get_by_role("link", name=f"Check in to {name}")
    expect(check_in).to_be_visible()
    box = check_in.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 200, box  # a big target for a thumb
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, f"dashboard-360x740-{'js' if javascript else 'no-js'}")

    check_in.click()  # the one tap
    page.wait_for_url(f"{live_server.url}/seller/events/{event_id}/checkin")
    ticket_id, code = codes[fans[0].email]
    field = page.get_by_label("Ticket code")
    field.fill(f"{code[:5]}-{code[5:]}".lower())  # as the holder reads it out
    page.get_by_role("button", name="Check in").click()
    result = page.locator("#checkin-result")
    expect(result).to_have_attribute("data-outcome", "admitted")
    expect(result).to_contain_text(f"ticket #{ticket_id}")
    expect(page.locator("#checkin-count")).to_have_text("1 of 2 checked in")
    assert fits_the_phone(page)

    page.goto(f"{live_server.url}/seller")
    expect(page.locator(f"#event-{event_id}")).to_have_attribute("data-checked-in", "1")


def test_the_organizers_pages_touched_pass_axe_on_a_phone(live_server, new_context, run_axe,
                                                         screenshot):
    organizer, events, _ = organizer_with_sales(live_server)
    (event_id, name, _), _ = events
    page = browser_for(live_server, new_context, organizer, viewport=PHONE)
    found = {}
    for label, path in (("dashboard", "/seller"),
                        ("event figures and chart", f"/seller/events/{event_id}"),
                        ("cancel confirmation", f"/seller/events/{event_id}/cancel"),
                        ("payouts", "/seller/connect"),
                        ("home cards", "/"),
                        ("search results", f"/?q={name.split()[-1]}")):
        page.goto(live_server.url + path)
        found[label] = run_axe(page)
        assert fits_the_phone(page), label
        screenshot(page, f"{label.replace(' ', '-')}-360x740")
    page.goto(f"{live_server.url}/")
    expect(page.locator(f"li.card:has(a[href='/events/{event_id}'])")).to_have_attribute(
        "data-availability", "on-sale")
    assert {label: v for label, v in found.items() if v} == {}


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_ticket_fits_a_phone_and_prints_as_the_ticket_alone(
        live_server, new_context, run_axe, screenshot, javascript):
    _, events, codes = organizer_with_sales(live_server)
    (_, _, fans), _ = events
    ticket_id, code = codes[fans[0].email]
    page = browser_for(live_server, new_context, fans[0], javascript=javascript,
                       viewport=PHONE)

    page.goto(f"{live_server.url}/tickets/{ticket_id}")
    ticket = page.locator("#ticket")
    expect(ticket).to_have_attribute("data-status", "valid")
    expect(ticket).to_have_attribute("data-code", code)
    expect(page.locator("#ticket code.door-code")).to_have_text(f"{code[:5]}-{code[5:]}")
    expect(page.get_by_role("img", name=f"QR code for ticket {ticket_id}")).to_be_visible()
    assert fits_the_phone(page)
    # The Print button needs the script; the browser's own Print works either way.
    print_button = page.get_by_role("button", name="Print this ticket")
    if javascript:
        expect(print_button).to_be_visible()
        assert run_axe(page) == []
    else:
        expect(print_button).to_be_hidden()
    expect(page.get_by_role("link", name="Add to calendar")).to_have_attribute(
        "href", re.compile(r"^/events/\d+/calendar\.ics$"))

    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator(".site-footer")).to_be_hidden()
    expect(page.get_by_role("link", name="Add to calendar")).to_be_hidden()
    expect(page.locator("#ticket code.door-code")).to_be_visible()
    expect(page.get_by_role("img", name=f"QR code for ticket {ticket_id}")).to_be_visible()
    expect(page.locator("#receipt")).to_be_visible()
    screenshot(page, f"ticket-print-{'js' if javascript else 'no-js'}")
