"""Who is told what, by email, when the queue or a ticket changes.

``notify`` is called after a transition commits and hands the work to a retried Huey
task, so a slow or failing mail server never blocks or undoes a purchase.
"""

from __future__ import annotations

import logging

from extensions import db
from models import AuditAction, Ticket, WaitingListEntry
from services import mail

log = logging.getLogger(__name__)


def notify(action: str, *, entry_id: int | None, ticket_id: int | None) -> None:
    kind = _kind(action, ticket_id)
    if kind is None:
        return
    import tasks

    tasks.send_notification(kind, ticket_id if kind in _TICKET_KINDS else entry_id)


_TICKET_KINDS = {"ticket_purchased", "refund_issued", "event_cancelled_ticket"}


def _kind(action: str, ticket_id: int | None) -> str | None:
    if action == AuditAction.OFFERED:
        return "offer_made"
    if action == AuditAction.EXPIRED:
        return "offer_expired"
    if action == AuditAction.PURCHASED:
        return "ticket_purchased"
    if action == AuditAction.REFUNDED:
        ticket = db.session.get(Ticket, ticket_id)
        return "event_cancelled_ticket" if ticket.event.is_cancelled else "refund_issued"
    if action == AuditAction.EVENT_CANCELLED:
        return "event_cancelled"
    return None


_SUBJECTS = {
    "offer_made": "A ticket is held for you: {event}",
    "offer_expired": "Your ticket offer expired: {event}",
    "ticket_purchased": "Your ticket: {event}",
    "refund_issued": "Your ticket was refunded: {event}",
    "event_cancelled": "Cancelled: {event}",
    "event_cancelled_ticket": "Cancelled: {event} (your ticket is refunded)",
}


def send(kind: str, object_id: int) -> str:
    """Render and deliver one notification; returns its key (the task body)."""
    if kind in _TICKET_KINDS:
        ticket = db.session.get(Ticket, object_id)
        user, event = ticket.user, ticket.event
        context = {"ticket": ticket, "ticket_url": mail.absolute_url("tickets.show", ticket_id=ticket.id)}
    else:
        entry = db.session.get(WaitingListEntry, object_id)
        user, event = entry.user, entry.event
        context = {"entry": entry}
    key = f"{kind}-{object_id}"
    message = mail.build(
        to=mail.recipient(user.name, user.email),
        subject=_SUBJECTS[kind].format(event=event.name),
        template=kind, key=key, user=user, event=event,
        event_url=mail.absolute_url("events.show", event_id=event.id), **context,
    )
    mail.deliver(message, key=key)
    return key
