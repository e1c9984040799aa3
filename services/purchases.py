"""Buying and refunding: checkout start, idempotent fulfilment, the late-payment rule.

Never take money without a seat. A card is only *authorised* at Checkout (manual
capture); fulfilment first gives the seat (in one locked queue transition), then captures.
When no seat can be given, the authorisation is cancelled (nothing was taken) or, if the
money was somehow captured already, refunded at once. Every step can run twice: Stripe
retries and reorders webhooks, so each decision reads the state it leaves behind.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import (
    CheckoutSession, CheckoutStatus, Ticket, TicketStatus, User, WaitingListEntry, WebhookEvent,
)
from services import NotFound, ServiceError, payments, queue
from services.urls import absolute_url

log = logging.getLogger(__name__)

# Stripe refuses a Checkout Session that expires in under 30 minutes.
STRIPE_MIN_SESSION = timedelta(minutes=31)
SETTLED = (CheckoutStatus.PAID, CheckoutStatus.NOT_CHARGED, CheckoutStatus.REFUNDED)


class PurchaseError(ServiceError):
    status_code = 409


def platform_fee(amount_pence: int) -> int:
    """``PLATFORM_FEE_PERCENT`` of the amount, rounded to the nearest penny (half up)."""
    percent = Decimal(str(current_app.config["PLATFORM_FEE_PERCENT"]))
    return int((Decimal(amount_pence) * percent / 100).quantize(Decimal(1), ROUND_HALF_UP))


def _live_offer(event_id: int, user_id: int, now: datetime) -> WaitingListEntry:
    status = queue.queue_status(event_id=event_id, user_id=user_id, now=now)
    if status.status != "offered":
        raise PurchaseError("You don't hold a ticket offer for this event any more. "
                            "Join the waiting list to get one.")
    return status.entry


def start_checkout(*, event_id: int, user_id: int, now: datetime) -> str:
    """Where to send the buyer to pay for their live offer (one session per offer).

    Free events need no payment: the ticket is issued at once and its page returned.
    """
    entry = _live_offer(event_id, user_id, now)
    event = entry.event
    if event.price_pence == 0:
        ticket = queue.complete_purchase(entry_id=entry.id, user_id=user_id,
                                         payment_reference=f"free-{entry.id}",
                                         amount_pence=0, now=now)
        return url_for("tickets.show", ticket_id=ticket.id)
    existing = db.session.scalar(select(CheckoutSession).where(CheckoutSession.entry_id == entry.id))
    if existing is not None:
        if existing.status == CheckoutStatus.OPEN:
            return existing.url
        raise PurchaseError("This offer's payment has already been handled.")
    gateway = payments.gateway()
    organizer = event.organizer
    destination = organizer.stripe_connect_id if gateway.name == "stripe" else None
    if gateway.name == "stripe" and not (destination and organizer.stripe_charges_enabled):
        raise PurchaseError("The organizer can't take payments yet. Please try again later.")
    buyer = db.session.get(User, user_id)
    fee = platform_fee(event.price_pence)
    metadata = {"event_id": str(event.id), "user_id": str(user_id), "entry_id": str(entry.id)}
    session = gateway.create_checkout_session(
        key=f"checkout-entry-{entry.id}",
        amount_pence=event.price_pence,
        fee_pence=fee,
        description=f"Ticket: {event.name}",
        metadata=metadata,
        # On BASE_URL, never the request's Host: Stripe sends the buyer back there.
        success_url=absolute_url("payments.success") + "?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=absolute_url("payments.cancel") + "?session_id={CHECKOUT_SESSION_ID}",
        expires_at=max(entry.offer_expires_at, now + STRIPE_MIN_SESSION),
        destination=destination,
        customer_email=buyer.email,
    )
    db.session.add(CheckoutSession(
        id=session.id, entry_id=entry.id, event_id=event.id, user_id=user_id,
        amount_pence=event.price_pence, fee_pence=fee, url=session.url,
    ))
    try:
        db.session.commit()
    except IntegrityError:  # a double click made the same (idempotent) session
        db.session.rollback()
        return db.session.scalar(
            select(CheckoutSession.url).where(CheckoutSession.entry_id == entry.id))
    return session.url


def get_session(*, session_id: str, user_id: int) -> CheckoutSession:
    session = db.session.get(CheckoutSession, session_id)
    if session is None or session.user_id != user_id:
        raise NotFound("We couldn't find that payment.")
    return session


def fulfil_checkout(*, session_id: str, payment_intent_id: str, now: datetime) -> CheckoutSession | None:
    """A Checkout Session completed: give the seat and capture, or release the money.

    Idempotent: a session already settled is returned unchanged. A transient gateway
    failure raises PaymentError with the session still open, so the retry finishes it.
    """
    session = db.session.get(CheckoutSession, session_id)
    if session is None:
        log.warning("checkout.session.completed for unknown session %s", session_id)
        return None
    if session.status in SETTLED:
        return session
    if session.payment_intent_id is None:
        session.payment_intent_id = payment_intent_id
        db.session.commit()
    gateway = payments.gateway()
    try:
        ticket = queue.complete_purchase(
            entry_id=session.entry_id, user_id=session.user_id,
            payment_reference=payment_intent_id, amount_pence=session.amount_pence,
            now=now, honour_lapsed=True,
        )
    except queue.OfferNotLive:
        return _release_money(session, gateway)
    status = gateway.payment_status(payment_intent_id)
    if status == "requires_capture":
        try:
            gateway.capture(payment_intent_id)
        except payments.PaymentError:
            status = gateway.payment_status(payment_intent_id)
            if status != "canceled":
                raise  # transient: the webhook answers 5xx and Stripe retries
        else:
            status = "succeeded"
    if status == "canceled":
        # The authorisation is gone: nothing was taken, so no ticket either.
        queue.void_ticket(ticket_id=ticket.id, now=now)
        return _settle(session, CheckoutStatus.NOT_CHARGED)
    if status != "succeeded":
        raise payments.PaymentError(f"Payment {payment_intent_id} is {status}; not captured yet.")
    session.ticket_id = ticket.id
    return _settle(session, CheckoutStatus.PAID)


def _release_money(session: CheckoutSession, gateway) -> CheckoutSession:
    """No seat for this payment: cancel the authorisation, or refund what was captured."""
    status = gateway.payment_status(session.payment_intent_id)
    if status == "succeeded":
        gateway.refund(session.payment_intent_id, key=f"refund-session-{session.id}")
        return _settle(session, CheckoutStatus.REFUNDED)
    if status == "requires_capture":
        gateway.cancel(session.payment_intent_id)
    return _settle(session, CheckoutStatus.NOT_CHARGED)


def _settle(session: CheckoutSession, status: str) -> CheckoutSession:
    session.status = status
    db.session.commit()
    return session


def close_checkout(*, entry_id: int) -> None:
    """The offer ended before payment: close its open Checkout Session, if it has one."""
    session = db.session.scalar(select(CheckoutSession).where(CheckoutSession.entry_id == entry_id))
    if session is None or session.status != CheckoutStatus.OPEN:
        return
    payments.gateway().expire_checkout_session(session.id)
    session.status = CheckoutStatus.EXPIRED
    db.session.commit()


def refund_ticket(*, ticket_id: int, organizer_id: int, now: datetime) -> Ticket:
    """An organizer refunds one ticket: the seat frees at once, the money follows."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.event.organizer_id != organizer_id:
        raise NotFound("We couldn't find that ticket.")
    return queue.refund_ticket_seat(ticket_id=ticket_id, now=now, actor_id=organizer_id)


