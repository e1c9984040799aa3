"""Who is told what, by email, when the queue or a ticket changes.

A transition writes the email to the outbox (``kind_for`` says which) in its own
transaction; a retried Huey task calls ``send`` after commit, so a slow or failing mail
server never blocks or undoes a purchase, and a broker outage never loses an email.
"""

from __future__ import annotations

import logging

from extensions import db
from models import AuditAction, Ticket, WaitingListEntry
from services import mail
from services.urls import absolute_url

log = logging.getLogger(__name__)


_TICKET_KINDS = {"ticket_purchased", "refund_issued", "event_cancelled_ticket"}


def kind_for(action: str, *, event_cancelled: bool, in_lobby: bool = False) -> str | None:
    """Which email a transition sends (None: no email). The queue writes it to the outbox
    in the transition's own transaction; ``send`` delivers it from a worker."""
    if action == AuditAction.JOINED and in_lobby:
        return "lobby_joined"
    if action == AuditAction.OFFERED:
        return "offer_made"
    if action == AuditAction.EXPIRED:
        return "offer_expired"
    if action == AuditAction.PURCHASED:
        return "ticket_purchased"
    if action == AuditAction.REFUNDED:
        return "event_cancelled_ticket" if event_cancelled else "refund_issued"
    if action == AuditAction.EVENT_CANCELLED:
        return "event_cancelled"
    return None


def is_about_ticket(kind: str) -> bool:
    """Whether ``kind`` is sent about a ticket (else about a waiting-list entry)."""
    return kind in _TICKET_KINDS


_SUBJECTS = {
    "offer_made": "A ticket is held for you: {event}",
    "offer_expired": "Your ticket offer expired: {event}",
    "ticket_purchased": "Your ticket: {event}",
    "refund_issued": "Your ticket was refunded: {event}",
    "event_cancelled": "Cancelled: {event}",
    "event_cancelled_ticket": "Cancelled: {event} (your ticket is refunded)",
    "lobby_joined": "You're in the lobby: {event}",
    "place_drawn": "Your place in line: {event}",
}


def send(kind: str, object_id: int) -> str:
    """Render and deliver one notification; returns its key (the task body)."""
    if kind in _TICKET_KINDS:
        ticket = db.session.get(Ticket, object_id)
        user, event = ticket.user, ticket.event
        context = {"ticket": ticket,
                   "ticket_url": absolute_url("tickets.show", ticket_id=ticket.id)}
    else:
        entry = db.session.get(WaitingListEntry, object_id)
        user, event = entry.user, entry.event
        context = {"entry": entry,
                   "draw_url": absolute_url("events.draw", event_id=entry.event_id)}
    key = f"{kind}-{object_id}"
    message = mail.build(
        to=mail.recipient(user.name, user.email),
        subject=_SUBJECTS[kind].format(event=event.name),
        template=kind, key=key, user=user, event=event,
        event_url=absolute_url("events.show", event_id=event.id), **context,
    )
    mail.deliver(message, key=key)
    return key
