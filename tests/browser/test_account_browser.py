"""Accounts in a real browser, with JavaScript on and off: a newcomer signs up, confirms
their address from the email the site wrote, and joins a queue; someone who forgot their
password asks for a link, chooses a new one and signs in with it.

Runs against the real app (gunicorn + Huey consumer, see ``conftest.py``): the emails are
the ``.eml`` files its worker writes to ``instance/mail/``, with no SMTP server.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.pages import PHONE, email_link, sign_in, sign_up
from tests.support.seeding import create_accounts, new_person, publish_event

pytestmark = pytest.mark.browser

JS = pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])


def no_serious_violations(run_axe, page, label: str) -> None:
    assert run_axe(page) == [], label


@JS
def test_a_newcomer_signs_up_confirms_their_address_and_joins_a_queue(
        live_server, new_context, run_axe, javascript):
    event_id, _ = publish_event(live_server, capacity=3, name="Newcomers' Gig ")
    page = new_context(java_script_enabled=javascript).new_page()
    person = sign_up(page, live_server.url, confirm=False)

    # Before confirming: the event page says what to do instead of offering a ticket.
    page.goto(f"{live_server.url}/events/{event_id}")
    status = page.locator("#queue-status")
    expect(status).to_contain_text("Confirm your email address to get a ticket")
    expect(status).to_contain_text(person.email)
    expect(page.get_by_role("button", name="Buy ticket")).to_have_count(0)
    if javascript:
        no_serious_violations(run_axe, page, "event page, address not confirmed")

    # The link from the email the site wrote (and logged: no mail server), and its button.
    link = email_link(live_server.url, person, "Confirm your email address")
    assert link.removeprefix(live_server.url) in live_server.logs()
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    if javascript:
        no_serious_violations(run_axe, page, "confirmation page")
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{person.email} is confirmed")

    page.goto(f"{live_server.url}/events/{event_id}")
    page.get_by_role("button", name="Buy ticket").click()
    page.wait_for_url(re.compile(r"/pay/local/"))  # held, and straight on to pay
    page.goto(f"{live_server.url}/events/{event_id}")
    expect(status).to_have_attribute("data-status", "offered")
    expect(status).to_contain_text("A ticket is held for you")


@JS
def test_a_forgotten_password_is_reset_from_the_emailed_link(live_server, new_context,
                                                             run_axe, javascript):
    person = new_person()
    create_accounts(live_server, person)
    page = new_context(java_script_enabled=javascript).new_page()

    page.goto(live_server.url + "/login")
    page.get_by_role("link", name="Forgotten your password?").click()
    if javascript:
        no_serious_violations(run_axe, page, "forgot password page")
    page.get_by_label("Email").fill(person.email.upper())
    page.get_by_role("button", name="Send me a link").click()
    expect(page.locator(".flash")).to_contain_text(f"If an account uses {person.email}")

    page.goto(email_link(live_server.url, person, "Choose a new password"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    if javascript:
        no_serious_violations(run_axe, page, "reset page")
    person.password = "a brand new password"
    page.get_by_label("New password").fill(person.password)
    page.get_by_role("button", name="Save my new password").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash-success")).to_contain_text("Sign in with your new password")

    sign_in(page, live_server.url, person)


def test_the_account_page_works_and_signing_out_everywhere_ends_other_browsers(
        live_server, new_context, run_axe):
    laptop = new_context(viewport=PHONE).new_page()  # a phone, as it happens
    person = sign_up(laptop, live_server.url)  # confirmed, by its emailed link
    phone = new_context(java_script_enabled=False).new_page()
    sign_in(phone, live_server.url, person)

    laptop.get_by_role("link", name="Account").click()
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Your account")
    expect(laptop.locator("main")).to_contain_text("signed in on 2 browsers")
    no_serious_violations(run_axe, laptop, "account page")
    assert laptop.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    laptop.get_by_role("button", name="Sign out everywhere").click()
    expect(laptop.locator(".flash-success")).to_contain_text("signed out everywhere")

    phone.goto(live_server.url + "/account")
    expect(phone).to_have_url(re.compile(r"/login\?next="))


def test_pages_of_a_stale_link_say_what_to_do(live_server, new_context):
    page = new_context().new_page()
    person = sign_up(page, live_server.url)  # the link is used now
    link = email_link(live_server.url, person, "Confirm your email address")

    response = page.goto(link)

    assert response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("This link can't be used")
    expect(page.locator("main")).to_contain_text("already been used")
