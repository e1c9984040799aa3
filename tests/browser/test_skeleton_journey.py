"""The walking skeleton in a real browser: an organizer publishes an event, anyone finds it.

Runs against the real app (gunicorn + Huey consumer on a migrated SQLite database, see
``conftest.py``), with JavaScript on and off: every step must work as plain HTML.
"""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.pages import PHONE, create_event, fill_event_form, sign_in, sign_up
from tests.support.seeding import create_accounts, new_person, unique

pytestmark = pytest.mark.browser



def png(path, size=(320, 180), color=(30, 90, 200)):
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def problems_on(page) -> list[str]:
    """Collects script errors, CSP refusals and failed requests while the page is used.

    The app has no favicon; Chromium's automatic request for one is not a problem.
    """
    problems: list[str] = []

    def on_console(msg):
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(msg.text)

    def on_response(response):
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"{response.status} {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", on_response)
    return problems


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_organizer_publishes_an_event_that_anyone_can_find(
    live_server, new_context, tmp_path, screenshot, javascript
):
    page = new_context(java_script_enabled=javascript).new_page()
    problems = problems_on(page)
    name = unique("Skeleton Gig ")
    capacity = 40

    sign_up(page, live_server.url)
    create_event(page, live_server.url, name=name, price="12.50", total_tickets=capacity,
                 location="Brixton Academy, London", image=png(tmp_path / "poster.png"))

    # Anyone, signed in or not, finds it from the home page's search form.
    page.goto(live_server.url + "/")
    page.get_by_label("Search events").fill(name)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"\?q="))
    cards = page.locator(".cards > .card")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("£12.50")
    cards.first.get_by_role("link", name=name).click()
    page.wait_for_url(re.compile(r"/events/\d+$"))

    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator(".facts .price")).to_have_text("£12.50")
    availability = page.locator("#availability")
    expect(availability).to_have_attribute("data-remaining", str(capacity))
    expect(availability).to_have_attribute("data-total", str(capacity))
    expect(availability).to_have_attribute("data-sold-out", "false")
    hero = page.locator("img.hero")
    expect(hero).to_be_visible()
    assert hero.evaluate("img => img.complete && img.naturalWidth") > 0, "event image did not load"

    # Mobile first: at 360 px the page fits without sideways scrolling.
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, f"event-page-360x740-{'js' if javascript else 'no-js'}")

    if javascript:
        # htmx loaded from /static under the CSP.
        assert page.evaluate("typeof window.htmx") == "object"
    assert problems == []


def test_an_organizer_cannot_edit_another_organizers_event(live_server, new_context):
    owner = new_context().new_page()
    sign_up(owner, live_server.url)
    event_id = create_event(owner, live_server.url, name=unique("Owned Gig "))
    expect(owner.get_by_role("link", name="Edit event")).to_be_visible()

    rival = new_context().new_page()
    sign_up(rival, live_server.url)
    rival.goto(f"{live_server.url}/events/{event_id}")
    expect(rival.get_by_role("link", name="Edit event")).to_have_count(0)

    response = rival.goto(f"{live_server.url}/seller/events/{event_id}/edit")
    assert response.status in (403, 404)
    expect(rival.get_by_role("heading", level=1)).to_have_text(re.compile("Not allowed|Not found"))

    # Not even by posting the form straight to the URL.
    rival.goto(live_server.url + "/seller/events/new")
    token = rival.locator("form input[name=csrf_token]").last.get_attribute("value")
    posted = rival.request.post(
        f"{live_server.url}/seller/events/{event_id}/edit",
        multipart={"csrf_token": token, "name": "Hijacked", "description": "", "location": "X",
                   "event_date": "2099-01-01T20:00", "price": "1", "total_tickets": "1"},
        max_redirects=0,
    )
    assert posted.status in (403, 404)
    owner.goto(f"{live_server.url}/events/{event_id}")
    expect(owner.get_by_role("heading", level=1)).not_to_have_text("Hijacked")


def test_pages_have_no_serious_accessibility_violations(live_server, new_context, run_axe):
    page = new_context().new_page()
    found: dict[str, list] = {}

    def check(label: str) -> None:
        found[label] = run_axe(page)

    page.goto(live_server.url + "/signup")
    check("signup")
    page.goto(live_server.url + "/login")
    check("login")

    organizer = new_person("organizer")
    create_accounts(live_server, organizer)
    sign_in(page, live_server.url, organizer)
    page.goto(live_server.url + "/seller/events/new")
    check("event form")
    page.get_by_role("button", name="Save event").click()
    expect(page.locator(".field-error").first).to_be_visible()
    check("event form with errors")
    fill_event_form(page, name=unique("Accessible Gig "))
    page.get_by_role("button", name="Save event").click()
    page.wait_for_url(re.compile(r"/events/\d+$"))
    check("event page (organizer)")
    event_url = page.url
    page.goto(live_server.url + "/seller")
    check("seller dashboard")

    page = new_context().new_page()  # a visitor, not signed in
    page.goto(live_server.url + "/")
    check("home")
    page.goto(event_url)
    check("event page (visitor)")

    assert {label: v for label, v in found.items() if v} == {}
