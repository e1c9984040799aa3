"""Signed, single-use, time-limited links for account emails: confirm an address, choose a
new password, confirm a new address.

A link's token carries the user's id and a fingerprint of the state the link changes (the
address and whether it is confirmed; the password; the address asked for), signed with
``SECRET_KEY`` under a salt of its own per purpose, so a token for one purpose is worthless
for another. Following the link changes that state, so the same link, and any sent before
it, no longer matches: single use without keeping tokens anywhere. Its age is checked
against the caller's clock.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from extensions import db
from models import User
from services import ServiceError

VERIFY = "verify"
RESET = "reset"
CHANGE_EMAIL = "change-email"
LIFETIMES = {VERIFY: timedelta(hours=24), RESET: timedelta(hours=1),
             CHANGE_EMAIL: timedelta(hours=24)}

INVALID = "This link isn't valid. Check that you opened the whole link from the email, or ask for a new one."  # noqa: E501
EXPIRED = "This link has expired. Ask for a new one."
USED = "This link has already been used, or a newer one replaced it."


class LinkError(ServiceError):
    pass


def timed_serializer(salt: str, now: datetime) -> URLSafeTimedSerializer:
    """itsdangerous' timed serializer on ``SECRET_KEY``, telling time by ``now`` (so links
    are dated, and their age checked, by the caller's clock)."""

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(now.timestamp())

    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt, signer=Signer)


def _state(user: User, purpose: str) -> str:
    if purpose == VERIFY:
        return f"{user.email}|{user.email_verified_at}"
    if purpose == RESET:
        return user.password_hash
    return f"{user.email}|{user.pending_email}"


def _fingerprint(user: User, purpose: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode()
    state = f"{purpose}|{user.deleted_at}|{_state(user, purpose)}".encode()
    return hmac.new(secret, state, hashlib.sha256).hexdigest()[:32]


def make_token(user: User, purpose: str, *, now: datetime) -> str:
    """The token of a ``purpose`` link for ``user`` as they are now."""
    return timed_serializer(f"tickethub-{purpose}", now).dumps(
        {"u": user.id, "f": _fingerprint(user, purpose)})


def read_token(token: str, purpose: str, *, now: datetime) -> User:
    """The user a ``purpose`` link was made for, if it is genuine, young enough and unused.
    Raises LinkError (with what to do) otherwise; changes nothing."""
    serializer = timed_serializer(f"tickethub-{purpose}", now)
    try:
        data = serializer.loads(token, max_age=int(LIFETIMES[purpose].total_seconds()))
    except SignatureExpired:
        raise LinkError(EXPIRED) from None
    except BadSignature:
        raise LinkError(INVALID) from None
    if not (isinstance(data, dict) and isinstance(data.get("u"), int)
            and isinstance(data.get("f"), str)):
        raise LinkError(INVALID)
    user = db.session.get(User, data["u"])
    if user is None:
        raise LinkError(INVALID)
    if user.deleted_at is not None or not hmac.compare_digest(data["f"],
                                                              _fingerprint(user, purpose)):
        raise LinkError(USED)
    return user
