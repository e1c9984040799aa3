"""The event page's live queue widget in a real browser: two buyers, one ticket.

HTMX polls ``GET /events/<id>/status`` while the viewer waits or holds an offer, so a page
that is never reloaded follows the queue: a released or expired offer passes to the next
buyer, the countdown runs, polling stops once nothing can change, and an unchanged status
is not re-rendered. Without JavaScript the same story works with plain forms (303 + GET)
and a ``<noscript>`` meta refresh.

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
    publish_event,
    seed,
    ticket_words,
)
from tests.support.web_user import Answers, WebUser

pytestmark = pytest.mark.browser

PRICE_PENCE = 1250
# Offers on the module's server outlast any test here; the expiry test starts its own.
LONG_OFFER_SECONDS = "300"
SHORT_OFFER_SECONDS = "6"
# A poll every 2 s, a request and a swap: a few seconds is plenty for a change to show.
LIVE = 8_000


@pytest.fixture(scope="module")
def live_server_env() -> dict:
    return {"TICKET_OFFER_SECONDS": LONG_OFFER_SECONDS}


# ------------------------------------------------------------------ helpers


def make_event(server, *roles: str, capacity: int = 1,
               organizer: Person | None = None) -> tuple[int, list[Person]]:
    """A published event (tomorrow, £12.50) and one fresh buyer per role."""
    return publish_event(server, *roles, price_pence=PRICE_PENCE, capacity=capacity,
                         name="Queue Gig ", organizer=organizer)


def event_url(server, event_id: int) -> str:
    return f"{server.url}/events/{event_id}"


def queue_status(page: Page):
    return page.locator("#queue-status")


def expect_status(page: Page, status: str, timeout: float = LIVE) -> None:
    expect(queue_status(page)).to_have_attribute("data-status", status, timeout=timeout)


def mark_page(page: Page) -> None:
    """A marker that survives HTMX swaps but not a navigation or reload."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded or navigated"


def complete_purchase(server, *, event_id: int, person: Person) -> None:
    """Turn ``person``'s live offer into a ticket, as a paid checkout would."""
    seed(server, *ticket_words(event_id, person))


def status_requests(page: Page) -> list:
    """Every request the page makes to a ``/status`` endpoint from now on."""
    seen: list = []
    page.on("request", lambda request: seen.append(request)
            if re.search(r"/events/\d+/status$", request.url) else None)
    return seen


