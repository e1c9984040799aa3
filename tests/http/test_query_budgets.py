"""Query budgets for the hot paths (after pretix's ``assert_num_queries``): the status poll
every waiting buyer sends every few seconds, and the join a rush sends all at once.

The numbers are what these paths send today, pinned exactly. Lowering one is welcome
(change it here in the same commit); raising one needs a reason in the commit message.

Each path is counted as a user meets it: a signed-in buyer's request through the test
client, in an app context of its own (a fresh database session, as in a server), on SQLite
and on PostgreSQL (the lock the join takes differs between them). The follow-ups a join
hands to the task queue are not run inline here (the consumer runs them, not the request),
so only the request's own statements count.
"""

from __future__ import annotations

import pytest

from services import outbox
from tests.support.factories import make_event, make_user
from tests.support.queries import assert_num_queries
from tests.support.visitors import Visitor

# SQL statements per request, measured on 2026-11-25. SQLite counts its BEGIN IMMEDIATE
# and writes audit and outbox rows one statement each; PostgreSQL inserts them in one.
POLL_UNCHANGED_CLOCK_CACHED = {"sqlite": 0, "postgresql": 0}  # 304 from this process's clock
POLL_UNCHANGED_CLOCK_READ = {"sqlite": 1, "postgresql": 1}  # 304 after one indexed read
# 200: the widget rendered afresh from one statement, the event's row (its clock included)
# with the viewer's beside it (session, ticket, newest entry, place in its block):
# services/status_reads.py. The first poll of the event at a new queue version in a process
# also reads what every waiter shares (departures per block, the pace of ended offers): two
# statements more. (7 before the lean poll: the clock, the user, the event, the ticket, the
# entry, two for the place.)
POLL_CHANGED = {"sqlite": 3, "postgresql": 3}
POLL_CHANGED_SHARE_KEPT = {"sqlite": 1, "postgresql": 1}  # another waiter, same version
# 200 for someone still waiting: the words of the line (its length, the earliest offer's
# end, the estimate) come from the same reads.
POLL_CHANGED_STILL_WAITING = {"sqlite": 3, "postgresql": 3}
# A ticket held on joining goes straight on to the payment page (issue 15, point 6): the
# join and the checkout's start, which used to be a second request ("Buy now").
# The lean join (issue 12, point 4; 21/19 and 12/11 before it): the lock and every refusal
# check in one read on SQLite (BEGIN IMMEDIATE, then one SELECT) and two on PostgreSQL (the
# row lock, then the checks, read after it); then the entry, the event's counters, the audit
# rows and the outbox rows, one statement each; no event reloaded for the redirect. The
# checkout's start reads the live offer with all it needs in one SELECT, then one INSERT.
# (Each count includes the test's own reload of its expired ``event`` for the URL, and the
# signed-in user's load.)
JOIN_OFFERED_AT_ONCE = {"sqlite": 10, "postgresql": 10}
JOIN_TO_WAIT = {"sqlite": 7, "postgresql": 7}
# The local page's Pay, not the last ticket (issue 12, point 4): the session read, then one
# locked transaction (lock and checks as the join's; the entry, its block's departures, the
# ticket, the event's counters, the audit row, the outbox rows, the ledger, the session;
# 30/29 before, through the signed webhook: several commits, the ORM, a reload each).
PAY_LOCALLY = {"sqlite": 13, "postgresql": 12}


@pytest.fixture
def dialect(any_db_app) -> str:
    return any_db_app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0].split("+")[0]


@pytest.fixture(autouse=True)
def queue_not_run_inline(monkeypatch):
    """Follow-ups are handed over (as to Huey) but not run inside the request."""
    monkeypatch.setattr(outbox, "_dispatcher", lambda handover: None)


@pytest.fixture
def line(any_db_app):
    """A one-ticket event: the holder has the offer, the waiter is next in line."""
    event = make_event(total_tickets=1)
    holder, waiter = Visitor(any_db_app, make_user()), Visitor(any_db_app, make_user())
    assert join(holder, event).status_code == 303
    assert join(waiter, event).status_code == 303
    return event, holder, waiter


