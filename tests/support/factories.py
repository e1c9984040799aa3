"""Factories as plain functions (after cookiecutter-flask's ``tests/factories.py``): saved
users and events, event form data, picture bytes, UTC times, and the sign-in helper the
``auth`` fixture wraps.

Call them inside an app context (the ``app`` and ``any_db_app`` fixtures push one).
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone
from itertools import count

from PIL import Image
from werkzeug.security import generate_password_hash

from extensions import db
from models import Event, User
from services import accounts, events
from services.events import EventDetails

# Every test account's password, unless a test picks another.
PASSWORD = "correct horse battery"

_ids = count(1)
_PASSWORD_HASHES: dict[str, str] = {}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def make_user(name: str | None = None, email: str | None = None, password: str = PASSWORD,
              *, verified: bool = True) -> User:
    """A saved user whose address is confirmed (``verified=False``: not yet, as just after
    signing up). Hashes each password once per session: scrypt is slow on purpose."""
    n = next(_ids)
    if password not in _PASSWORD_HASHES:
        _PASSWORD_HASHES[password] = generate_password_hash(password, "scrypt")
    email = (email or f"user{n}@example.com").lower()
    user = User(name=name or f"User {n}", email=email, person_key=accounts.person_key(email),
                password_hash=_PASSWORD_HASHES[password],
                email_verified_at=datetime.now(timezone.utc) if verified else None)
    db.session.add(user)
    db.session.commit()
    return user


def make_event(organizer: User | None = None, *, now: datetime | None = None,
               image: bytes | None = None, **fields) -> Event:
    """A published event (a week ahead, £12.50, 10 tickets unless ``fields`` say otherwise)."""
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
    return events.create_event(organizer_id=organizer.id, details=EventDetails(**details),
                               image=image, now=now)


def in_days(days: float) -> str:
    """A time ``days`` from now as the event form's ``YYYY-MM-DDTHH:MM``."""
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def event_form(**changes) -> dict:
    """What an organizer types into the event form, with ``changes``."""
    form = {
        "name": "Indie Night",
        "description": "Three bands, one tiny room.",
        "location": "Brixton, London",
        "event_date": in_days(30),
        "price": "12.50",
        "total_tickets": "100",
    }
    form.update(changes)
    return form


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


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)
