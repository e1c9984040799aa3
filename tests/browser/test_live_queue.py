"""The queue on real server processes: a real Huey consumer expires offers on its own, and
the join limit holds across several gunicorn workers sharing Redis."""

from __future__ import annotations

import os
import re
import time

import pytest
import requests

from tests.support.redis_server import redis_server

PASSWORD = "correct horse battery"


def make_event_and_buyers(server, capacity: int, buyers: int) -> tuple[int, list[int]]:
    out = server.python(f"""
        from datetime import datetime, timedelta, timezone
        from services import accounts, events
        from services.events import EventDetails
        now = datetime.now(timezone.utc)
        org = accounts.register_user(name="Org", email="org@example.com", password={PASSWORD!r})
        ids = [accounts.register_user(name=f"B{{i}}", email=f"b{{i}}@example.com",
                                      password={PASSWORD!r}).id for i in range({buyers})]
        event = events.create_event(organizer_id=org.id, now=now, details=EventDetails(
            "Live", "", "Here", now + timedelta(days=1), 500, {capacity}))
        print(event.id, *ids)
    """)
    event_id, *ids = map(int, out.split())
    return event_id, ids


def statuses(server, event_id: int) -> list[tuple[int, str, str | None]]:
    out = server.python(f"""
        from sqlalchemy import select
        from models import WaitingListEntry as E
        for e in db.session.scalars(select(E).where(E.event_id == {event_id}).order_by(E.seq)):
            print(e.user_id, e.status, e.end_reason)
    """)
    return [(int(u), s, None if r == "None" else r)
            for u, s, r in (line.split() for line in out.splitlines())]


def test_the_consumer_expires_an_offer_at_its_deadline_and_offers_the_next(start_server):
    server = start_server(TICKET_OFFER_SECONDS="2")
    event_id, (ann, bob) = make_event_and_buyers(server, capacity=1, buyers=2)
    server.python(f"""
        from datetime import datetime, timezone
        from services import queue
        for user in ({ann}, {bob}):
            queue.join_queue(event_id={event_id}, user_id=user, now=datetime.now(timezone.utc))
    """)
    assert [s for _, s, _ in statuses(server, event_id)] == ["offered", "waiting"]
    # Nobody reads the page: only the consumer's scheduled task can move the queue on.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = statuses(server, event_id)
        if rows[0][1] == "expired":
            break
        time.sleep(0.5)
    assert rows == [(ann, "expired", "offer_expired"), (bob, "offered", None)]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def _signed_in_session(url: str, email: str) -> requests.Session:
    session = requests.Session()
    token = _csrf(session.get(f"{url}/login").text)
    response = session.post(f"{url}/login", data={"email": email, "password": PASSWORD,
                                                  "csrf_token": token}, allow_redirects=False)
    assert response.status_code == 303
    return session


def test_the_join_limit_is_shared_by_every_worker_process(start_server):
    with redis_server() as redis_url:
        if redis_url is None:
            if os.environ.get("REQUIRE_POSTGRES"):  # set by make test, which installs Redis too
                pytest.fail("redis-server is required by make test but not installed")
            pytest.skip("redis-server not installed")
        server = start_server(REDIS_URL=redis_url, WEB_CONCURRENCY="3")
        event_ids = []
        for _ in range(6):
            event_id, _ = make_event_and_buyers_once(server)
            event_ids.append(event_id)
        session = _signed_in_session(server.url, "buyer@example.com")
        token = _csrf(session.get(f"{server.url}/events/{event_ids[0]}").text)
        codes = []
        for event_id in event_ids:
            # A new connection each time, so the joins spread over the worker processes.
            response = session.post(f"{server.url}/events/{event_id}/join",
                                    data={"csrf_token": token}, allow_redirects=False,
                                    headers={"Connection": "close"})
            codes.append(response.status_code)
        assert codes == [303, 303, 303, 429, 429, 429]
        assert "too many times" in response.text


_made = {"n": 0}


def make_event_and_buyers_once(server) -> tuple[int, None]:
    """One more one-ticket event; the first call also makes the buyer's account."""
    _made["n"] += 1
    out = server.python(f"""
        from datetime import datetime, timedelta, timezone
        from sqlalchemy import select
        from models import User
        from services import accounts, events
        from services.events import EventDetails
        now = datetime.now(timezone.utc)
        org = db.session.scalar(select(User).where(User.email == "org@example.com")) or \\
            accounts.register_user(name="Org", email="org@example.com", password={PASSWORD!r})
        if db.session.scalar(select(User).where(User.email == "buyer@example.com")) is None:
            accounts.register_user(name="Buyer", email="buyer@example.com", password={PASSWORD!r})
        event = events.create_event(organizer_id=org.id, now=now, details=EventDetails(
            "Event {_made['n']}", "", "Here", now + timedelta(days=1), 500, 1))
        print(event.id)
    """)
    return int(out.strip()), None
