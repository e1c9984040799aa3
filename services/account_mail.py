"""The emails about an account itself: the links to confirm an address or choose a new
password, and the notices of a password or address change.

``services/accounts.py`` writes each to the outbox in the transaction that calls for it;
a worker calls ``send``, which makes the link's token then (from the account as it is) and
delivers the message. With no SMTP server configured the message is a file under
``instance/mail/`` and the link is also logged, so the embedded default works on one
machine without a mail program.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from extensions import db
from models import User
from services import account_links, mail
from services.urls import absolute_url

log = logging.getLogger(__name__)

# kind: (subject, the link's purpose and page, or None for a notice)
KINDS = {
    "verify_email": ("Confirm your email address",
                     (account_links.VERIFY, "auth.verify_email")),
    "password_reset": ("Choose a new password",
                       (account_links.RESET, "auth.reset_password")),
    "email_change_confirm": ("Confirm your new email address",
                             (account_links.CHANGE_EMAIL, "account.confirm_email")),
    "email_change_notice": ("Your Ticket Hub email address is being changed", None),
    "password_changed": ("Your Ticket Hub password was changed", None),
}


def _recipient(kind: str, user_id: int | None, address: str | None) -> tuple[User, str] | None:
    """Who gets this email, at which address; None when there is nobody to send it to
    (no account uses the address, the account is gone, the link is no longer wanted)."""
    if kind == "password_reset":
        user = db.session.scalar(select(User).where(User.email == address))
    else:
        user = db.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        return None
    if kind == "verify_email" and user.email_verified:
        return None
    if kind == "email_change_confirm":
        return (user, user.pending_email) if user.pending_email else None
    return user, address or user.email


def send(kind: str, *, user_id: int | None, address: str | None, nonce: str,
         now: datetime) -> str | None:
    """Render and deliver one account email; returns its key, or None when none was due."""
    subject, link_to = KINDS[kind]
    found = _recipient(kind, user_id, address)
    if found is None:
        log.info("%s: no account email due (kind %s)", subject, kind)
        return None
    user, to = found
    link = None
    if link_to is not None:
        purpose, endpoint = link_to
        link = absolute_url(endpoint, token=account_links.make_token(user, purpose, now=now))
    key = f"{kind}-{user.id}-{nonce}"
    message = mail.build(
        to=mail.recipient(user.name, to), subject=subject, template=kind, key=key, user=user,
        link=link, to_address=to, hours=_hours(link_to),
        new_address=user.pending_email or user.email,  # for the notice of a change
        account_url=absolute_url("account.index"), forgot_url=absolute_url("auth.forgot_password"),
    )
    mail.deliver(message, key=key)
    if link and not current_app.config.get("MAIL_SERVER"):
        # No mail server: whoever runs the site reads the link here (or in instance/mail/).
        log.info("%s for %s: %s", subject, to, link)
    return key


def _hours(link_to) -> int | None:
    if link_to is None:
        return None
    return int(account_links.LIFETIMES[link_to[0]].total_seconds() // 3600)
