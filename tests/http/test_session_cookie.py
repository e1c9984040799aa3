"""The signed session cookie (blueprints/helpers.py SessionInterface): a cookie this process
has verified opens again without its signature checked anew (the waiting room's polls send
the same cookie every few seconds), yet nothing that was refused before is accepted now: a
changed cookie, an expired one, another app's, and no request's changes leak into the next
one that sends the same cookie."""

from __future__ import annotations

import time

import pytest
from flask import request
from itsdangerous import URLSafeTimedSerializer

from blueprints import helpers
from tests.support.factories import make_user


@pytest.fixture
def signed_in(client, auth):
    """A signed-in browser's cookie, once the page after sign-in has shown its message."""
    auth.login(make_user(name="Ann"))
    client.get("/")  # shows (and so drops) "Signed in as Ann."
    return client.get_cookie("session").value


def shows_signed_in(client) -> bool:
    """Whether the home page greets Ann: in an app context of its own, as in a server (the
    test's own would keep the user Flask-Login loaded before)."""
    with client.application.app_context():
        return "Signed in as <strong>Ann</strong>" in client.get("/").get_data(as_text=True)


@pytest.fixture
def loads_counted(monkeypatch):
    calls = []
    loads = URLSafeTimedSerializer.loads

    def counted(self, *args, **kwargs):
        calls.append(1)
        return loads(self, *args, **kwargs)

    monkeypatch.setattr(URLSafeTimedSerializer, "loads", counted)
    return calls


def test_a_verified_cookie_is_not_verified_again(client, signed_in, loads_counted):
    assert shows_signed_in(client)
    checked = len(loads_counted)
    for _ in range(3):
        assert shows_signed_in(client)
    assert len(loads_counted) == checked


def test_a_changed_cookie_is_refused_though_the_real_one_was_verified(client, signed_in):
    assert shows_signed_in(client)
    tampered = signed_in[:-2] + ("AA" if signed_in[-2:] != "AA" else "BB")
    client.set_cookie("session", tampered)
    assert not shows_signed_in(client)
    client.set_cookie("session", signed_in)
    assert shows_signed_in(client)


def test_a_verified_cookie_still_expires(app, client, signed_in, monkeypatch):
    assert shows_signed_in(client)
    lifetime = app.permanent_session_lifetime.total_seconds()
    later = time.time() + lifetime + 5
    monkeypatch.setattr(helpers.time, "time", lambda: later)
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    assert not shows_signed_in(client)


def test_another_apps_cookie_is_refused(app, client, signed_in, tmp_path):
    from app import create_app
    from tests.support.apps import build_test_config

    assert shows_signed_in(client)
    other = create_app(build_test_config(tmp_path / "other", SECRET_KEY="another secret"))
    with other.test_request_context("/", headers={"Cookie": f"session={signed_in}"}):
        other_session = other.session_interface.open_session(other, request)
    assert "_user_id" not in other_session


def opened(app, cookie: str):
    with app.test_request_context("/", headers={"Cookie": f"session={cookie}"}):
        return app.session_interface.open_session(app, request)


def test_what_one_request_changes_never_reaches_the_next_with_the_same_cookie(app, client,
                                                                             auth):
    auth.login(make_user(name="Ann"))
    cookie = client.get_cookie("session").value  # carries the "Signed in as Ann." message
    first = opened(app, cookie)
    first["extra"] = "added"
    first["_flashes"].append(("message", "Only for the first"))  # as flash() does

    again = opened(app, cookie)

    assert "extra" not in again and again["_user_id"] == first["_user_id"]
    assert again["_flashes"] == [("success", "Signed in as Ann.")]
