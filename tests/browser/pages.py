"""What a person does in the browser, as small steps the browser tests share.

Each step goes through the real pages and forms (labels and buttons, as a user finds them)
and checks that it worked, so a test reads as the story it tells. People and events made
without a browser come from ``tests/support/seeding.py``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support import mailbox
from tests.support.live_server import running_at
from tests.support.seeding import Person, new_person

# The phone every phone-sized browser test uses.
PHONE = {"width": 360, "height": 740}


def sign_up(page: Page, base_url: str, person: Person | None = None, *,
            confirm: bool = True) -> Person:
    """Create an account through the sign-up form; the browser is then signed in. With
    ``confirm`` (the default) the address is then confirmed, as the person would: the link
    in the email the server wrote (``confirm_email``)."""
    person = person or new_person()
    page.goto(base_url + "/signup")
    page.get_by_label("Your name").fill(person.name)
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Welcome to Ticket Hub, {person.name}")
    if confirm:
        confirm_email(page, base_url, person)
    return person


def email_link(base_url: str, person: Person, subject: str) -> str:
    """The link in the newest email to ``person`` with ``subject`` that the server at
    ``base_url`` wrote to its ``instance/mail/`` (its worker sends it within seconds)."""
    message = mailbox.latest(running_at(base_url).instance_path, person.email, subject,
                             timeout=15)
    return base_url + mailbox.link_path(message)


def confirm_email(page: Page, base_url: str, person: Person) -> None:
    """Follow the link in the confirmation email and press its button."""
    page.goto(email_link(base_url, person, "Confirm your email address"))
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{person.email} is confirmed")


def sign_in(page: Page, base_url: str, person: Person) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Signed in as {person.name}")


def event_date(days_ahead: int = 30) -> str:
    """A start time ``days_ahead`` from now, as the form's ``YYYY-MM-DDTHH:MM``."""
    moment = datetime.now(timezone.utc) + timedelta(days=days_ahead)
    return moment.replace(hour=19, minute=30).strftime("%Y-%m-%dT%H:%M")


def fill_event_form(page: Page, *, name: str, description: str = "A night out.",
                    location: str = "Brixton, London", starts: str | None = None,
                    price: str = "12.50", total_tickets: int | str = 50,
                    image: Path | None = None) -> None:
    page.get_by_label("Event name").fill(name)
    page.get_by_label("Description").fill(description)
    page.get_by_label("Location").fill(location)
    page.get_by_label("Date and time", exact=True).fill(starts or event_date())
    page.get_by_label("Price (£)").fill(price)
    page.get_by_label("Number of tickets").fill(str(total_tickets))
    if image is not None:
        page.get_by_label("Image").set_input_files(str(image))


def create_event(page: Page, base_url: str, **fields) -> int:
    """Publish an event through the organizer's form; return its id (the page is the event's)."""
    page.goto(base_url + "/seller/events/new")
    fill_event_form(page, **fields)
    page.get_by_role("button", name="Save event").click()
    page.wait_for_url(re.compile(r"/events/\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("is published")
    return int(page.url.rsplit("/", 1)[1])


def browser_for(server, new_context, person: Person, *, javascript: bool = True,
                viewport: dict | None = None) -> Page:
    """``person``, signed in, in a browser context of their own."""
    options = {"java_script_enabled": javascript}
    if viewport:
        options["viewport"] = viewport
    page = new_context(**options).new_page()
    sign_in(page, server.url, person)
    return page
