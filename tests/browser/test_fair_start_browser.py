"""Fair start in a real browser, JavaScript on and off: the countdown to the on-sale, the
lobby page, the page turning into an offer or a place in line at the on-sale without a
reload (JS) or by its own refresh (no JS), and the public draw page.

Runs against the real app (gunicorn + Huey consumer, see ``conftest.py``); the event, its
on-sale a few seconds ahead, and the accounts come from ``flask seed``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.pages import browser_for
from tests.support.seeding import event_words, new_person, seed, unique, user_words

pytestmark = pytest.mark.browser

# Long enough to sign in and look at the lobby first; short enough for a test.
ON_SALE_IN_SECONDS = 25
# The on-sale, the page's spread first ask after it (a few seconds for a small lobby) and the
# request: well under a minute.
AFTER_ON_SALE = 60_000


def test_the_lobby_counts_down_then_turns_into_offers_and_places(live_server, new_context,
                                                                  run_axe):
    organizer = new_person("organizer")
    buyers = [new_person(f"lobby{n}-") for n in range(3)]
    words = [w for person in (*buyers, organizer) for w in user_words(person)]
    words += event_words(organizer, name=unique("Fair Start Gig "), capacity=1,
                         sale_starts_in_minutes=ON_SALE_IN_SECONDS / 60)
    event_id = int(seed(live_server, *words)[-1])
    url = f"{live_server.url}/events/{event_id}"

    # With JavaScript: a countdown, the lobby, then (no reload) an offer or a place.
    pages = []
    for person, javascript in zip(buyers, (True, True, False)):
        page = browser_for(live_server, new_context, person, javascript=javascript)
        page.goto(url)
        if javascript:
            expect(page.locator(".facts .countdown")).to_have_text(re.compile(r"^0:[0-2]\d$"))
        page.get_by_role("button", name="Join the lobby").click()
        status = page.locator("#queue-status")
        expect(status).to_have_attribute("data-status", "lobby")
        expect(status).to_have_attribute("data-entry-ref", re.compile(r"^[0-9a-f]{16}$"))
        expect(status).to_contain_text("arriving earlier gives no advantage")
        if javascript:
            expect(status.locator(".countdown")).to_be_visible()
        else:  # the page refreshes itself when its server-chosen moment comes
            expect(page.locator('noscript meta[http-equiv="refresh"]')).to_have_count(1)
        pages.append(page)
    assert run_axe(pages[0]) == [], "the lobby page"
    for page in pages[:2]:
        page.evaluate("window.__notReloaded = true")

    for page in pages:
        expect(page.locator("#queue-status")).to_have_attribute(
            "data-status", re.compile(r"^(offered|waiting)$"), timeout=AFTER_ON_SALE)
    statuses = [page.locator("#queue-status").get_attribute("data-status") for page in pages]
    assert sorted(statuses) == ["offered", "waiting", "waiting"]  # one ticket, three people
    positions = sorted(int(page.locator("#queue-status").get_attribute("data-position"))
                       for page in pages if statuses[pages.index(page)] == "waiting")
    assert positions == [2, 3]
    assert all(page.evaluate("window.__notReloaded === true") for page in pages[:2])

    # The draw page: everyone's reference with their place, the seed matching the commitment.
    draw = pages[0]
    draw.goto(f"{live_server.url}/events/{event_id}/draw")
    record = draw.locator("#draw")
    expect(record).to_have_attribute("data-status", "drawn")
    expect(record).to_have_attribute("data-seed", re.compile(r"^[0-9a-f]{64}$"))
    expect(draw.locator("tr[data-place]")).to_have_count(3)
    expect(draw.locator("tr.mine")).to_contain_text("(you)")
    assert run_axe(draw) == [], "the draw page"
