"""The waiting room's cadence in a real browser (issue 12): each viewer's page asks again
when the server says (``data-poll-seconds``, the HTMX trigger, the sentence on the page and
the no-JS meta refresh all agree), far back rarely, near the front every 2 s; coming back
to the tab asks at once, and a hidden tab still learns of its offer.

A hidden tab is simulated: headless Chromium never hides a page, so ``document.hidden`` and
``document.visibilityState`` are overridden and ``visibilitychange`` is dispatched, as the
browser does when someone switches tabs and back.

Runs against the real app (gunicorn + Huey consumer, see ``conftest.py``), on SQLite and on
PostgreSQL; the queue is built and moved on with ``flask seed`` on the server's database.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import browser_for
from tests.support.postgres import create_database, drop_database
from tests.support.required import not_installed
from tests.support.seeding import (
    Person,
    event_words,
    join_words,
    new_person,
    release_words,
    seed,
    unique,
    user_words,
)

pytestmark = pytest.mark.browser

# No offer may run out while a test waits: the line must stay as the test built it.
LONG_OFFER_SECONDS = "600"
# The waiters ahead of the far-back viewer (behind one offer holder). With no pace measured
# yet each counts half a second, so the page asks again in about 40 s (±20 % jitter).
FAR_BACK = 80
# What any page far back must show: the slow end of the cadence, not the 2 s of the front.
SLOW_AT_LEAST = 20
# An immediate poll, its request and the swap: a few seconds at most.
SOON = 6_000
HELD = "A ticket is held for you. Buy it before the offer ends."
NO_SCRIPT_REFRESH = 'noscript meta[http-equiv="refresh"]'


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_server_env(request):
    """The module's server, on SQLite and then on PostgreSQL."""
    env = {"TICKET_OFFER_SECONDS": LONG_OFFER_SECONDS}
    if request.param == "sqlite":
        yield env
        return
    postgres_url = request.getfixturevalue("postgres_url")
    if postgres_url is None:
        not_installed("PostgreSQL")
    env["DATABASE_URL"] = create_database(postgres_url)
    try:
        yield env
    finally:  # after the server, which depends on this fixture, has stopped
        drop_database(env["DATABASE_URL"])


# ------------------------------------------------------------------ helpers


def line_up(server, people_ahead: int) -> tuple[int, list[Person], Person]:
    """An event with one ticket and a line for it: ``people_ahead`` people join (the first
    is offered the ticket, the rest wait), then the viewer. Accounts and event in one
    ``flask seed``, every join in one more."""
    organizer, viewer = new_person("organizer"), new_person("viewer")
    ahead = [new_person(f"ahead{n}-") for n in range(people_ahead)]
    words = [w for person in (*ahead, viewer, organizer) for w in user_words(person)]
    words += event_words(organizer, name=unique("Cadence Gig "), capacity=1)
    event_id = int(seed(server, *words)[-1])
    joined = seed(server, *(w for person in (*ahead, viewer) for w in join_words(event_id, person)))
    assert [line.split()[1] for line in joined] == ["offered"] + ["waiting"] * people_ahead
    return event_id, ahead, viewer


def release_everyone(server, event_id: int, people: list[Person]) -> None:
    """Everyone in ``people`` leaves the line or declines their offer, in that order."""
    seed(server, *(w for person in people for w in release_words(event_id, person)))


def queue_status(page: Page):
    return page.locator("#queue-status")


def poll_seconds(page: Page) -> int:
    return int(queue_status(page).get_attribute("data-poll-seconds"))


def expect_poll_note(page: Page, seconds: int) -> None:
    expect(queue_status(page).locator(".poll-note")).to_have_text(re.compile(
        rf"^This page checks your place again in about {seconds} seconds\b"))


def status_polls(page: Page) -> list:
    """Every request the page makes to its ``/status`` fragment from now on."""
    seen: list = []
    page.on("request", lambda request: seen.append(request.url)
            if re.search(r"/events/\d+/status$", request.url) else None)
    return seen


def set_tab_visible(page: Page, visible: bool) -> None:
    """What the browser does when someone switches away from the tab or back to it."""
    page.evaluate("""(visible) => {
        const state = visible ? "visible" : "hidden";
        Object.defineProperty(document, "hidden", {configurable: true, get: () => !visible});
        Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
        document.dispatchEvent(new Event("visibilitychange"));
    }""", visible)


# ------------------------------------------------------------------- tests


