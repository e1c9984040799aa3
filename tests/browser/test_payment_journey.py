"""Buying a ticket through the local test payment page, in a real browser.

With no Stripe keys the app pays through its own test payment page (``PAYMENTS=local``):
join → offer → "Buy now" → ``/pay/local/<session>`` → Pay → ``/checkout/success`` → the
ticket with its QR code, listed under "My tickets". A declined card or Cancel leaves the
offer held; a free event skips the payment page altogether.

Runs against the real app (gunicorn + Huey consumer, see ``conftest.py``).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from extensions import db
from models import Ticket
from tests.browser.pages import PHONE, browser_for
from tests.support.seeding import Person, publish_event

pytestmark = pytest.mark.browser

PRICE_PENCE = 1250
PAY_PAGE = re.compile(r"/pay/local/[^/?#]+$")
SUCCESS_PAGE = re.compile(r"/checkout/success\?session_id=[^&]+$")
TICKET_PAGE = re.compile(r"/tickets/(\d+)$")


@pytest.fixture(scope="module")
def live_server_env() -> dict:
    # Offers outlast every test here; no Stripe keys, so PAYMENTS defaults to local.
    return {"TICKET_OFFER_SECONDS": "300"}


# ------------------------------------------------------------------ helpers


def make_event(server, *, price_pence: int = PRICE_PENCE, capacity: int = 5) -> tuple[int, Person]:
    """A published event (tomorrow) by a fresh organizer, and a fresh buyer."""
    event_id, (buyer,) = publish_event(server, "buyer", price_pence=price_pence,
                                       capacity=capacity, name="Paid Gig ")
    return event_id, buyer


def expect_status(page: Page, status: str) -> None:
    expect(page.locator("#queue-status")).to_have_attribute("data-status", status)


def take_offer(page: Page, event_url: str) -> None:
    """On the event page: "Buy ticket", and a ticket is held at once while the payment page
    opens (one click, issue 15); back on the event page, the held offer shows."""
    page.goto(event_url)
    expect_status(page, "none")
    page.get_by_role("button", name="Buy ticket").click()
    page.wait_for_url(PAY_PAGE)
    expect(page.locator("#hold")).to_contain_text("held for you until")
    page.goto(event_url)
    expect_status(page, "offered")


def go_to_payment_page(page: Page, price: str = "£12.50") -> None:
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith("/checkout")) as posted:
        page.get_by_role("button", name=f"Buy now — {price}").click()
    assert posted.value.status == 303
    page.wait_for_url(PAY_PAGE)
    expect(page.locator("main")).to_contain_text("test payment page")
    expect(page.get_by_role("heading", name=f"Pay {price}")).to_be_visible()


def pay(page: Page) -> None:
    page.get_by_role("button", name="Pay £12.50").click()
    page.wait_for_url(SUCCESS_PAGE)
    expect(page.locator("#payment-result")).to_have_attribute("data-status", "paid")
    expect(page.locator("#payment-result")).to_contain_text(
        "Payment complete — your ticket is ready.")


def expect_valid_ticket(page: Page) -> int:
    """The ticket page: valid, with a visible QR code and its door code; returns the ticket
    id."""
    page.wait_for_url(TICKET_PAGE)
    expect(page.locator("#ticket")).to_have_attribute("data-status", "valid")
    qr = page.locator("#ticket figure.qr svg")
    expect(qr).to_have_count(1)
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 50, box
    expect(page.get_by_role("img", name=re.compile(r"^QR code for ticket \d+$"))).to_be_visible()
    expect(page.locator("#ticket code.door-code")).to_have_text(
        re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$"))
    return int(TICKET_PAGE.search(page.url).group(1))


def no_ticket_yet(page: Page, server) -> None:
    page.goto(server.url + "/tickets")
    expect(page.locator("section[aria-labelledby=group-upcoming]")).to_contain_text("None.")


# ------------------------------------------------------------------- tests


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_join_pay_and_find_the_ticket(live_server, new_context, screenshot, javascript):
    event_id, person = make_event(live_server)
    event_url = f"{live_server.url}/events/{event_id}"
    page = browser_for(live_server, new_context, person, javascript=javascript)

    take_offer(page, event_url)
    go_to_payment_page(page)
    pay(page)

    page.get_by_role("link", name="View your ticket").click()
    ticket_id = expect_valid_ticket(page)
    code = page.locator("#ticket").get_attribute("data-code")
    # The code shown is this ticket's own, the one the door accepts.
    assert page.locator("#ticket code.door-code").inner_text() == f"{code[:5]}-{code[5:]}"
    with live_server.app_context(SECRET_KEY=live_server.env["SECRET_KEY"]):
        ticket = db.session.get(Ticket, ticket_id)
        assert (ticket.door_code, ticket.event_id) == (code, event_id)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, f"payment-360x740-ticket-{'js' if javascript else 'no-js'}")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My tickets").click()
    page.wait_for_url(live_server.url + "/tickets")
    upcoming = page.locator("section[aria-labelledby=group-upcoming]")
    link = upcoming.get_by_role("link", name=re.compile(r"^Paid Gig "))
    expect(link).to_have_attribute("href", f"/tickets/{ticket_id}")
    expect(upcoming).to_contain_text("valid · paid £12.50")

    # The event page knows too; paying again is not offered.
    page.goto(event_url)
    expect_status(page, "purchased")
    expect(page.get_by_role("button", name=re.compile("^Buy"))).to_have_count(0)


def test_a_declined_card_or_cancel_keeps_the_offer_held(live_server, new_context):
    event_id, person = make_event(live_server)
    event_url = f"{live_server.url}/events/{event_id}"
    page = browser_for(live_server, new_context, person)

    take_offer(page, event_url)
    go_to_payment_page(page)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Pay with a card that is declined").click()
    assert posted.value.status == 402
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Your card was declined")
    expect(alert).to_contain_text("No money was taken")
    assert PAY_PAGE.search(page.url)
    # Still payable from here.
    expect(page.get_by_role("button", name="Pay £12.50")).to_be_visible()

    page.goto(event_url)
    expect_status(page, "offered")
    no_ticket_yet(page, live_server)

    page.goto(event_url)
    go_to_payment_page(page)
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(event_url)
    expect(page.locator(".flash-info")).to_contain_text("Payment cancelled")
    expect_status(page, "offered")
    expect(page.get_by_role("button", name="Buy now — £12.50")).to_be_visible()

    # The same held offer can still be paid for after both.
    go_to_payment_page(page)
    pay(page)


def test_a_free_event_issues_the_ticket_without_a_payment_page(live_server, new_context):
    event_id, person = make_event(live_server, price_pence=0)
    event_url = f"{live_server.url}/events/{event_id}"
    page = browser_for(live_server, new_context, person)
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))

    page.goto(event_url)
    page.get_by_role("button", name="Buy ticket").click()  # one click: nothing to pay
    expect_valid_ticket(page)
    expect(page.locator("#ticket")).to_contain_text("Free")
    assert not [url for url in visited if "/pay/" in url or "/checkout/" in url], visited

    page.goto(event_url)
    expect_status(page, "purchased")


def test_payment_pages_have_no_serious_accessibility_violations(
    live_server, new_context, run_axe
):
    event_id, person = make_event(live_server)
    page = browser_for(live_server, new_context, person)

    take_offer(page, f"{live_server.url}/events/{event_id}")
    go_to_payment_page(page)
    assert run_axe(page) == [], "local payment page"
    page.get_by_role("button", name="Pay with a card that is declined").click()
    expect(page.get_by_role("alert")).to_contain_text("declined")
    assert run_axe(page) == [], "local payment page, card declined"
    pay(page)
    assert run_axe(page) == [], "checkout success page"
    page.get_by_role("link", name="View your ticket").click()
    expect_valid_ticket(page)
    assert run_axe(page) == [], "ticket page"
    page.goto(live_server.url + "/tickets")
    assert run_axe(page) == [], "my tickets"
