"""The on-sale's draw with a real task consumer, on the servers the app runs on: with the
worker up and nobody looking, its scheduled task draws the lobby on time; with the worker
down at the on-sale, the first page view draws it instead, and once the worker is back every
drawn person gets their one email (a place, or an offer), none twice, nothing lost."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import requests

from extensions import db
from models import Event
from tests.faults.checks import OFFER_MADE, assert_emailed_once_each, assert_nothing_lost
from tests.support.live_server import wait_for
from tests.support.seeding import event_words, join_words, new_person, seed, unique, user_words

pytestmark = pytest.mark.faults

PLACE_DRAWN = "Your place in line: "
LOBBY_JOINED = "You're in the lobby: "
ON_SALE_IN_SECONDS = 12
BUYERS = 4
CAPACITY = 2


def lobby_event(server) -> tuple[int, list]:
    """An event (2 tickets) whose on-sale is ``ON_SALE_IN_SECONDS`` away, with ``BUYERS``
    people in its lobby."""
    organizer = new_person("organizer")
    buyers = [new_person(f"lobby{n}-") for n in range(BUYERS)]
    words = [w for person in (*buyers, organizer) for w in user_words(person)]
    words += event_words(organizer, name=unique("Draw Gig "), capacity=CAPACITY,
                         sale_starts_in_minutes=ON_SALE_IN_SECONDS / 60)
    event_id = int(seed(server, *words)[-1])
    joined = seed(server, *(w for person in buyers for w in join_words(event_id, person)))
    assert [line.split()[1] for line in joined] == ["waiting"] * BUYERS  # lobby: waiting, no place
    return event_id, buyers


def drawn_at(server, event_id: int) -> datetime | None:
    with server.app_context():
        return db.session.get(Event, event_id).drawn_at


def sale_starts_at(server, event_id: int) -> datetime:
    with server.app_context():
        return db.session.get(Event, event_id).sale_starts_at


def test_the_worker_draws_the_lobby_on_time_with_nobody_looking(start_server, smtp):
    server = start_server(TICKET_OFFER_SECONDS="600", OUTBOX_RELAY_SECONDS="0.5", **smtp.env())
    event_id, buyers = lobby_event(server)
    emails = [person.email for person in buyers]
    on_sale = sale_starts_at(server, event_id)
    assert drawn_at(server, event_id) is None

    drawn = wait_for(lambda: drawn_at(server, event_id), until=lambda moment: moment is not None,
                     timeout=ON_SALE_IN_SECONDS + 20, what="the lobby drawn by the worker")
    assert 0 <= (drawn - on_sale).total_seconds() < 5, f"drawn at {drawn}, on-sale {on_sale}"
    assert_emailed_once_each(server, smtp, emails, LOBBY_JOINED)
    smtp.wait_until(lambda messages: len([m for m in messages if m.subject.startswith(
        (PLACE_DRAWN, OFFER_MADE))]) == BUYERS, timeout=30, what="a place or an offer each")
    assert_nothing_lost(server, event_id)


def test_with_the_worker_down_the_first_view_draws_and_nothing_is_lost(start_server, smtp):
    server = start_server(TICKET_OFFER_SECONDS="600", OUTBOX_RELAY_SECONDS="0.5", **smtp.env())
    event_id, buyers = lobby_event(server)
    emails = [person.email for person in buyers]
    server.stop_consumer()
    on_sale = sale_starts_at(server, event_id)
    time.sleep(max(0.0, (on_sale - datetime.now(timezone.utc)).total_seconds()) + 1)
    assert drawn_at(server, event_id) is None  # no worker, nobody looking: not drawn yet

    page = requests.get(f"{server.url}/events/{event_id}", timeout=10)
    assert page.status_code == 200 and 'data-sold-out="true"' in page.text  # 2 offers made
    assert drawn_at(server, event_id) is not None

    server.start_consumer()
    offered = wait_for(lambda: [m.to for m in smtp.messages if m.subject.startswith(OFFER_MADE)],
                       until=lambda to: len(to) == CAPACITY, timeout=30,
                       what="the two offers emailed")
    placed = [email for email in emails if email not in offered]
    assert_emailed_once_each(server, smtp, placed, PLACE_DRAWN)
    assert_emailed_once_each(server, smtp, offered, OFFER_MADE)
    assert_emailed_once_each(server, smtp, emails, LOBBY_JOINED)
    assert_nothing_lost(server, event_id)
