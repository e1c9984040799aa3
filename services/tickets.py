"""Tickets as their owners and the door see them: lists, signed QR tokens, check-in."""

from __future__ import annotations

from datetime import datetime

import segno
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from extensions import db
from models import Event, Ticket, TicketStatus
from services import NotFound, ServiceError


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
        raise TokenError("This code isn't a valid Ticket Hub ticket (forged or unreadable).")


def qr_svg(ticket: Ticket) -> str:
    """The ticket's token as an inline SVG QR code."""
    return segno.make(token_for(ticket), error="m").svg_inline(scale=5, border=2, dark="#000")


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
