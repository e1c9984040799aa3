"""Visitors of a test app whose every request runs in an app context of its own, as in a
server: a fresh database session per request (so what a request reads is what it queries),
and nothing of one visitor's request (``g``, the signed-in user) seen by another's.
"""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import encode_multipart

from tests.support.factories import PASSWORD


class ServerLikeClient(FlaskClient):
    """A test client whose every request runs in an app context of its own, as in a server:
    nothing a request leaves in ``g`` (Flask-Login's signed-in user) or in the database
    session is seen by the next one, so each request loads its user afresh from its cookie.
    Use it as ``app.test_client_class``."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


class Visitor:
    """A test client that stays who it is: signed out again after a sign-up, signed in
    again after a logout (with the cookie the real sign-in form gave it).

    Each request runs in an app context of its own, as in a server: the test's context
    would otherwise share ``g`` (and the signed-in user Flask-Login keeps there) and the
    database session between the visitors.
    """

    def __init__(self, app, user=None):
        self.app, self.client, self.user = app, app.test_client(), user
        if user is not None:
            self.sign_in()

    def sign_in(self) -> None:
        assert self.open("/login", "POST", {"email": self.user.email, "password": PASSWORD}
                         ).status_code == 303
        self.signed_in_cookie = self.client.get_cookie("session").value

    def open(self, url: str, method: str, body=None, headers=None, *, multipart=False):
        with self.app.app_context():
            if body is not None and (multipart or any(len(value) > 200 for value in body.values())):
                # encoded in memory: the test client would spool a big body to a file
                boundary, data = encode_multipart(body)
                return self.client.open(url, method=method, data=data, headers=headers,
                                        content_type=f"multipart/form-data; boundary={boundary}")
            return self.client.open(url, method=method, data=body, headers=headers)

    def signed_in(self) -> bool:
        with self.client.session_transaction() as session:
            return "_user_id" in session

    def restore(self) -> None:
        if self.user is None and self.signed_in():
            self.client.delete_cookie("session")
        elif self.user is not None and not self.signed_in():
            # The cookie of the first sign-in (a new one costs a deliberately slow hash).
            self.client.set_cookie("session", self.signed_in_cookie)
            if not self.signed_in():
                self.sign_in()


def signed_in_client(app, user_id: int, *, now):
    """A browser signed in as ``user_id`` without the sign-in form (users of a bulk-built
    line have no password): a real server-side session, as sign-in makes, named in its
    cookie with the CSRF token its forms sign."""
    from blueprints.auth import SESSION_ID
    from services import sessions

    client = app.test_client()
    with app.app_context():
        session_id = sessions.start_session(user_id=user_id, now=now)
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session[SESSION_ID] = session_id
        session["_fresh"] = True
        session["csrf_token"] = "a" * 40  # Flask-WTF's raw token: forms sign it
    return client
