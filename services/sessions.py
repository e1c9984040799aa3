"""Sign-in sessions that can be ended, and the browsers a person has signed in from.

A sign-in makes a ``SignInSession`` row whose random id travels in the signed session
cookie; loading the user checks it in the same single query (``session_user``), so a copy
of the cookie dies with its row: signing out ends one row, "sign out everywhere", a password
reset or change and a deleted account end them all. Rows last ``PERMANENT_SESSION_LIFETIME``
from sign-in, then a new sign-in is needed.

A **trusted device** is a browser that has signed in to an address before: it carries a
signed cookie naming a hash of that address and a random nonce. Failed sign-ins from it are
counted against that nonce rather than against the address, so a stranger guessing at an
address cannot lock its owner out of the browser they always use (after OWASP's "device
cookies" defence).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature
from sqlalchemy import delete, or_, select, update

from extensions import db
from models import SignInSession, User
from services.account_links import timed_serializer

TRUSTED_DEVICE_DAYS = 180
_DEVICE_SALT = "tickethub-trusted-device"


def lifetime() -> timedelta:
    return current_app.config["PERMANENT_SESSION_LIFETIME"]


def start_session(*, user_id: int, now: datetime) -> str:
    """A new signed-in session for ``user_id``; returns its id (for the session cookie).
    The user's ended and expired rows are cleared away on the way."""
    db.session.execute(delete(SignInSession).where(
        SignInSession.user_id == user_id,
        or_(SignInSession.ended_at.is_not(None), SignInSession.expires_at <= now)))
    session_id = secrets.token_urlsafe(32)
    db.session.add(SignInSession(id=session_id, user_id=user_id, created_at=now,
                                 expires_at=now + lifetime()))
    db.session.commit()
    return session_id


def session_user(*, session_id: str, user_id: int, now: datetime) -> User | None:
    """The user of a live session (one query), or None when it ended, expired or is not
    theirs."""
    return db.session.scalar(
        select(User).join(SignInSession, SignInSession.user_id == User.id).where(
            SignInSession.id == session_id, User.id == user_id,
            SignInSession.ended_at.is_(None), SignInSession.expires_at > now))


def end_session(*, session_id: str, now: datetime) -> None:
    """Sign one browser out: its cookie, and every copy of it, stops working."""
    db.session.execute(update(SignInSession)
                       .where(SignInSession.id == session_id, SignInSession.ended_at.is_(None))
                       .values(ended_at=now))
    db.session.commit()


def end_sessions_of(user_id: int, *, now: datetime, keep: str | None = None) -> None:
    """End every live session of ``user_id`` but ``keep``, in the caller's transaction."""
    query = update(SignInSession).where(SignInSession.user_id == user_id,
                                        SignInSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(SignInSession.id != keep)
    db.session.execute(query.values(ended_at=now))


def end_all_sessions(*, user_id: int, now: datetime) -> None:
    """"Sign out everywhere": every browser signed in as ``user_id``, this one included."""
    end_sessions_of(user_id, now=now)
    db.session.commit()


def live_session_count(*, user_id: int, now: datetime) -> int:
    return len(db.session.scalars(select(SignInSession.id).where(
        SignInSession.user_id == user_id, SignInSession.ended_at.is_(None),
        SignInSession.expires_at > now)).all())


def prune_sessions(*, now: datetime) -> int:
    """Delete ended and expired rows (a daily task); returns how many."""
    result = db.session.execute(delete(SignInSession).where(
        or_(SignInSession.ended_at.is_not(None), SignInSession.expires_at <= now)))
    db.session.commit()
    return result.rowcount


# ----------------------------------------------------------------------- trusted devices


def _address_tag(address_key: str) -> str:
    """A keyed hash of an address: the cookie names the address without showing it."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, address_key.encode(), hashlib.sha256).hexdigest()[:32]


def trusted_device_cookie(address_key: str, *, now: datetime) -> str:
    """The cookie value a browser gets when it signs in to the address ``address_key``."""
    return timed_serializer(_DEVICE_SALT, now).dumps(
        {"a": _address_tag(address_key), "n": secrets.token_urlsafe(16)})


def trusted_device(cookie: str | None, address_key: str, *, now: datetime) -> str | None:
    """The device's nonce when ``cookie`` was given for a sign-in to ``address_key`` (and is
    no older than ``TRUSTED_DEVICE_DAYS``); None otherwise."""
    if not cookie:
        return None
    try:
        data = timed_serializer(_DEVICE_SALT, now).loads(cookie,
                                                         max_age=TRUSTED_DEVICE_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("n"), str):
        return None
    return data["n"] if hmac.compare_digest(str(data.get("a")), _address_tag(address_key)) \
        else None
