"""Tickets as their owners and the door see them: lists, signed QR tokens, door codes,
receipts, check-in."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime

import segno
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import case, func, select, update

from extensions import db
from models import (
    DOOR_CODE_ALPHABET,
    DOOR_CODE_LENGTH,
    AuditAction,
    AuditEntry,
    CheckoutSession,
    Event,
    Ticket,
    TicketStatus,
)
from services import NotFound, ServiceError
from services.fees import platform_fee
from services.locking import begin_write, busy_on_lock_timeout


class TokenError(ServiceError):
    pass


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="ticket-qr")


def token_for(ticket: Ticket) -> str:
    """A token naming the ticket and its event, signed (HMAC) so it can't be forged or
    altered, and checkable at the door without a database lookup."""
    return _serializer().dumps({"t": ticket.id, "e": ticket.event_id})


def read_token(token: str) -> tuple[int, int]:
    """(ticket id, event id) from a token; TokenError if forged, altered or unreadable."""
    try:
        data = _serializer().loads((token or "").strip())
        return int(data["t"]), int(data["e"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise TokenError(
            "This code isn't a valid Ticket Hub ticket (forged or unreadable).") from None


def qr_svg(ticket: Ticket) -> str:
    """The ticket's token as an inline SVG QR code."""
    return segno.make(token_for(ticket), error="m").svg_inline(scale=5, border=2, dark="#000")


def qr_png(ticket: Ticket) -> bytes:
    """The ticket's token as a PNG QR code (for email, where SVG is rarely shown)."""
    buffer = io.BytesIO()
    segno.make(token_for(ticket), error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


# What people type for a door code: any case, spaces or dashes between the groups, and the
# letters Crockford's base32 reads as digits.
_CODE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—]+")
_CODE_LOOKALIKES = str.maketrans("ILO", "110")


def door_code_of(text: str) -> str | None:
    """The door code ``text`` spells (``k7qm4-xpr2d`` → ``K7QM4XPR2D``), or None when it
    can't be one (a QR token, say)."""
    code = _CODE_SEPARATORS.sub("", text or "").upper().translate(_CODE_LOOKALIKES)
    if len(code) == DOOR_CODE_LENGTH and all(ch in DOOR_CODE_ALPHABET for ch in code):
        return code
    return None


def grouped_code(code: str | None) -> str:
    """``K7QM4XPR2D`` → ``K7QM4-XPR2D``: two groups of five are easier to read out."""
    if not code:
        return ""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def _identify(token: str) -> tuple[int, int]:
    """(ticket id, event id) of a QR token or a door code; TokenError if neither."""
    code = door_code_of(token)
    if code is None:
        return read_token(token)
    found = db.session.execute(
        select(Ticket.id, Ticket.event_id).where(Ticket.door_code == code)).first()
    if found is None:
        raise TokenError("No ticket has this code. Check it with the holder and type it again.")
    return found.id, found.event_id


@dataclass(frozen=True)
class Receipt:
    """What a buyer paid for a ticket, for the success page and the purchase email."""

    ticket_id: int
    amount_pence: int
    fee_pence: int  # the platform's part of the amount (the organizer gets the rest)
    paid_at: datetime
    reference: str  # the payment's own reference (Stripe's payment intent, or ours)

    @property
    def number(self) -> str:
        """The receipt's number, as people quote it: ``TH-000042``."""
        return f"TH-{self.ticket_id:06d}"


def receipt_for(ticket: Ticket) -> Receipt:
    """The receipt of a ticket: the fee as charged at checkout (the rule's value today for
    a ticket sold without one)."""
    charged = db.session.scalar(
        select(CheckoutSession.fee_pence).where(CheckoutSession.ticket_id == ticket.id))
    fee = charged if charged is not None else platform_fee(ticket.amount_pence)
    return Receipt(ticket_id=ticket.id, amount_pence=ticket.amount_pence, fee_pence=fee,
                   paid_at=ticket.purchased_at, reference=ticket.payment_reference or "")


