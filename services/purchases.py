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

from flask import current_app
from sqlalchemy import and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import (
    CheckoutSession,
    CheckoutStatus,
    EntryStatus,
    Event,
    Ticket,
    TicketStatus,
    User,
    WaitingListEntry,
)
from services import NotFound, ServiceError, payments, queue, timezones
from services.fees import platform_fee

log = logging.getLogger(__name__)

# Stripe refuses a Checkout Session that expires in under 30 minutes.
STRIPE_MIN_SESSION = timedelta(minutes=31)
SETTLED = (CheckoutStatus.PAID, CheckoutStatus.NOT_CHARGED, CheckoutStatus.REFUNDED)
# The sweep leaves a payment alone this long after its session last changed, so it never
# races a webhook or a Pay press still in flight; and looks at this many sessions a run.
SETTLE_BATCH = 100


class PurchaseError(ServiceError):
    status_code = 409


def _live_offer(event_id: int, user_id: int, now: datetime):
    """The buyer's live offer for the event with what paying for it needs (the event, its
    organizer's payment account, the buyer's address, any payment page made for it), in
    one read; PurchaseError when they hold none."""
    entries, events = WaitingListEntry.__table__, Event.__table__
    organizer, buyer, pages = User.__table__.alias(), User.__table__.alias(), _SESSIONS
    offer = db.session.execute(
        select(entries.c.id, entries.c.offer_expires_at, events.c.id.label("event_id"),
               events.c.name, events.c.price_pence, events.c.timezone,
               organizer.c.stripe_connect_id, organizer.c.stripe_charges_enabled,
               buyer.c.email, pages.c.status.label("page_status"),
               pages.c.url.label("page_url"))
        .join(events, events.c.id == entries.c.event_id)
        .join(organizer, organizer.c.id == events.c.organizer_id)
        .join(buyer, buyer.c.id == entries.c.user_id)
        .outerjoin(pages, pages.c.entry_id == entries.c.id)
        .where(entries.c.event_id == event_id, entries.c.user_id == user_id,
               entries.c.status == EntryStatus.OFFERED, entries.c.offer_expires_at > now,
               ~exists().where(Ticket.event_id == event_id, Ticket.user_id == user_id,
                               Ticket.status.in_(TicketStatus.LIVE)))
    ).one_or_none()
    if offer is None:
        raise PurchaseError("You don't hold a ticket offer for this event any more. "
                            "Join the waiting list to get one.")
    return offer


_SESSIONS = CheckoutSession.__table__


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
    offer = _live_offer(event_id, user_id, now)
    if offer.price_pence == 0:
        ticket = queue.complete_purchase(entry_id=offer.id, user_id=user_id,
                                         payment_reference=f"free-{offer.id}",
                                         amount_pence=0, now=now)
        return urls.ticket(ticket.id)
    if offer.page_status is not None:
        if offer.page_status == CheckoutStatus.OPEN:
            return offer.page_url
        raise PurchaseError("This offer's payment has already been handled.")
    gateway = payments.gateway()
    destination = offer.stripe_connect_id if gateway.name == "stripe" else None
    if gateway.name == "stripe" and not (destination and offer.stripe_charges_enabled):
        raise PurchaseError("The organizer can't take payments yet. Please try again later.")
    fee = platform_fee(offer.price_pence)
    metadata = {"event_id": str(offer.event_id), "user_id": str(user_id),
                "entry_id": str(offer.id)}
    session = gateway.create_checkout_session(
        key=f"checkout-entry-{offer.id}",
        amount_pence=offer.price_pence,
        fee_pence=fee,
        # Stripe's page shows this: how long the hold lasts, in the event's zone.
        description=f"Ticket: {offer.name} (held for you until "
                    f"{timezones.clock(offer.offer_expires_at, offer.timezone)})",
        metadata=metadata,
        success_url=urls.success,
        cancel_url=urls.cancel,
        expires_at=max(offer.offer_expires_at, now + STRIPE_MIN_SESSION),
        destination=destination,
        customer_email=offer.email,
    )
    page = session.url if session.url is not None else urls.local_page(session.id)
    try:
        db.session.execute(insert(_SESSIONS).values(
            id=session.id, entry_id=offer.id, event_id=offer.event_id, user_id=user_id,
            amount_pence=offer.price_pence, fee_pence=fee, url=page))
        db.session.commit()
    except IntegrityError:  # a double click made the same (idempotent) session
        db.session.rollback()
        return db.session.scalar(
            select(CheckoutSession.url).where(CheckoutSession.entry_id == offer.id))
    return page


