"""Who may do what: every route the app serves, once per role, with the status each gets.

After pretix's ``src/tests/control/test_permissions.py``: one table lists every route with
what an anonymous visitor, a buyer, another organizer and the event's owner get, and a test
fails when ``app.url_map`` has a route (or a method of one) the table does not list, so a
new route joins the table. Each row runs on a fresh site (``tests/support/world.py``): the
owner's event with the buyer's ticket, the buyer paying for a second event, another
organizer with an event of their own.

Beyond the status: a GET, a refusal (4xx) and the sign-in redirect change nothing in the
database; an anonymous visitor is sent to sign in and back; pages with private figures show
them only to those allowed (the answer is 200).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from extensions import db
from models import Ticket
from services import account_links
from tests.support.factories import PASSWORD, event_form
from tests.support.world import World, build_world

ROLES = ("anonymous", "buyer", "other organizer", "owner")


def every_role(method: str, route: str, *statuses: int) -> list[tuple[str, str, str, int]]:
    """One row per role: ``statuses`` in the order of ``ROLES``."""
    assert len(statuses) == len(ROLES), route
    return [(method, route, role, status) for role, status in zip(ROLES, statuses)]


# (method, route, role, expected status). {event} is the owner's event (the buyer holds a
# ticket to it), {second_event} the owner's event the buyer is paying for ({session}),
# {missing} an id nothing has.
PERMISSIONS = [
    #                method, route                                   anon  buyer other owner
    *every_role("GET", "/",                                          200, 200, 200, 200),
    *every_role("GET", "/healthz",                                   200, 200, 200, 200),
    *every_role("GET", "/static/app.css",                            200, 200, 200, 200),
    *every_role("GET", "/uploads/{image}",                           200, 200, 200, 200),
    *every_role("GET", "/events/{event}",                            200, 200, 200, 200),
    *every_role("GET", "/events/{event}/status",                     200, 200, 200, 200),
    *every_role("GET", "/events/{event}/availability",               200, 200, 200, 200),
    # The world's events have no on-sale time, so no draw to show (test_fair_start_views.py).
    *every_role("GET", "/events/{event}/draw",                       404, 404, 404, 404),
    *every_role("GET", "/events/{event}/calendar.ics",               200, 200, 200, 200),
    # Joining twice, or leaving without a place, is refused; the other organizer may buy.
    *every_role("POST", "/events/{event}/join",                      302, 409, 303, 409),
    # Releasing or leaving asks first: the buyer holding an offer sees the question; anyone
    # with nothing to give up is sent back to the event page.
    *every_role("GET", "/events/{event}/release",                    302, 303, 303, 303),
    *every_role("GET", "/events/{second_event}/release",             302, 200, 303, 303),
    *every_role("POST", "/events/{event}/release",                   302, 409, 409, 409),
    # "Buy now" without a live offer goes back to the event page.
    *every_role("POST", "/events/{event}/checkout",                  302, 303, 303, 303),
    *every_role("POST", "/events/{second_event}/checkout",           302, 303, 303, 303),
    # A checkout is its buyer's alone.
    *every_role("GET", "/pay/local/{session}",                       302, 200, 404, 404),
    *every_role("POST", "/pay/local/{session}",                      302, 303, 404, 404),
    *every_role("GET", "/checkout/success?session_id={session}",     302, 200, 404, 404),
    *every_role("GET", "/checkout/cancel?session_id={session}",      302, 303, 404, 404),
    *every_role("POST", "/webhooks/stripe",                          400, 400, 400, 400),
    *every_role("GET", "/tickets",                                   302, 200, 200, 200),
    *every_role("GET", "/tickets/{ticket}",                          302, 200, 404, 404),
    *every_role("GET", "/signup",                                    200, 302, 302, 302),
    *every_role("POST", "/signup",                                   303, 302, 302, 302),
    *every_role("GET", "/login",                                     200, 302, 302, 302),
    *every_role("POST", "/login",                                    303, 302, 302, 302),
    *every_role("POST", "/logout",                                   302, 303, 303, 303),
    # Emailed links work for whoever holds them, signed in or not; a forged one does nothing.
    *every_role("GET", "/password/forgot",                           200, 200, 200, 200),
    *every_role("POST", "/password/forgot",                          303, 303, 303, 303),
    *every_role("GET", "/password/reset/{reset_token}",              200, 200, 200, 200),
    *every_role("POST", "/password/reset/{reset_token}",             303, 303, 303, 303),
    *every_role("GET", "/password/reset/{bad_token}",                400, 400, 400, 400),
    *every_role("POST", "/password/reset/{bad_token}",               400, 400, 400, 400),
    *every_role("GET", "/verify/{verify_token}",                     200, 200, 200, 200),
    *every_role("POST", "/verify/{verify_token}",                    303, 303, 303, 303),
    *every_role("GET", "/verify/{bad_token}",                        400, 400, 400, 400),
    *every_role("POST", "/verify/{bad_token}",                       400, 400, 400, 400),
    *every_role("GET", "/account/email/{bad_token}",                 400, 400, 400, 400),
    *every_role("POST", "/account/email/{bad_token}",                400, 400, 400, 400),
    # One's own account; asking for a confirmation link again when confirmed says so.
    *every_role("GET", "/account",                                   302, 200, 200, 200),
    *every_role("POST", "/account",                                  302, 303, 303, 303),
    *every_role("POST", "/account/resend-confirmation",              302, 303, 303, 303),
    # Every signed-in user is an organizer of their own events.
    *every_role("GET", "/seller",                                    302, 200, 200, 200),
    *every_role("GET", "/seller/connect",                            302, 200, 200, 200),
    *every_role("POST", "/seller/connect",                           302, 303, 303, 303),
    *every_role("POST", "/seller/connect/dashboard",                 302, 303, 303, 303),
    *every_role("POST", "/seller/summary-email",                     302, 303, 303, 303),
    *every_role("GET", "/seller/events/new",                         302, 200, 200, 200),
    *every_role("POST", "/seller/events/new",                        302, 303, 303, 303),
    # An event's own pages are its owner's.
    *every_role("GET", "/seller/events/{event}",                     302, 403, 403, 200),
    *every_role("GET", "/seller/events/{event}/edit",                302, 403, 403, 200),
    *every_role("POST", "/seller/events/{event}/edit",               302, 403, 403, 303),
    *every_role("GET", "/seller/events/{event}/attendees.csv",       302, 403, 403, 200),
    *every_role("GET", "/seller/events/{event}/checkin",             302, 403, 403, 200),
    *every_role("POST", "/seller/events/{event}/checkin",            302, 403, 403, 200),
    *every_role("GET", "/seller/events/{event}/cancel",              302, 403, 403, 200),
    *every_role("POST", "/seller/events/{event}/cancel",             302, 403, 403, 303),
    # Publishing an event already published is refused with a message (303 back to it).
    *every_role("POST", "/seller/events/{event}/publish",            302, 403, 403, 303),
    *every_role("GET", "/seller/tickets/{ticket}/refund",            302, 404, 404, 200),
    *every_role("POST", "/seller/tickets/{ticket}/refund",           302, 404, 404, 303),
    # An event that does not exist is a 404, even for someone who owns events.
    ("GET", "/events/{missing}/calendar.ics", "owner", 404),
    ("GET", "/seller/events/{missing}", "owner", 404),
    ("GET", "/seller/events/{missing}/edit", "owner", 404),
    ("POST", "/seller/events/{missing}/edit", "owner", 404),
    ("GET", "/seller/events/{missing}/attendees.csv", "owner", 404),
    ("GET", "/seller/events/{missing}/checkin", "owner", 404),
    ("POST", "/seller/events/{missing}/checkin", "owner", 404),
]

# What a POST sends: the form a user would fill in ({placeholders} as in the routes).
BODIES = {
    "/signup": {"name": "Newcomer", "email": "newcomer@example.com", "password": PASSWORD},
    "/login": {"email": "secret@example.com", "password": PASSWORD},
    "/password/forgot": {"email": "secret@example.com"},
    "/password/reset/{reset_token}": {"password": "a brand new password"},
    "/password/reset/{bad_token}": {"password": "a brand new password"},
    "/account": {"action": "name", "name": "Changed name"},
    "/pay/local/{session}": {"action": "pay"},
    "/seller/events/new": event_form(name="Changed"),
    "/seller/events/{event}/edit": event_form(name="Changed"),
    "/seller/events/{missing}/edit": event_form(name="Changed"),
    "/seller/events/{event}/checkin": {"token": "{token}"},
    "/seller/events/{missing}/checkin": {"token": "{token}"},
    "/seller/summary-email": {"daily_sales_email": "y"},
}

# Pages with private figures: the text shows exactly when the answer is 200.
SHOWN_ONLY_WHEN_ALLOWED = {
    "/seller/events/{event}": "Platform fee",
    "/seller/events/{missing}": "Platform fee",
    "/seller/events/{event}/attendees.csv": "secret@example.com",
    "/seller/events/{missing}/attendees.csv": "secret@example.com",
}


def _ticket_used(world: World) -> None:
    assert db.session.get(Ticket, world.ticket_id).status == "used"


# What an allowed POST does that the tests above would not otherwise notice.
ALLOWED_EFFECTS = {("POST", "/seller/events/{event}/checkin"): _ticket_used}


def database_rows() -> dict[str, list[str]]:
    """Every row of every table, as committed."""
    db.session.rollback()
    return {table.name: sorted(map(repr, db.session.execute(select(table))))
            for table in db.metadata.sorted_tables}


def changes_nothing(method: str, status: int, location: str) -> bool:
    return method == "GET" or 400 <= status < 500 or location.startswith("/login?next=")


def link_tokens(world: World) -> dict[str, str]:
    """The buyer's emailed links (to confirm their address, to choose a new password), and
    one that was never signed."""
    moment = datetime.now(timezone.utc)
    return {"verify_token": account_links.make_token(world.buyer, account_links.VERIFY,
                                                     now=moment),
            "reset_token": account_links.make_token(world.buyer, account_links.RESET,
                                                    now=moment),
            "bad_token": "eyJ1IjoxfQ.forged.signature"}


@pytest.fixture
def world(app) -> World:
    return build_world()


@pytest.mark.parametrize("method, route, role, expected", PERMISSIONS,
                         ids=[f"{m} {r} as {who}" for m, r, who, _ in PERMISSIONS])
def test_who_may_do_what(client, auth, world, method, route, role, expected):
    person = {"buyer": world.buyer, "other organizer": world.other_organizer,
              "owner": world.owner}.get(role)
    if person is not None:
        auth.login(person)
    values = {**world.ids(), **link_tokens(world)}
    body = {name: value.format(**values) for name, value in BODIES.get(route, {}).items()}
    before = database_rows()

    response = client.open(route.format(**values), method=method,
                           data=body if method == "POST" else None)
    text = response.get_data().decode(errors="replace")  # a picture is not text
    response.close()  # a file sent (static, uploads) stays open until closed

    assert response.status_code == expected
    location = response.headers.get("Location", "")
    if role == "anonymous" and expected == 302:
        assert location.startswith("/login?next=")
    if changes_nothing(method, expected, location):
        assert database_rows() == before
    elif (method, route) in ALLOWED_EFFECTS:
        db.session.rollback()
        ALLOWED_EFFECTS[method, route](world)
    if route in SHOWN_ONLY_WHEN_ALLOWED:
        shown = SHOWN_ONLY_WHEN_ALLOWED[route] in text
        assert shown == (expected == 200)


def test_every_route_is_in_the_table(app):
    """A route (or a method of one) the app serves but the table does not list fails here:
    add its rows to PERMISSIONS, one per role."""
    urls = app.url_map.bind("localhost")
    placeholders = {"event": "1", "second_event": "2", "ticket": "1", "token": "t",
                    "session": "cs_1", "image": "a.png", "missing": "999999",
                    "verify_token": "v", "reset_token": "r", "bad_token": "b"}
    listed = set()
    for method, route, role, _ in PERMISSIONS:
        path = route.format(**placeholders).split("?")[0]
        rule, _ = urls.match(path, method=method, return_rule=True)
        listed.add((method, rule.rule, role))
    unlisted = [f"{method} {rule.rule} as {role}"
                for rule in app.url_map.iter_rules()
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
                for role in ROLES if (method, rule.rule, role) not in listed]
    assert not unlisted, "routes missing from PERMISSIONS:\n" + "\n".join(unlisted)