def owned_ticket(*, ticket_id: int, user_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.user_id != user_id:
        raise NotFound("We couldn't find that ticket.")
    return ticket


def tickets_of(*, user_id: int, now: datetime) -> dict[str, list[Ticket]]:
    """A buyer's tickets: upcoming, past, and refunded or cancelled."""
    rows = db.session.scalars(
        select(Ticket).join(Event).where(Ticket.user_id == user_id).order_by(Event.starts_at)
    )
    groups: dict[str, list[Ticket]] = {"upcoming": [], "past": [], "ended": []}
    for ticket in rows:
        if ticket.status not in TicketStatus.LIVE:
            groups["ended"].append(ticket)
        elif ticket.event.is_past(now) or ticket.event.is_cancelled:
            groups["past"].append(ticket)
        else:
            groups["upcoming"].append(ticket)
    return groups


# ------------------------------------------------------------------ the door


class CheckInOutcome:
    ADMITTED = "admitted"
    ALREADY_USED = "already_used"
    REFUNDED = "refunded"  # refunded or cancelled: the ticket admits nobody
    WRONG_EVENT = "wrong_event"
    INVALID = "invalid"  # forged, altered, truncated or unreadable


@dataclass(frozen=True)
class DoorTally:
    """How many of an event's live tickets have been checked in."""

    checked_in: int
    live: int


@dataclass(frozen=True)
class CheckIn:
    """What the door sees after one scan: the outcome, why, and the running tally."""

    outcome: str
    message: str
    tally: DoorTally
    ticket: Ticket | None = None

    @property
    def admitted(self) -> bool:
        return self.outcome == CheckInOutcome.ADMITTED


def door_tally(event_id: int) -> DoorTally:
    """Checked-in and live (valid or used) tickets of an event, in one aggregate query."""
    checked_in, live = db.session.execute(
        select(
            func.coalesce(func.sum(case((Ticket.status == TicketStatus.USED, 1), else_=0)), 0),
            func.count(),
        ).where(Ticket.event_id == event_id, Ticket.status.in_(TicketStatus.LIVE))
    ).one()
    return DoorTally(int(checked_in), int(live))


def check_in(*, event_id: int, token: str, now: datetime,
             actor_id: int | None = None) -> CheckIn:
    """Admit the holder of ``token`` (the QR code's signed token, or the ticket's door code
    as typed) to event ``event_id``: a valid ticket becomes used.

    Exactly once, however many phones scan the same ticket at the same moment: the
    transition is one conditional UPDATE (``… WHERE status = 'valid'``) and only the
    statement that changed the row admits. PostgreSQL re-checks the condition after
    waiting for a concurrent update of the row, and SQLite runs one writer at a time.
    No event lock is needed: a used ticket is still a live one, so no count changes.
    An admission is recorded in the audit trail in the same transaction, with
    ``actor_id`` (who was at the door). The caller checks that the event is the
    organizer's own.
    """
    try:
        ticket_id, token_event_id = _identify(token)
    except TokenError as error:
        return CheckIn(CheckInOutcome.INVALID, str(error), door_tally(event_id))
    if token_event_id != event_id:
        return CheckIn(CheckInOutcome.WRONG_EVENT, "This ticket is for a different event.",
                       door_tally(event_id))
    # The UPDATE must open its transaction: a SQLite transaction that has already read
    # can't wait for the write lock, it fails with "database is locked".
    begin_write()
    with busy_on_lock_timeout():
        changed = db.session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.event_id == event_id,
                   Ticket.status == TicketStatus.VALID)
            .values(status=TicketStatus.USED, checked_in_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed == 1:
            holder_id = db.session.scalar(select(Ticket.user_id).where(Ticket.id == ticket_id))
            db.session.add(AuditEntry(
                event_id=event_id, action=AuditAction.CHECKED_IN, subject_id=holder_id,
                actor_id=actor_id, ticket_id=ticket_id, reason="", created_at=now,
            ))
        db.session.commit()
    ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
    tally = door_tally(event_id)
    if changed == 1:
        return CheckIn(CheckInOutcome.ADMITTED, "Let them in.", tally, ticket)
    if ticket is None or ticket.event_id != event_id:
        # Signed by us, yet no such ticket here (say, a token from another installation).
        return CheckIn(CheckInOutcome.INVALID, "We have no record of this ticket.", tally)
    if ticket.status == TicketStatus.USED:
        return CheckIn(CheckInOutcome.ALREADY_USED, "This ticket has already been used.",
                       tally, ticket)
    return CheckIn(CheckInOutcome.REFUNDED,
                   f"This ticket was {ticket.status} and admits nobody.", tally, ticket)