def join(buyer: Visitor, event):
    return buyer.open(f"/events/{event.id}/join", "POST")


def event_page(buyer: Visitor, event) -> str:
    return buyer.open(f"/events/{event.id}", "GET").get_data(as_text=True)


def poll(buyer: Visitor, event, etag: str | None = None):
    """What HTMX sends every few seconds (with the ETag of the last answer)."""
    headers = {"HX-Request": "true", **({"If-None-Match": etag} if etag else {})}
    return buyer.open(f"/events/{event.id}/status", "GET", headers=headers)


@pytest.mark.parametrize("budget", [
    pytest.param(POLL_UNCHANGED_CLOCK_CACHED, id="clock cached in the process",
                 marks=pytest.mark.app_config(STATUS_CLOCK_MAX_AGE=3600)),
    pytest.param(POLL_UNCHANGED_CLOCK_READ, id="clock read",
                 marks=pytest.mark.app_config(STATUS_CLOCK_MAX_AGE=0)),
])
def test_an_unchanged_status_poll(dialect, line, budget):
    event, _, waiter = line
    etag = poll(waiter, event).headers["ETag"]

    with assert_num_queries(budget[dialect]):
        response = poll(waiter, event, etag)

    assert response.status_code == 304


def test_a_changed_status_poll(dialect, line):
    event, holder, waiter = line
    etag = poll(waiter, event).headers["ETag"]
    released = holder.open(f"/events/{event.id}/release", "POST")
    assert released.status_code == 303  # the offer passes on to the waiter

    with assert_num_queries(POLL_CHANGED[dialect]):
        response = poll(waiter, event, etag)

    assert response.status_code == 200
    assert 'data-status="offered"' in response.get_data(as_text=True)


def test_a_changed_poll_after_another_waiters_at_the_same_version(any_db_app, dialect, line):
    event, _, waiter = line
    behind = Visitor(any_db_app, make_user())
    join(behind, event)
    etags = [poll(buyer, event).headers["ETag"] for buyer in (waiter, behind)]
    join(Visitor(any_db_app, make_user()), event)  # the line changed: a new version
    assert poll(waiter, event, etags[0]).status_code == 200  # reads the event's share

    with assert_num_queries(POLL_CHANGED_SHARE_KEPT[dialect]):
        response = poll(behind, event, etags[1])

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-status="waiting"' in html and 'data-position="3"' in html


def test_a_changed_status_poll_of_someone_still_waiting(any_db_app, dialect, line):
    event, _, waiter = line
    etag = poll(waiter, event).headers["ETag"]
    join(Visitor(any_db_app, make_user()), event)  # joins behind: the line changed

    with assert_num_queries(POLL_CHANGED_STILL_WAITING[dialect]):
        response = poll(waiter, event, etag)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-status="waiting"' in html
    assert "3 people in line in all" in html and "The earliest offer ahead" in html


def test_a_join_offered_a_ticket_at_once(any_db_app, dialect):
    event = make_event(total_tickets=1)
    buyer = Visitor(any_db_app, make_user())

    with assert_num_queries(JOIN_OFFERED_AT_ONCE[dialect]):
        response = join(buyer, event)

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/pay/local/")
    assert 'data-status="offered"' in event_page(buyer, event)


def test_a_join_that_waits_in_line(any_db_app, dialect, line):
    event, _, _ = line
    buyer = Visitor(any_db_app, make_user())

    with assert_num_queries(JOIN_TO_WAIT[dialect]):
        response = join(buyer, event)

    assert response.status_code == 303
    assert 'data-status="waiting"' in event_page(buyer, event)


def test_paying_on_the_local_page(any_db_app, dialect):
    event = make_event(total_tickets=3)
    buyer = Visitor(any_db_app, make_user())
    page = join(buyer, event).headers["Location"]

    with assert_num_queries(PAY_LOCALLY[dialect]):
        response = buyer.open(page, "POST", {"action": "pay"})

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/checkout/success")
    assert 'data-status="purchased"' in event_page(buyer, event)
