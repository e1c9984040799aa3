"""Payouts: the organizer's Stripe Connect account, its onboarding and its status.

Paid events need the organizer's Express account to take charges (``services/events.py``
checks the mirror kept here); ``account.updated`` webhooks keep it current too.
"""

from __future__ import annotations

from extensions import db
from models import User
from services import ServiceError, payments


class PayoutError(ServiceError):
    status_code = 409


def connect_status(*, user_id: int) -> payments.AccountStatus | None:
    """The organizer's Connect account status (refreshed from the gateway), or None."""
    user = db.session.get(User, user_id)
    if not user.stripe_connect_id:
        return None
    status = payments.gateway().account_status(user.stripe_connect_id)
    record_account_status(user, status)
    return status


def record_account_status(user: User, status: payments.AccountStatus) -> None:
    """Keep the mirror of the organizer's Connect account current (on view and webhook)."""
    user.stripe_details_submitted = status.details_submitted
    user.stripe_charges_enabled = status.charges_enabled
    db.session.commit()


def onboarding_link(*, user_id: int, refresh_url: str, return_url: str) -> str:
    """Create the organizer's Express account if needed and link to its onboarding."""
    user = db.session.get(User, user_id)
    gateway = payments.gateway()
    if not user.stripe_connect_id:
        user.stripe_connect_id = gateway.create_account(email=user.email)
        db.session.commit()
    return gateway.account_link(user.stripe_connect_id, refresh_url=refresh_url,
                                return_url=return_url)


def dashboard_link(*, user_id: int) -> str | None:
    """A sign-in link to the organizer's Express dashboard; None when the gateway has none
    (local payments)."""
    user = db.session.get(User, user_id)
    if not user.stripe_connect_id:
        raise PayoutError("Set up payouts first.")
    return payments.gateway().dashboard_link(user.stripe_connect_id)