def get_session(*, session_id: str, user_id: int) -> CheckoutSession:
    session = db.session.get(CheckoutSession, session_id)
    if session is None or session.user_id != user_id:
        raise NotFound("We couldn't find that payment.")
    return session


def fulfil_checkout(*, session_id: str, payment_intent_id: str,
                    now: datetime) -> CheckoutSession | None:
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


_READ_PAGE = select(
    _SESSIONS.c.entry_id, _SESSIONS.c.event_id, _SESSIONS.c.user_id, _SESSIONS.c.status,
    _SESSIONS.c.amount_pence, _SESSIONS.c.payment_intent_id,
).where(_SESSIONS.c.id == bindparam("session_id"))
_MARK_PAID = update(_SESSIONS).where(
    _SESSIONS.c.id == bindparam("session_id"), _SESSIONS.c.status == CheckoutStatus.OPEN,
    _SESSIONS.c.payment_intent_id.is_(None))


def pay_local_offer(*, session_id: str, user_id: int, now: datetime) -> bool:
    """The local payment page's Pay, for the plain case, in one locked transaction: the
    seat given (``queue.sell_offer``), the payment authorised and captured in the ledger,
    and the session marked paid, committed together (no webhook round: the local gateway
    is our own ledger, so there is nothing to authorise first and capture later).

    Returns False when the case is not the plain one (the session is not open, a payment
    was recorded for it already, the offer is not live, or this sale sells the event out):
    nothing was written, and the caller goes the way Stripe's payments go (authorise, then
    the signed webhook). Raises NotFound when the session is not the buyer's.
    """
    page = db.session.execute(_READ_PAGE, {"session_id": session_id}).one_or_none()
    if page is None or page.user_id != user_id:
        raise NotFound("We couldn't find that payment.")
    if page.status != CheckoutStatus.OPEN or page.payment_intent_id is not None:
        return False
    gateway = payments.gateway()
    payment_id = gateway.new_payment_id()

    def record(ticket_id: int) -> None:
        gateway.record_captured(payment_id, session_id=session_id,
                                amount_pence=page.amount_pence)
        paid = db.session.execute(_MARK_PAID, {
            "session_id": session_id, "status": CheckoutStatus.PAID,
            "payment_intent_id": payment_id, "ticket_id": ticket_id}).rowcount
        if not paid:  # settled meanwhile (an expiry, another press): let the full way decide
            raise queue.TakeTheLongWay()

    return queue.sell_offer(
        entry_id=page.entry_id, event_id=page.event_id, user_id=user_id,
        payment_reference=payment_id, amount_pence=page.amount_pence, now=now,
        record=record) is not None


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


def close_if_open(*criteria, status: str) -> bool:
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
    return close_if_open(CheckoutSession.id == session.id,
                          CheckoutSession.payment_intent_id.is_(None),
                          status=CheckoutStatus.EXPIRED)


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


def organizer_ticket(*, ticket_id: int, organizer_id: int) -> Ticket:
    """A ticket to one of the organizer's events (anyone else's: not found)."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.event.organizer_id != organizer_id:
        raise NotFound("We couldn't find that ticket.")
    return ticket


def refund_ticket(*, ticket_id: int, organizer_id: int, now: datetime) -> Ticket:
    """An organizer refunds one ticket: the seat frees at once, the money follows."""
    organizer_ticket(ticket_id=ticket_id, organizer_id=organizer_id)
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
        ticket.refund_reference = payments.gateway().refund(
            reference, key=f"refund-ticket-{ticket.id}")
    ticket.refund_settled_at = now
    db.session.commit()