def refund_progress(event_id: int) -> tuple[int, int]:
    """(refunds whose money has gone back, refunded tickets) for an event."""
    rows = db.session.execute(
        select(Ticket.refund_settled_at.is_not(None)).where(
            Ticket.event_id == event_id, Ticket.status == TicketStatus.REFUNDED)
    ).scalars().all()
    return sum(rows), len(rows)


def owed_refunds() -> list[int]:
    """Refunded tickets whose money has not gone back yet (for the resuming sweep)."""
    return list(db.session.scalars(select(Ticket.id).where(
        Ticket.status == TicketStatus.REFUNDED, Ticket.refund_settled_at.is_(None))))


def send_refund(*, ticket_id: int, now: datetime) -> None:
    """Return a refunded ticket's money through the gateway; idempotent per ticket."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.status != TicketStatus.REFUNDED or ticket.refund_settled_at:
        return
    reference = ticket.payment_reference or ""
    if ticket.amount_pence and not reference.startswith("free-"):
        ticket.refund_reference = payments.gateway().refund(reference, key=f"refund-ticket-{ticket.id}")
    ticket.refund_settled_at = now
    db.session.commit()


# ------------------------------------------------------------------ webhooks


def receive_webhook(payload: bytes, signature: str | None, *, now: datetime) -> str:
    """Verify and handle one delivery; returns what was done. Raises ValueError or
    stripe.SignatureVerificationError on a bad delivery (nothing changed), PaymentError
    or Busy on a transient failure (retry)."""
    event = payments.verify_webhook(payload, signature)
    return handle_event(event, now=now)


def handle_event(event: dict, *, now: datetime) -> str:
    event_id, kind = event["id"], event["type"]
    if db.session.get(WebhookEvent, event_id) is not None:
        return "duplicate"
    obj = event["data"]["object"]
    if kind == "checkout.session.completed":
        fulfil_checkout(session_id=obj["id"], payment_intent_id=obj["payment_intent"], now=now)
    elif kind == "checkout.session.expired":
        session = db.session.get(CheckoutSession, obj["id"])
        if session is not None and session.status == CheckoutStatus.OPEN:
            _settle(session, CheckoutStatus.EXPIRED)
    elif kind == "payment_intent.canceled":
        session = db.session.scalar(
            select(CheckoutSession).where(CheckoutSession.payment_intent_id == obj["id"]))
        if session is not None and session.status == CheckoutStatus.OPEN:
            _settle(session, CheckoutStatus.NOT_CHARGED)
    elif kind == "charge.refunded":
        _refunded_at_stripe(obj, now=now)
    elif kind == "account.updated":
        _account_updated(obj)
    else:
        return "ignored"
    db.session.add(WebhookEvent(id=event_id, type=kind, received_at=now))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same event handled by a parallel delivery
    return "handled"


def _refunded_at_stripe(charge: dict, *, now: datetime) -> None:
    """A refund made in Stripe's dashboard: the ticket stops being valid and frees its seat."""
    ticket = db.session.scalar(
        select(Ticket).where(Ticket.payment_reference == charge.get("payment_intent")))
    if ticket is None or not charge.get("refunded"):
        return
    if ticket.status in TicketStatus.LIVE:
        ticket = queue.refund_ticket_seat(ticket_id=ticket.id, now=now, money_returned=True,
                                          reason="refunded in the Stripe dashboard")
    if ticket.refund_settled_at is None:
        ticket = db.session.get(Ticket, ticket.id)
        ticket.refund_settled_at = now
        db.session.commit()


