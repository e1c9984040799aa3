"""Shared fixtures: an app on a fresh database per test, clients, factories, a clock.

``app`` runs on SQLite; ``any_db_app`` runs the same test on SQLite and on PostgreSQL
(a throwaway server started once per session, see ``support/postgres.py``).
"""

from __future__ import annotations

import io
import os
import re
from datetime import datetime, timedelta, timezone
from itertools import count

import pytest
from PIL import Image

from tests.support.postgres import postgres_server

# Keep the tasks module from writing a Huey database into the checkout's instance/.
os.environ.setdefault("INSTANCE_PATH", "/tmp/tickethub-test-instance")

from app import create_app  # noqa: E402
from extensions import db, limiter  # noqa: E402
from models import Event, User  # noqa: E402
from services import accounts, events  # noqa: E402
from services.events import EventDetails  # noqa: E402

PASSWORD = "correct horse battery"
_ids = count(1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def build_test_config(tmp_path, database_url: str | None = None, **overrides) -> dict:
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "UPLOAD_FOLDER": str(tmp_path / "instance" / "uploads"),
        "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{tmp_path / 'test.sqlite3'}",
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "HUEY_IMMEDIATE": True,
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url


def _make_app(config: dict):
    app = create_app(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
    if config["RATELIMIT_ENABLED"]:
        with app.app_context():
            limiter.reset()
    return app


@pytest.fixture
def app(tmp_path, request):
    marker = request.node.get_closest_marker("app_config")
    overrides = marker.kwargs if marker else {}
    app = _make_app(build_test_config(tmp_path, **overrides))
    with app.app_context():
        yield app
        db.session.remove()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_app(request, tmp_path):
    """The same test on SQLite and on PostgreSQL."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        if url is None:
            if os.environ.get("REQUIRE_POSTGRES"):
                pytest.fail("PostgreSQL is required (REQUIRE_POSTGRES=1) but not installed")
            pytest.skip("PostgreSQL not installed")
    marker = request.node.get_closest_marker("app_config")
    overrides = marker.kwargs if marker else {}
    app = _make_app(build_test_config(tmp_path, database_url=url, **overrides))
    with app.app_context():
        yield app
        db.session.remove()
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ---------------------------------------------------------------- factories


_PASSWORD_HASHES: dict[str, str] = {}


def make_user(name: str | None = None, email: str | None = None, password: str = PASSWORD) -> User:
    """A saved user. Hashes each password once per session: scrypt is slow on purpose."""
    from werkzeug.security import generate_password_hash

    n = next(_ids)
    if password not in _PASSWORD_HASHES:
        _PASSWORD_HASHES[password] = generate_password_hash(password, "scrypt")
    user = User(name=name or f"User {n}", email=(email or f"user{n}@example.com").lower(),
                password_hash=_PASSWORD_HASHES[password])
    db.session.add(user)
    db.session.commit()
    return user


def make_event(organizer: User | None = None, *, now: datetime | None = None, **fields) -> Event:
    now = now or datetime.now(timezone.utc)
    organizer = organizer or make_user()
    details = {
        "name": "Test gig",
        "description": "A night out.",
        "location": "London",
        "starts_at": now + timedelta(days=7),
        "price_pence": 1250,
        "total_tickets": 10,
    }
    details.update(fields)
    return events.create_event(organizer_id=organizer.id, details=EventDetails(**details), now=now)


def image_bytes(fmt: str = "PNG", size=(64, 48), color=(200, 30, 30), **save_args) -> bytes:
    buffer = io.BytesIO()
    mode = "RGBA" if fmt == "PNG" else "RGB"
    Image.new(mode, size, color).save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


class Auth:
    """Sign in and out through the real forms."""

    def __init__(self, client):
        self.client = client

    def login(self, user_or_email, password: str = PASSWORD):
        email = getattr(user_or_email, "email", user_or_email)
        return self.client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return Auth(client)


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)
