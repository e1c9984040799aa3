"""Status polls racing the transitions that change what they show, SQLite and PostgreSQL:
the lean changed poll (services/status_reads.py) shares each event's per-version part
between threads; whatever the interleaving every poll is answered (200 or 304, never an
error), shows a state and a place that existed, and once the line settles every waiter's
poll shows exactly the place the ordinary read gives: 1..N, contiguous, in join order."""

from __future__ import annotations

import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from extensions import db
from services import queue, queue_reads
from tests.support.factories import make_event, make_user
from tests.support.invariants import assert_queue_invariants
from tests.support.visitors import signed_in_client
from tests.support.workers import run_action

pytestmark = [pytest.mark.concurrency, pytest.mark.app_config(TICKET_OFFER_SECONDS=600)]

PEOPLE = 30
CAPACITY = 4


def test_polls_racing_joins_and_releases_show_real_places(any_db_app):
    now = datetime.now(timezone.utc)
    with any_db_app.app_context():
        event = make_event(total_tickets=CAPACITY, starts_at=now + timedelta(days=3))
        users = [make_user().id for _ in range(PEOPLE)]
        for user_id in users[:PEOPLE // 2]:
            queue.join_queue(event_id=event.id, user_id=user_id, now=now)
        event_id = event.id
    clients = {user_id: signed_in_client(any_db_app, user_id, now=now) for user_id in users}
    path = f"/events/{event_id}/status"
    stop = threading.Event()
    answers = []

    def poller(user_id: int) -> None:
        etag = None
        while not stop.is_set():
            with any_db_app.app_context():
                response = clients[user_id].get(
                    path, headers={"HX-Request": "true", **({"If-None-Match": etag} if etag
                                                            else {})})
            etag = response.headers.get("ETag")
            answers.append((response.status_code, response.get_data(as_text=True)))

    def transitions() -> list[str]:
        rng, done = random.Random(5), []
        later = users[PEOPLE // 2:]
        for user_id in later + users[:PEOPLE // 2]:
            action = "join" if user_id in later else rng.choice(["release", "join"])
            with any_db_app.app_context():
                done.append(run_action(action, event_id, user_id, datetime.now(timezone.utc)))
                db.session.remove()
        return done

    pollers = users[::4]
    with ThreadPoolExecutor(max_workers=len(pollers) + 2) as pool:
        polls = [pool.submit(poller, user_id) for user_id in pollers]
        done = [pool.submit(transitions), pool.submit(transitions)]
        outcomes = [f.result(timeout=120) for f in done]
        stop.set()
        for f in polls:
            f.result(timeout=30)

    assert outcomes and answers
    assert {status for status, _ in answers} <= {200, 304}
    for status, html in answers:
        if status == 200:
            shown = re.search(r'data-status="(\w+)"', html).group(1)
            assert shown in {"none", "waiting", "offered", "expired"}, shown
            place = re.search(r'data-position="(\d+)"', html)
            assert place is None or 1 <= int(place.group(1)) <= PEOPLE
    with any_db_app.app_context():
        assert_queue_invariants(event_id)
        expected = {u: queue_reads.queue_status(event_id=event_id, user_id=u,
                                                now=datetime.now(timezone.utc)).position
                    for u in users}
    waiting = {}
    for user_id in users:
        with any_db_app.app_context():
            html = clients[user_id].get(path).get_data(as_text=True)
        place = re.search(r'data-position="(\d+)"', html)
        if place:
            waiting[user_id] = int(place.group(1))
            assert waiting[user_id] == expected[user_id]
    assert sorted(waiting.values()) == list(range(CAPACITY + 1, CAPACITY + 1 + len(waiting)))
