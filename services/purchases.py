"""Buying and refunding: checkout start, idempotent fulfilment, the late-payment rule.

Never take money without a seat. A card is only *authorised* at Checkout (manual
capture); fulfilment first gives the seat (in one locked queue transition), then captures.
When no seat can be given, the authorisation is cancelled (nothing was taken) or, if the
money was somehow captured already, refunded at once. Every step can run twice: Stripe
retries and reorders webhooks, so each decision reads the state it leaves behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import (
    CheckoutSession, CheckoutStatus, EntryStatus, Ticket, TicketStatus, User, WaitingListEntry,
    WebhookEvent,
)
from services import Busy, NotFound, ServiceError, payments, queue

log = logging.getLogger(__name__)

# Stripe refuses a Checkout Session that expires in under 30 minutes.
STRIPE_MIN_SESSION = timedelta(minutes=31)
SETTLED = (CheckoutStatus.PAID, CheckoutStatus.NOT_CHARGED, CheckoutStatus.REFUNDED)
# The sweep leaves a payment alone this long after its session last changed, so it never
# races a webhook or a Pay press still in flight; and looks at this many sessions a run.
SETTLE_BATCH = 100


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


@dataclass(frozen=True)
class CheckoutUrls:
    """Where checkout sends the buyer, given by the caller: services build no URLs.

    ``success`` and ``cancel`` are where the payment page returns to (absolute, on
    ``BASE_URL``, with Stripe's ``{CHECKOUT_SESSION_ID}`` placeholder); ``local_page`` is the
    local payment page of a session id, ``ticket`` the page of a ticket id.
    """

    success: str
    cancel: str
    local_page: Callable[[str], str]
    ticket: Callable[[int], str]


def start_checkout(*, event_id: int, user_id: int, now: datetime, urls: CheckoutUrls) -> str:
    """Where to send the buyer to pay for their live offer (one session per offer).

    Free events need no payment: the ticket is issued at once and its page returned.
    """
    entry = _live_offer(event_id, user_id, now)
    event = entry.event
    if event.price_pence == 0:
        ticket = queue.complete_purchase(entry_id=entry.id, user_id=user_id,
                                         payment_reference=f"free-{entry.id}",
                                         amount_pence=0, now=now)
        return urls.ticket(ticket.id)
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
        success_url=urls.success,
        cancel_url=urls.cancel,
        expires_at=max(entry.offer_expires_at, now + STRIPE_MIN_SESSION),
        destination=destination,
        customer_email=buyer.email,
    )
    page = session.url if session.url is not None else urls.local_page(session.id)
    db.session.add(CheckoutSession(
        id=session.id, entry_id=entry.id, event_id=event.id, user_id=user_id,
        amount_pence=event.price_pence, fee_pence=fee, url=page,
    ))
    try:
        db.session.commit()
    except IntegrityError:  # a double click made the same (idempotent) session
        db.session.rollback()
        return db.session.scalar(
            select(CheckoutSession.url).where(CheckoutSession.entry_id == entry.id))
    return page


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
        if ticket.status in TicketStatus.LIVE:
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


def _close_if_open(*criteria, status: str) -> bool:
    """Move matching sessions from ``open`` to ``status`` in one conditional update, so a
    session honoured meanwhile (paid by a webhook or the sweep) is never overwritten."""
    closed = db.session.execute(
        update(CheckoutSession)
        .where(CheckoutSession.status == CheckoutStatus.OPEN, *criteria)
        .values(status=status)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(closed)


def close_checkout(*, entry_id: int) -> bool:
    """The offer ended before payment: close its open Checkout Session, if it has one.

    A session whose payment is already recorded, or that the gateway says the buyer has
    just completed, stays open: that payment is fulfilled (or released under the
    late-payment rule) by its webhook or by ``settle_stale_payments``, never dropped.
    Returns whether this call closed it.
    """
    session = db.session.scalar(select(CheckoutSession).where(CheckoutSession.entry_id == entry_id))
    if session is None or session.status != CheckoutStatus.OPEN or session.payment_intent_id:
        return False
    if not payments.gateway().expire_checkout_session(session.id):
        log.info("checkout %s completed as its offer ended; left open for fulfilment", session.id)
        return False
    return _close_if_open(CheckoutSession.id == session.id,
                          CheckoutSession.payment_intent_id.is_(None),
                          status=CheckoutStatus.EXPIRED)


def pay_locally(*, session_id: str, user_id: int, now: datetime) -> CheckoutSession:
    """The local payment page's Pay button: authorise, then deliver the completion as a
    signed event through the webhook path, exactly as Stripe would.

    Pressing Pay again, or several times at once, authorises one payment and issues one
    ticket; a session that is no longer open is returned as it is. Raises NotFound (not
    the buyer's, or payments are not local), PaymentError or Busy (try again).
    """
    gateway = payments.gateway()
    session = get_session(session_id=session_id, user_id=user_id)
    if gateway.name != "local":
        raise NotFound("We couldn't find that payment.")
    if session.status == CheckoutStatus.OPEN:
        payload, signature = payments.signed_local_event(gateway.authorize(session))
        receive_webhook(payload, signature, now=now)
    return session


def settle_after() -> timedelta:
    """How long after its session last changed an unsettled payment is left to its webhook."""
    return timedelta(seconds=current_app.config["PAYMENT_SETTLE_AFTER_SECONDS"])


def settle_stale_payments(*, now: datetime, batch: int = SETTLE_BATCH) -> int:
    """Finish payments that were authorised but never settled (the webhook never came, or
    fulfilment was cut short): give the seat and capture, or release the money under the
    late-payment rule, exactly as the webhook would. For the periodic task.

    Looks at sessions still open, and at sessions closed unpaid that carry a payment,
    unchanged for ``PAYMENT_SETTLE_AFTER_SECONDS`` (a webhook normally comes within
    seconds; this is the safety net): those with a recorded payment first, then the oldest,
    at most ``batch`` a run. An open session without a payment is closed if its offer
    has ended, else marked checked so the next run looks at others first. A failure on one
    session is logged and the rest carry on. Returns how many sessions this run finished.
    """
    gateway = payments.gateway()
    unpaid = CheckoutSession.payment_intent_id.is_(None)
    rows = db.session.execute(
        select(CheckoutSession.id, CheckoutSession.payment_intent_id, CheckoutSession.entry_id,
               WaitingListEntry.status)
        .join(WaitingListEntry, WaitingListEntry.id == CheckoutSession.entry_id)
        .where(CheckoutSession.updated_at <= now - settle_after(),
               or_(CheckoutSession.status == CheckoutStatus.OPEN,
                   and_(CheckoutSession.status == CheckoutStatus.EXPIRED, ~unpaid)))
        .order_by(unpaid, CheckoutSession.updated_at, CheckoutSession.id)
        .limit(batch)
    ).all()
    db.session.rollback()  # end the read before the writes below
    finished = 0
    for session_id, payment_intent_id, entry_id, entry_status in rows:
        try:
            payment_intent_id = payment_intent_id or gateway.completed_payment(session_id)
            if payment_intent_id is not None:
                session = fulfil_checkout(session_id=session_id,
                                          payment_intent_id=payment_intent_id, now=now)
                finished += session.status in SETTLED
            elif entry_status != EntryStatus.OFFERED:
                finished += close_checkout(entry_id=entry_id)
            else:  # still on the payment page: check again after the others
                db.session.execute(
                    update(CheckoutSession)
                    .where(CheckoutSession.id == session_id,
                           CheckoutSession.status == CheckoutStatus.OPEN)
                    .values(updated_at=now)
                    .execution_options(synchronize_session=False))
                db.session.commit()
        except ServiceError as error:
            db.session.rollback()
            log.warning("could not settle checkout %s yet (%s); the next run retries",
                        session_id, error)
    return finished


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
    if fulfil_checkout(session_id=session_id, payment_intent_id=payment_intent_id, now=now) is None:
        return "ignored"
    return "handled"


def _session_expired(session: dict, *, now: datetime) -> str:
    session_id = _id(session.get("id"), "checkout session id")
    if db.session.get(CheckoutSession, session_id) is None:
        return "ignored"
    _close_if_open(CheckoutSession.id == session_id, CheckoutSession.payment_intent_id.is_(None),
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
    if session.status == CheckoutStatus.OPEN and ticket is not None and ticket.status in TicketStatus.LIVE:
        queue.void_ticket(ticket_id=ticket.id, now=now)
    _close_if_open(CheckoutSession.id == session.id, status=CheckoutStatus.NOT_CHARGED)
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
    status = payments.account_status_from(account)
    user.stripe_details_submitted = status.details_submitted
    user.stripe_charges_enabled = status.charges_enabled
    db.session.commit()
    return "handled"


_HANDLERS = {
    "checkout.session.completed": _session_completed,
    "checkout.session.expired": _session_expired,
    "payment_intent.canceled": _authorisation_cancelled,
    "charge.refunded": _refunded_at_stripe,
    "account.updated": _account_updated,
}


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


def dashboard_link(*, user_id: int) -> str | None:
    """A sign-in link to the organizer's Express dashboard; None when the gateway has none
    (local payments)."""
    user = db.session.get(User, user_id)
    if not user.stripe_connect_id:
        raise PurchaseError("Set up payouts first.")
    return payments.gateway().dashboard_link(user.stripe_connect_id)
