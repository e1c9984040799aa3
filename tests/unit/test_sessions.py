"""Sign-in sessions kept on the server, and trusted devices (services/sessions.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from extensions import db
from models import SignInSession
from services import sessions
from tests.support.factories import make_user, utc

NOW = utc(2026, 12, 1, 12, 0)


@pytest.mark.app_config(PERMANENT_SESSION_LIFETIME=timedelta(hours=2))
def test_a_session_is_live_until_it_ends_or_its_lifetime_is_over(any_db_app):
    ada, bob = make_user(), make_user()
    session_id = sessions.start_session(user_id=ada.id, now=NOW)

    assert sessions.session_user(session_id=session_id, user_id=ada.id, now=NOW) == ada
    assert sessions.session_user(session_id=session_id, user_id=bob.id, now=NOW) is None
    assert sessions.session_user(session_id="made-up", user_id=ada.id, now=NOW) is None
    assert sessions.session_user(session_id=session_id, user_id=ada.id,
                                 now=NOW + timedelta(hours=2)) is None

    sessions.end_session(session_id=session_id, now=NOW)
    assert sessions.session_user(session_id=session_id, user_id=ada.id, now=NOW) is None


def test_ending_every_session_of_one_person_leaves_others_alone(any_db_app):
    ada, bob = make_user(), make_user()
    ada_here, ada_there = (sessions.start_session(user_id=ada.id, now=NOW) for _ in range(2))
    bob_here = sessions.start_session(user_id=bob.id, now=NOW)

    sessions.end_all_sessions(user_id=ada.id, now=NOW)

    assert sessions.session_user(session_id=ada_here, user_id=ada.id, now=NOW) is None
    assert sessions.session_user(session_id=ada_there, user_id=ada.id, now=NOW) is None
    assert sessions.session_user(session_id=bob_here, user_id=bob.id, now=NOW) == bob
    assert sessions.live_session_count(user_id=ada.id, now=NOW) == 0


@pytest.mark.app_config(PERMANENT_SESSION_LIFETIME=timedelta(hours=2))
def test_ended_and_expired_sessions_are_cleared_away(any_db_app):
    ada = make_user()
    ended = sessions.start_session(user_id=ada.id, now=NOW)
    sessions.end_session(session_id=ended, now=NOW)
    sessions.start_session(user_id=ada.id, now=NOW - timedelta(hours=3))  # expired
    live = sessions.start_session(user_id=ada.id, now=NOW)

    assert sessions.prune_sessions(now=NOW) == 0  # the new sign-in cleared them already
    assert db.session.scalars(select(SignInSession.id)).all() == [live]
    sessions.end_session(session_id=live, now=NOW)
    assert sessions.prune_sessions(now=NOW) == 1


def test_a_trusted_device_cookie_is_for_its_own_address_and_lasts_180_days(app):
    cookie = sessions.trusted_device_cookie("ada@example.com", now=NOW)

    nonce = sessions.trusted_device(cookie, "ada@example.com", now=NOW + timedelta(days=179))
    assert nonce and nonce == sessions.trusted_device(cookie, "ada@example.com", now=NOW)
    assert sessions.trusted_device(cookie, "bob@example.com", now=NOW) is None
    assert sessions.trusted_device(cookie, "ada@example.com",
                                   now=NOW + timedelta(days=181)) is None
    assert sessions.trusted_device("x" + cookie, "ada@example.com", now=NOW) is None
    assert sessions.trusted_device(None, "ada@example.com", now=NOW) is None
    other = sessions.trusted_device_cookie("ada@example.com", now=NOW)
    assert sessions.trusted_device(other, "ada@example.com", now=NOW) != nonce  # per browser