def js_problems(page: Page) -> list[str]:
    """Script errors and CSP refusals on ``page`` from now on."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    return problems


def hold_a_ticket(page: Page, url: str) -> None:
    """"Buy ticket" while one is free: it is held and the payment page opens (one click,
    issue 15); then back to the event page, where the offer shows."""
    page.get_by_role("button", name="Buy ticket").click()
    page.wait_for_url(re.compile(r"/pay/local/"))
    page.goto(url)


def release_offer(page: Page) -> None:
    """"Release this ticket…", then "Yes, release it" on the confirmation page; back on
    the event page."""
    page.get_by_role("link", name="Release this ticket…").click()
    page.get_by_role("button", name="Yes, release it").click()
    page.wait_for_url(re.compile(r"/events/\d+$"))


NO_SCRIPT_REFRESH = 'noscript meta[http-equiv="refresh"]'
ANY = re.compile(".*")


# ------------------------------------------------------------------- tests


def test_a_released_offer_passes_to_the_waiting_buyer_without_a_reload(
    live_server, new_context, run_axe
):
    event_id, (ann_person, bob_person) = make_event(live_server, "ann", "bob", capacity=1)
    url = event_url(live_server, event_id)
    ann = browser_for(live_server, new_context, ann_person)
    bob = browser_for(live_server, new_context, bob_person)
    ann_problems, bob_problems = js_problems(ann), js_problems(bob)

    ann.goto(url)
    expect_status(ann, "none")
    expect(ann.locator("#availability")).to_have_attribute("data-remaining", "1")
    hold_a_ticket(ann, url)
    expect_status(ann, "offered")
    expect(ann.locator("#availability")).to_have_attribute("data-reserved", "1")
    expect(queue_status(ann)).to_contain_text(
        re.compile(r"A ticket is held for you until \d\d:\d\d (GMT|BST)"))
    expect(ann.get_by_role("button", name="Buy now — £12.50")).to_be_visible()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z",
                        queue_status(ann).get_attribute("data-offer-expires"))

    bob.goto(url)
    expect(bob.locator("#availability")).to_have_attribute("data-sold-out", "true")
    bob.get_by_role("button", name="Join the waiting list").click()
    expect_status(bob, "waiting")
    # Ann's live offer is ahead of Bob in the line.
    expect(queue_status(bob)).to_have_attribute("data-position", "2")
    expect(queue_status(bob)).to_contain_text("You are number 2 in line")
    expect(queue_status(bob)).to_contain_text("1 person ahead of you")
    expect(bob.locator("#event-status")).to_have_attribute("hx-trigger", re.compile(r"^every 2s"))
    # JavaScript on: the noscript refresh is inert text, never a live meta element.
    expect(bob.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    assert run_axe(bob) == [], "waiting page"
    assert run_axe(ann) == [], "offered page"

    mark_page(bob)
    release_offer(ann)
    expect_status(ann, "expired")
    expect(queue_status(ann)).to_contain_text("You released your ticket offer.")

    # Bob's page, never reloaded, picks the offer up from its poll.
    expect_status(bob, "offered")
    assert_not_reloaded(bob)
    expect(bob.get_by_role("button", name="Buy now — £12.50")).to_be_visible()
    expect(bob.locator(".countdown")).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(bob.locator("#queue-announcer")).to_have_text(
        "A ticket is held for you. Buy it before the offer ends.")
    assert run_axe(bob) == [], "offered page after a live update"
    assert ann_problems == [] and bob_problems == []


def test_an_offer_counts_down_then_expires_and_passes_on_without_a_reload(
    start_server, new_context, screenshot
):
    server = start_server(TICKET_OFFER_SECONDS=SHORT_OFFER_SECONDS)
    event_id, (ann_person, bob_person) = make_event(server, "ann", "bob", capacity=1)
    url = event_url(server, event_id)
    ann = browser_for(server, new_context, ann_person, viewport=PHONE)
    bob = browser_for(server, new_context, bob_person)

    # Both pages are open before the short offer starts, so Bob is in line well before its end.
    ann.goto(url)
    bob.goto(url)
    mark_page(bob)
    hold_a_ticket(ann, url)
    mark_page(ann)
    expect_status(ann, "offered")
    bob.get_by_role("button", name="Buy ticket").click()  # the same join form
    expect_status(bob, "waiting")
    expect(queue_status(bob)).to_have_attribute("data-position", "2")

    countdown = ann.locator(".countdown")
    expect(countdown).to_be_visible()
    first = countdown.inner_text()
    assert re.fullmatch(rf"0:0[0-{SHORT_OFFER_SECONDS}]", first), first
    expect(countdown).not_to_have_text(first, timeout=3_000)
    assert re.fullmatch(r"\d+:\d\d", countdown.inner_text())
    screenshot(ann, "live-queue-360x740-offered-counting-down")

    # The deadline passes: the widget says so, and the ticket moves on to Bob.
    expect_status(ann, "expired", timeout=int(SHORT_OFFER_SECONDS) * 1000 + LIVE)
    expect(queue_status(ann)).to_contain_text(
        "Your ticket offer expired and passed to the next person in line.")
    expect(ann.locator("#queue-announcer")).to_have_text("Your place in line has ended.")
    expect_status(bob, "offered")
    assert_not_reloaded(ann)
    assert_not_reloaded(bob)
    screenshot(ann, "live-queue-360x740-offer-expired")


def test_the_fourth_join_in_the_window_is_refused_inside_the_widget(live_server, new_context):
    event_id, (person,) = make_event(live_server, "eager", capacity=5)
    page = browser_for(live_server, new_context, person)
    page.goto(event_url(live_server, event_id))
    widget = page.locator("#event-status")

    for _ in range(3):
        hold_a_ticket(page, event_url(live_server, event_id))
        expect_status(page, "offered")
        release_offer(page)
        expect_status(page, "expired")

    mark_page(page)
    with page.expect_response(re.compile(r"/join$")) as answer:
        page.get_by_role("button", name="Buy ticket").click()
    assert answer.value.status == 429
    expect(widget.get_by_role("alert")).to_have_text(re.compile(
        r"^You've joined the waiting list too many times\. "
        r"Please wait \d+ minutes before trying again\.$"))
    expect_status(page, "expired")
    expect(page.locator("#availability")).to_have_attribute("data-reserved", "0")
    assert_not_reloaded(page)


def test_the_queue_works_without_javascript(live_server, new_context):
    event_id, (ann_person, bob_person) = make_event(live_server, "ann", "bob", capacity=1)
    url = event_url(live_server, event_id)
    ann = browser_for(live_server, new_context, ann_person, javascript=False)
    bob = browser_for(live_server, new_context, bob_person, javascript=False)

    def post_and_follow(page: Page, button: str, *, leads_to: str = url) -> None:
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.get_by_role("button", name=button).click()
        assert posted.value.status == 303
        location = posted.value.header_value("location")
        assert re.search(leads_to, location), location
        page.wait_for_load_state()
        assert re.search(leads_to, page.url), page.url

    def release(page: Page) -> None:
        page.get_by_role("link", name="Release this ticket…").click()
        expect(page.get_by_role("heading", name="Release your ticket?")).to_be_visible()
        post_and_follow(page, "Yes, release it", leads_to=f"/events/{event_id}$")

    ann.goto(url)
    expect_status(ann, "none")
    expect(ann.locator(NO_SCRIPT_REFRESH)).to_have_count(0)
    post_and_follow(ann, "Buy ticket", leads_to=r"/pay/local/cs_local_")  # one click to pay
    ann.goto(url)
    expect_status(ann, "offered")
    # The page refreshes itself at the cadence the server chose: every 2 s for a holder.
    expect(queue_status(ann)).to_have_attribute("data-poll-seconds", "2")
    expect(ann.locator(NO_SCRIPT_REFRESH)).to_have_attribute("content", "2")
    # No script: the offer's end is a clock time, the countdown stays hidden.
    expect(queue_status(ann)).to_contain_text(re.compile(r"held for you until \d\d:\d\d (GMT|BST)"))
    expect(ann.locator(".countdown-line")).to_be_hidden()

    bob.goto(url)
    post_and_follow(bob, "Join the waiting list", leads_to=f"/events/{event_id}$")
    expect_status(bob, "waiting")
    # No flash message (the join's 303 sets no cookie): the status itself says it.
    expect(bob.locator(".flash-success")).to_have_count(0)
    expect(queue_status(bob)).to_contain_text("You are number 2 in line")
    expect(queue_status(bob)).to_have_attribute("data-position", "2")
    expect(queue_status(bob)).to_have_attribute("data-poll-seconds", "2")  # next in line
    expect(bob.locator(NO_SCRIPT_REFRESH)).to_have_attribute("content", "2")

    release(ann)
    expect_status(ann, "expired")
    expect(queue_status(ann)).to_contain_text("You released your ticket offer.")
    expect(ann.locator(NO_SCRIPT_REFRESH)).to_have_count(0)

    # What the meta refresh would do after 2 s.
    bob.reload()
    expect_status(bob, "offered")
    expect(bob.locator(NO_SCRIPT_REFRESH)).to_have_count(1)
    expect(bob.get_by_role("button", name="Buy now — £12.50")).to_be_visible()

    release(bob)
    expect_status(bob, "expired")
    expect(bob.locator(NO_SCRIPT_REFRESH)).to_have_count(0)
    expect(bob.get_by_role("button", name="Buy ticket")).to_be_visible()


def test_screenshots_of_every_state_on_a_phone_and_polling_stops_at_the_last(
    live_server, new_context, screenshot
):
    event_id, (holder_person, person) = make_event(live_server, "holder", "phone", capacity=1)
    url = event_url(live_server, event_id)
    holder = browser_for(live_server, new_context, holder_person)
    page = browser_for(live_server, new_context, person, viewport=PHONE)
    widget = page.locator("#event-status")

    def shot(state: str) -> None:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], state
        screenshot(page, f"live-queue-360x740-{state}")

    page.goto(url)
    expect_status(page, "none")
    shot("none")

    holder.goto(url)
    hold_a_ticket(holder, url)
    expect_status(holder, "offered")

    page.reload()
    page.get_by_role("button", name="Join the waiting list").click()
    expect_status(page, "waiting")
    expect(widget).to_have_attribute("hx-trigger", re.compile(r"^every 2s"))
    shot("waiting")

    release_offer(holder)
    expect_status(page, "offered")
    expect(widget).to_have_attribute("hx-trigger", re.compile(r"^every 2s"))
    expect(page.locator(".countdown")).to_have_text(re.compile(r"^\d+:\d\d$"))
    shot("offered")

    release_offer(page)
    expect_status(page, "expired")
    shot("expired")

    hold_a_ticket(page, url)
    expect_status(page, "offered")
    mark_page(page)
    complete_purchase(live_server, event_id=event_id, person=person)
    expect_status(page, "purchased")  # the poll brings it in
    assert_not_reloaded(page)
    expect(page.get_by_role("link", name="View your ticket")).to_be_visible()
    shot("purchased")

    # Final: the swapped-in widget has no trigger, and nothing polls any more.
    expect(widget).not_to_have_attribute("hx-trigger", ANY)
    polls = status_requests(page)
    page.wait_for_timeout(3_000)
    assert polls == [], "a purchased ticket's page kept polling"
    page.reload()
    expect_status(page, "purchased")
    expect(widget).not_to_have_attribute("hx-trigger", ANY)


def test_polling_stops_when_the_event_is_cancelled_or_past(live_server, new_context):
    organizer = new_person("organizer")
    event_id, (person,) = make_event(live_server, "buyer", capacity=1, organizer=organizer)
    page = browser_for(live_server, new_context, person)
    page.goto(event_url(live_server, event_id))
    hold_a_ticket(page, event_url(live_server, event_id))
    expect_status(page, "offered")
    widget = page.locator("#event-status")
    expect(widget).to_have_attribute("hx-trigger", re.compile(r"^every 2s"))
    mark_page(page)

    # The organizer cancels; another event of theirs has just started.
    owner = WebUser(live_server.url, organizer.email, organizer.password, Answers())
    owner.sign_in()
    assert owner.post(f"/seller/events/{event_id}/cancel").status_code == 303
    (past_id,) = map(int, seed(live_server, *event_words(
        organizer, name="Already on", description="", location="Here", price_pence=500,
        capacity=10, starts_in_hours=-1)))
    expect(queue_status(page)).to_contain_text("This event was cancelled.", timeout=LIVE)
    expect(page.locator("#availability")).to_have_attribute("data-remaining", "0")
    expect(widget).not_to_have_attribute("hx-trigger", ANY)
    assert_not_reloaded(page)
    polls = status_requests(page)
    page.wait_for_timeout(3_000)
    assert polls == [], "a cancelled event's page kept polling"

    page.goto(event_url(live_server, past_id))
    expect(queue_status(page)).to_contain_text("This event has already taken place.")
    expect(widget).not_to_have_attribute("hx-trigger", ANY)
    expect(widget.get_by_role("button")).to_have_count(0)


def test_an_unchanged_status_is_revalidated_not_re_rendered(live_server, new_context):
    event_id, (holder_person, person) = make_event(live_server, "holder", "waiter", capacity=1)
    url = event_url(live_server, event_id)
    holder = browser_for(live_server, new_context, holder_person)
    holder.goto(url)
    hold_a_ticket(holder, url)
    expect_status(holder, "offered")
    holder.goto(live_server.url + "/")  # only the waiter's page polls this event now

    page = browser_for(live_server, new_context, person)
    page.goto(url)
    page.get_by_role("button", name="Join the waiting list").click()
    expect_status(page, "waiting")
    polls = status_requests(page)
    page.evaluate("document.getElementById('event-status').__stash = 'same node'")

    page.wait_for_timeout(5_000)  # two polls or more; nothing changes meanwhile
    assert len(polls) >= 2, f"expected a poll every 2 s, saw {len(polls)}"
    assert page.evaluate("document.getElementById('event-status').__stash") == "same node", \
        "an unchanged status was swapped in again"
    # After the first poll the browser revalidates with the ETag it was given ...
    later = polls[1:]
    sent = [request.all_headers().get("if-none-match") for request in later]
    assert all(sent), f"polls without If-None-Match: {sent}"
    # ... and the server answers 304 (the browser hands htmx the cached body as a 200).
    answered = re.findall(rf'"GET /events/{event_id}/status HTTP/1.1" (\d+)',
                          live_server.logs())
    assert answered[-len(later):] == ["304"] * len(later), answered

    # A real change still comes through, as a new node.
    holder.goto(url)
    release_offer(holder)
    expect_status(page, "offered")
    assert page.evaluate("document.getElementById('event-status').__stash") is None
