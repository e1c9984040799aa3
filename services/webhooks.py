"""What the payment service tells us: signed webhook deliveries, verified and applied once.

Stripe retries and reorders deliveries, so every event is recorded by id and each handler
reads the state it leaves behind (``services/purchases.py`` does the buying). The local
payment page delivers its results through the very same path (``pay_locally``), but for
the plain case, which it pays in one locked transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import CheckoutSession, CheckoutStatus, Ticket, TicketStatus, User, WebhookEvent
from services import Busy, NotFound, ServiceError, payments, payouts, purchases, queue

log = logging.getLogger(__name__)


def receive_webhook(payload: bytes, signature: str | None, *, now: datetime) -> str:
    """Verify and handle one delivery; returns what was done. Raises ValueError or
    stripe.SignatureVerificationError on a bad delivery (nothing changed), PaymentError
    or Busy on a transient failure (retry)."""
    event = payments.verify_webhook(payload, signature)
    return handle_event(event, now=now)


class MalformedEvent(ValueError):
    """A signed delivery whose body is not an event we can read: nothing was changed."""


def _id(value, what: str, *, limit: int = 255) -> str:
    """``value`` if it can be a Stripe id (or event type), else MalformedEvent."""
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value
    raise MalformedEvent(f"{what} is missing or malformed")


def handle_event(event: dict, *, now: datetime) -> str:
    """Apply one verified event, once per event id.

    Returns "handled"; "duplicate" (this event id was applied before); "ignored" (a type
    we don't use, or about a session, payment or account that isn't ours); or "not
    applied" (a refusal no retry can change). Every event of a type we use is recorded,
    so a redelivery changes nothing. Raises MalformedEvent when the body can't be read
    (nothing changed), PaymentError or Busy on a transient failure (Stripe retries).
    """
    if not isinstance(event, dict):
        raise MalformedEvent("the event is not an object")
    event_id = _id(event.get("id"), "id")
    kind = _id(event.get("type"), "type", limit=100)
    handler = _HANDLERS.get(kind)
    if handler is None:
        return "ignored"
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise MalformedEvent("data.object is missing or not an object")
    if db.session.get(WebhookEvent, event_id) is not None:
        return "duplicate"
    try:
        outcome = handler(obj, now=now)
    except (payments.PaymentError, Busy):
        raise
    except MalformedEvent:
        db.session.rollback()
        raise
    except ServiceError as error:
        db.session.rollback()
        log.warning("webhook %s (%s) not applied: %s", event_id, kind, error)
        outcome = "not applied"
    db.session.add(WebhookEvent(id=event_id, type=kind, received_at=now))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same event handled by a parallel delivery
    return outcome


def _session_completed(session: dict, *, now: datetime) -> str:
    session_id = _id(session.get("id"), "checkout session id")
    payment_intent_id = _id(session.get("payment_intent"), "payment_intent")
    session = purchases.fulfil_checkout(session_id=session_id,
                                        payment_intent_id=payment_intent_id, now=now)
    if session is None:
        return "ignored"
    return "handled"


def _session_expired(session: dict, *, now: datetime) -> str:
    session_id = _id(session.get("id"), "checkout session id")
    if db.session.get(CheckoutSession, session_id) is None:
        return "ignored"
    purchases.close_if_open(CheckoutSession.id == session_id,
                            CheckoutSession.payment_intent_id.is_(None),
                            status=CheckoutStatus.EXPIRED)
    return "handled"


def _authorisation_cancelled(intent: dict, *, now: datetime) -> str:
    """Stripe cancelled an uncaptured payment (we released it, or it lapsed): nothing was
    taken. A ticket issued for it whose capture never happened is voided."""
    payment_intent_id = _id(intent.get("id"), "payment intent id")
    session = db.session.scalar(
        select(CheckoutSession).where(CheckoutSession.payment_intent_id == payment_intent_id))
    if session is None:
        return "ignored"
    ticket = db.session.scalar(select(Ticket).where(Ticket.payment_reference == payment_intent_id))
    uncaptured = ticket is not None and ticket.status in TicketStatus.LIVE
    if session.status == CheckoutStatus.OPEN and uncaptured:
        queue.void_ticket(ticket_id=ticket.id, now=now)
    purchases.close_if_open(CheckoutSession.id == session.id, status=CheckoutStatus.NOT_CHARGED)
    return "handled"


def _refunded_at_stripe(charge: dict, *, now: datetime) -> str:
    """A refund made in Stripe's dashboard is a fact: the money has gone back, so the ticket
    is refunded whatever its state, even one already used at the door. Its place counts as
    free again and passes on by the usual rules (no offers once the event has started)."""
    if charge.get("payment_intent") is None:
        return "ignored"  # a charge made outside Checkout: not one of ours
    payment_intent_id = _id(charge.get("payment_intent"), "payment_intent")
    refunded = charge.get("refunded")
    if not isinstance(refunded, bool):
        raise MalformedEvent("refunded is missing or not a boolean")
    ticket = db.session.scalar(select(Ticket).where(Ticket.payment_reference == payment_intent_id))
    if ticket is None or not refunded:  # not ours, or a partial refund: the ticket stands
        return "ignored"
    if ticket.status in TicketStatus.LIVE:
        try:
            queue.refund_ticket_seat(ticket_id=ticket.id, now=now, money_returned=True,
                                     reason="refunded in the Stripe dashboard")
        except queue.QueueError:
            pass  # refunded or cancelled meanwhile (a parallel delivery, the organizer)
    ticket = db.session.get(Ticket, ticket.id, populate_existing=True)
    if ticket.status == TicketStatus.REFUNDED and ticket.refund_settled_at is None:
        ticket.refund_settled_at = now  # our own refund task has nothing left to send
        db.session.commit()
    return "handled"


def _account_updated(account: dict, *, now: datetime) -> str:
    account_id = _id(account.get("id"), "account id")
    requirements = account.get("requirements")
    if requirements is not None and not (
            isinstance(requirements, dict)
            and isinstance(requirements.get("currently_due") or [], list)):
        raise MalformedEvent("requirements is malformed")
    user = db.session.scalar(select(User).where(User.stripe_connect_id == account_id))
    if user is None:
        return "ignored"
    payouts.record_account_status(user, payments.account_status_from(account))
    return "handled"


_HANDLERS = {
    "checkout.session.completed": _session_completed,
    "checkout.session.expired": _session_expired,
    "payment_intent.canceled": _authorisation_cancelled,
    "charge.refunded": _refunded_at_stripe,
    "account.updated": _account_updated,
}


def pay_locally(*, session_id: str, user_id: int, now: datetime) -> None:
    """The local payment page's Pay button.

    The plain case (a live offer, an open session, not the last ticket) is paid in one
    locked transaction (``purchases.pay_local_offer``). Every other case goes the way a
    Stripe payment goes: authorise, then deliver the completion as a signed event through
    the webhook path, so late payments, the last ticket and lost races follow Stripe's rules.

    Pressing Pay again, or several times at once, authorises one payment and issues one
    ticket; a session that is no longer open is left as it is. Raises NotFound (not the
    buyer's, or payments are not local), PaymentError or Busy (try again).
    """
    gateway = payments.gateway()
    if gateway.name != "local":
        raise NotFound("We couldn't find that payment.")
    if purchases.pay_local_offer(session_id=session_id, user_id=user_id, now=now):
        return
    session = purchases.get_session(session_id=session_id, user_id=user_id)
    if session.status == CheckoutStatus.OPEN:
        payload, signature = payments.signed_local_event(gateway.authorize(session))
        receive_webhook(payload, signature, now=now)
