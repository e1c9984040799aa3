"""The queue on real server processes: a real Huey consumer expires offers on its own, and
the join limit holds across several gunicorn workers sharing Redis."""

from __future__ import annotations

import time

from sqlalchemy import select

from extensions import db
from models import WaitingListEntry as E
from tests.support.seeding import Person, event_words, join_words, seed, user_words
from tests.support.web_user import Answers, WebUser

ORGANIZER = Person("Org", "org@example.com")


def buyer(i: int) -> Person:
    return Person(f"B{i}", f"b{i}@example.com")


def live_event(organizer: Person, *, name: str = "Live", capacity: int) -> list[str]:
    return event_words(organizer, name=name, description="", location="Here",
                       price_pence=500, capacity=capacity)


def make_event_and_buyers(server, capacity: int, buyers: int) -> tuple[int, list[int]]:
    people = [buyer(i) for i in range(buyers)]
    words = [w for person in (ORGANIZER, *people) for w in user_words(person)]
    _, *ids, event_id = map(int, seed(server, *words, *live_event(ORGANIZER, capacity=capacity)))
    return event_id, ids


def statuses(server, event_id: int) -> list[tuple[int, str, str | None]]:
    with server.app_context():
        entries = db.session.scalars(select(E).where(E.event_id == event_id).order_by(E.seq))
        return [(e.user_id, e.status, e.end_reason) for e in entries]


def test_the_consumer_expires_an_offer_at_its_deadline_and_offers_the_next(start_server):
    server = start_server(TICKET_OFFER_SECONDS="2")
    event_id, (ann, bob) = make_event_and_buyers(server, capacity=1, buyers=2)
    seed(server, *join_words(event_id, buyer(0)), *join_words(event_id, buyer(1)))
    assert [s for _, s, _ in statuses(server, event_id)] == ["offered", "waiting"]
    # Nobody reads the page: only the consumer's scheduled task can move the queue on.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = statuses(server, event_id)
        if rows[0][1] == "expired":
            break
        time.sleep(0.5)
    assert rows == [(ann, "expired", "offer_expired"), (bob, "offered", None)]


def test_the_join_limit_is_shared_by_every_worker_process(redis, start_server):
    server = start_server(REDIS_URL=redis.url, WEB_CONCURRENCY="3")
    person = Person("Buyer", "buyer@example.com")
    words = [*user_words(ORGANIZER), *user_words(person)]
    for n in (1, 2):
        words += live_event(ORGANIZER, name=f"Event {n}", capacity=1)
    churned, other = (int(line) for line in seed(server, *words)[2:])
    user = WebUser(server.url, person.email, person.password, Answers())
    user.sign_in()

    def post(path: str):
        # A new connection each time, so the requests spread over the worker processes.
        return user.request("POST", path, data={"csrf_token": user.csrf_token},
                            headers={"Connection": "close"})

    codes = []
    for _ in range(5):  # join and leave one event's line, again and again
        codes.append(post(f"/events/{churned}/join").status_code)
        post(f"/events/{churned}/release")
    assert codes == [303, 303, 303, 429, 429]
    response = post(f"/events/{churned}/join")
    assert response.status_code == 429
    assert "too many times" in response.text
    assert post(f"/events/{other}/join").status_code == 303  # other events: not held back