def test_far_back_the_page_asks_rarely_and_coming_back_to_the_tab_brings_the_offer(
    live_server, new_context, run_axe
):
    event_id, ahead, viewer = line_up(live_server, FAR_BACK)
    url = f"{live_server.url}/events/{event_id}"

    # Without JavaScript the page refreshes itself at the cadence it states.
    still = browser_for(live_server, new_context, viewer, javascript=False)
    still.goto(url)
    expect(queue_status(still)).to_have_attribute("data-status", "waiting")
    expect(queue_status(still)).to_have_attribute("data-position", str(FAR_BACK + 1))
    seconds = poll_seconds(still)
    assert seconds >= SLOW_AT_LEAST, f"far back yet asked every {seconds} s"
    expect(still.locator(NO_SCRIPT_REFRESH)).to_have_attribute("content", str(seconds))
    expect_poll_note(still, seconds)
    expect(queue_status(still)).to_contain_text("sooner as you near the front")

    page = browser_for(live_server, new_context, viewer)
    page.goto(url)
    loaded = time.monotonic()
    expect(queue_status(page)).to_have_attribute("data-status", "waiting")
    seconds = poll_seconds(page)
    assert seconds >= SLOW_AT_LEAST, f"far back yet asked every {seconds} s"
    expect(page.locator("#event-status")).to_have_attribute(
        "hx-trigger", f"every {seconds}s, visible-again")
    expect_poll_note(page, seconds)
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    assert run_axe(page) == [], "waiting far back, with the cadence stated"
    page.evaluate("window.__notReloaded = true")
    polls = status_polls(page)

    # Everyone ahead leaves and the holder declines: the ticket is the viewer's now ...
    release_everyone(live_server, event_id, ahead[1:] + ahead[:1])
    # ... but the page, not due to ask for a while yet, still shows the line.
    assert time.monotonic() - loaded < seconds - SOON / 1000, "too slow to tell the polls apart"
    expect(queue_status(page)).to_have_attribute("data-status", "waiting")
    assert polls == []

    # Switching away and back asks at once.
    set_tab_visible(page, False)
    set_tab_visible(page, True)
    expect(queue_status(page)).to_have_attribute("data-status", "offered", timeout=SOON)
    assert time.monotonic() - loaded < seconds, "the offer may have come from the timed poll"
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"
    expect(page.get_by_role("button", name="Buy now — £12.50")).to_be_visible()
    # An offer holder's page asks every 2 s, and says so in the tab's title too.
    expect(queue_status(page)).to_have_attribute("data-poll-seconds", "2")
    expect(page.locator("#event-status")).to_have_attribute("hx-trigger", "every 2s, visible-again")
    expect(page).to_have_title(re.compile(r"^Ticket held for you · "))

    # What the no-JS page's own refresh brings: the offer, and a 2 s refresh from then on.
    still.reload()
    expect(queue_status(still)).to_have_attribute("data-status", "offered")
    expect(still.locator(NO_SCRIPT_REFRESH)).to_have_attribute("content", "2")


def test_a_hidden_tab_is_retitled_when_the_offer_comes_and_announces_it_on_return(
    live_server, new_context, run_axe
):
    event_id, (holder,), viewer = line_up(live_server, 1)
    page = browser_for(live_server, new_context, viewer)
    page.goto(f"{live_server.url}/events/{event_id}")
    expect(queue_status(page)).to_have_attribute("data-status", "waiting")
    expect(queue_status(page)).to_have_attribute("data-position", "2")
    # Next in line: every 2 s, and the page says so.
    expect(queue_status(page)).to_have_attribute("data-poll-seconds", "2")
    expect(page.locator("#event-status")).to_have_attribute("hx-trigger", "every 2s, visible-again")
    expect_poll_note(page, 2)
    title = page.title()
    assert not title.startswith("Ticket held for you")

    set_tab_visible(page, False)
    release_everyone(live_server, event_id, [holder])

    # The hidden tab keeps polling: its title tells of the offer at once ...
    expect(page).to_have_title(f"Ticket held for you · {title}", timeout=SOON)
    assert page.evaluate("document.visibilityState") == "hidden"
    expect(queue_status(page)).to_have_attribute("data-status", "offered")
    # ... and the screen reader hears of it when the tab is seen again, not before.
    expect(page.locator("#queue-announcer")).not_to_have_text(HELD)
    set_tab_visible(page, True)
    expect(page.locator("#queue-announcer")).to_have_text(HELD)
    expect(page).to_have_title(f"Ticket held for you · {title}")
    assert run_axe(page) == [], "offered, after coming back to the tab"