def _account_updated(account: dict) -> None:
    user = db.session.scalar(select(User).where(User.stripe_connect_id == account["id"]))
    if user is None:
        return
    status = payments.account_status_from(account)
    user.stripe_details_submitted = status.details_submitted
    user.stripe_charges_enabled = status.charges_enabled
    db.session.commit()


# ------------------------------------------------------------------ Connect


def connect_status(*, user_id: int) -> payments.AccountStatus | None:
    """The organizer's Connect account status (refreshed from the gateway), or None."""
    user = db.session.get(User, user_id)
    if not user.stripe_connect_id:
        return None
    status = payments.gateway().account_status(user.stripe_connect_id)
    user.stripe_details_submitted = status.details_submitted
    user.stripe_charges_enabled = status.charges_enabled
    db.session.commit()
    return status


def onboarding_link(*, user_id: int, refresh_url: str, return_url: str) -> str:
    """Create the organizer's Express account if needed and link to its onboarding."""
    user = db.session.get(User, user_id)
    gateway = payments.gateway()
    if not user.stripe_connect_id:
        user.stripe_connect_id = gateway.create_account(email=user.email)
        db.session.commit()
    return gateway.account_link(user.stripe_connect_id, refresh_url=refresh_url,
                                return_url=return_url)


def dashboard_link(*, user_id: int) -> str:
    user = db.session.get(User, user_id)
    if not user.stripe_connect_id:
        raise PurchaseError("Set up payouts first.")
    return payments.gateway().dashboard_link(user.stripe_connect_id)
