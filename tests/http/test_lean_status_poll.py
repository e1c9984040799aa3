"""The changed status poll's lean path (services/status_reads.py: one statement, the event's
shared part kept per queue version) answers exactly what the ordinary path (the user loaded
by Flask-Login, ``queue_reads.queue_status``) would: the same widget, byte for byte, and the
same ETag, for everyone a real line holds, on SQLite and PostgreSQL.

The line is big enough to span several blocks of join order with departures in each, has
offers held and offers ended at a pace (so waiters get estimates), a lobby on a second event,
and people in every other state. The clock and the poll's jitter are fixed, so the two
answers can be compared whole.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bench.queues import build_queue
from blueprints import events as event_views
from extensions import db
from models import EntryStatus, Ticket, WaitingListEntry
from services import queue, sessions, status_reads
from tests.support.factories import make_event, make_user
from tests.support.visitors import signed_in_client

LINE = 2_500  # three blocks of join order (queue_reads.POSITION_BLOCK = 1024)


@pytest.fixture
def frozen(monkeypatch) -> datetime:
    """The views' clock stopped at the start of the test (not of the run: a scheduled
    on-sale must still be ahead)."""
    moment = datetime.now(timezone.utc).replace(microsecond=0)
    monkeypatch.setattr(event_views, "now", lambda: moment)
    return moment


def both_answers(app, client, path: str, monkeypatch):
    """The poll answered by the lean path, then by the ordinary one (the lean one told it
    can't answer), each from the same cookie and with the same jitter: status, ETag, body,
    and the session the answer's cookie carries (None: no cookie set)."""
    cookie = client.get_cookie("session").value
    answers = []
    for lean in (True, False):
        client.set_cookie("session", cookie)
        with monkeypatch.context() as patch:
            patch.setattr(status_reads, "viewer_status",
                          spy(status_reads.viewer_status) if lean else lambda *a, **k: None)
            random.seed(12)
            with app.app_context():
                response = client.get(path, headers={"HX-Request": "true"})
        # A form's signed token carries the second it was signed in: the same raw token.
        html = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"',
                      response.get_data(as_text=True))
        answers.append((response.status_code, response.headers.get("ETag"), html,
                        session_set(app, response)))
    return answers


def spy(viewer_status):
    """``viewer_status`` that fails the test unless it answers (the lean path was taken)."""
    def answered(*args, **kwargs):
        view = viewer_status(*args, **kwargs)
        assert view is not None, "the lean path declined"
        return view
    return answered


def session_set(app, response) -> dict | None:
    cookie = response.headers.get("Set-Cookie")
    if cookie is None:
        return None
    value = cookie.split(";")[0].split("=", 1)[1]
    return dict(app.session_interface.get_signing_serializer(app).loads(value)) if value else {}


def users_along_the_line(event_id: int) -> dict[str, int]:
    entries = db.session.scalars(select(WaitingListEntry).where(
        WaitingListEntry.event_id == event_id).order_by(WaitingListEntry.seq)).all()
    waiting = [e.user_id for e in entries if e.status == EntryStatus.WAITING]
    offered = [e.user_id for e in entries if e.status == EntryStatus.OFFERED]
    left = [e for e in entries if e.end_reason == "left"]
    ticket = db.session.scalars(select(Ticket).where(Ticket.event_id == event_id)).first()
    return {
        "front": waiting[0], "second": waiting[1], "first block end": waiting[1000],
        "second block": waiting[1500], "far back": waiting[-1], "offer holder": offered[0],
        "left the line": max(left, key=lambda e: e.id).user_id, "ticket holder": ticket.user_id,
    }


def test_the_lean_poll_answers_as_the_ordinary_one_all_along_a_line(any_db_app, frozen,
                                                                    monkeypatch):
    with any_db_app.app_context():
        event_id, last = build_queue(LINE, now=frozen, live_offers=5, ended_offers=30,
                                     pace_seconds=3)
        who = users_along_the_line(event_id)
        who["never joined"] = make_user().id
        db.session.commit()
    path = f"/events/{event_id}/status"
    for name, user_id in who.items():
        client = signed_in_client(any_db_app, user_id, now=frozen)
        lean, ordinary = both_answers(any_db_app, client, path, monkeypatch)
        assert lean == ordinary, name
        assert lean[0] == 200, name
    # The lean answers say what these people are shown (not merely the same on both paths).
    client = signed_in_client(any_db_app, who["far back"], now=frozen)
    far_back = both_answers(any_db_app, client, path, monkeypatch)[0][2]
    assert f'data-position="{LINE + 5}"' in far_back and "Estimated wait" in far_back


def test_the_lean_poll_in_a_lobby_and_for_the_organizer(any_db_app, frozen, monkeypatch):
    with any_db_app.app_context():
        event = make_event(total_tickets=5, sale_starts_at=frozen + timedelta(minutes=10))
        buyer = make_user()
        queue.join_queue(event_id=event.id, user_id=buyer.id, now=frozen)
        ids = {"in the lobby": buyer.id, "organizer": event.organizer_id}
        event_id = event.id
    shown = {}
    for name, user_id in ids.items():
        lean, ordinary = both_answers(any_db_app, signed_in_client(any_db_app, user_id, now=frozen),
                                      f"/events/{event_id}/status", monkeypatch)
        assert lean == ordinary, name
        shown[name] = lean[2]
    assert 'data-status="lobby"' in shown["in the lobby"]
    assert "You organize this event" in shown["organizer"]


def test_a_cookie_whose_session_ended_is_signed_out_by_a_changed_poll(any_db_app, frozen):
    with any_db_app.app_context():
        event = make_event(total_tickets=1)
        buyer = make_user()
        queue.join_queue(event_id=event.id, user_id=buyer.id, now=frozen)
        event_id, buyer_id = event.id, buyer.id
    client = signed_in_client(any_db_app, buyer_id, now=frozen)
    with any_db_app.app_context():
        sessions.end_all_sessions(user_id=buyer_id, now=frozen)

    with any_db_app.app_context():
        response = client.get(f"/events/{event_id}/status", headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-status="none"' in html and "Sign in to" in html
    with client.session_transaction() as session:
        assert "_user_id" not in session
