"""Who is told what, by email, when the queue or a ticket changes.

A transition writes the email to the outbox (``kind_for`` says which; ``organizer_notices``
which ones its organizer gets) in its own transaction; a retried Huey task calls ``send``
after commit, so a slow or failing mail server never blocks or undoes a purchase, and a
broker outage never loses an email.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import select

from extensions import db
from models import (
    AuditAction,
    AuditEntry,
    Event,
    SalesSummary,
    Ticket,
    TicketStatus,
    User,
    WaitingListEntry,
)
from services import mail, reports, summaries, tickets
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


def organizer_notices(event: Event, action: str, *, ticket: Ticket | None,
                      now: datetime) -> list[tuple[str, int]]:
    """The emails a transition sends the event's organizer, as (kind, object id), to write
    to the outbox in the same transaction (caller holds the event's lock): the first sale
    ever, and the sale that sells the event out (the first time only: it is noted in the
    audit trail, so tickets coming back and selling again don't repeat it)."""
    if action != AuditAction.PURCHASED or ticket is None:
        return []
    notices = []
    earlier = db.session.scalar(select(Ticket.id).where(
        Ticket.event_id == event.id, Ticket.id != ticket.id,
        Ticket.status != TicketStatus.CANCELLED).limit(1))
    if earlier is None:
        notices.append(("first_sale", ticket.id))
    if event.sold_count >= event.total_tickets and not _sold_out_before(event.id):
        db.session.add(AuditEntry(event_id=event.id, action=AuditAction.SOLD_OUT,
                                  reason="the last ticket sold; the organizer is emailed",
                                  created_at=now))
        notices.append(("sold_out", event.id))
    return notices


def _sold_out_before(event_id: int) -> bool:
    return db.session.scalar(select(AuditEntry.id).where(
        AuditEntry.event_id == event_id, AuditEntry.action == AuditAction.SOLD_OUT
    ).limit(1)) is not None


_SUBJECTS = {
    "offer_made": "A ticket is held for you: {event}",
    "offer_expired": "Your ticket offer expired: {event}",
    "ticket_purchased": "Your ticket: {event}",
    "refund_issued": "Your ticket was refunded: {event}",
    "event_cancelled": "Cancelled: {event}",
    "event_cancelled_ticket": "Cancelled: {event} (your ticket is refunded)",
    "lobby_joined": "You're in the lobby: {event}",
    "place_drawn": "Your place in line: {event}",
    "first_sale": "Your first ticket sold: {event}",
    "sold_out": "Sold out: {event}",
    "cancellation_done": "You cancelled {event}",
    "daily_summary": "Your sales on {day}",
}

# What an email is about: kind → a loader of (recipient, event or None, template context),
# given the object's id and the clock.
Loader = Callable[[int, datetime], tuple[User, Event | None, dict]]


def _about_entry(entry_id: int, now: datetime):
    entry = db.session.get(WaitingListEntry, entry_id)
    return entry.user, entry.event, {
        "entry": entry, "draw_url": absolute_url("events.draw", event_id=entry.event_id)}


def _about_ticket(ticket_id: int, now: datetime):
    ticket = db.session.get(Ticket, ticket_id)
    return ticket.user, ticket.event, {
        "ticket": ticket, "ticket_url": absolute_url("tickets.show", ticket_id=ticket.id)}


def _purchase(ticket_id: int, now: datetime):
    """The ticket itself: its QR code inline, the door code, the receipt, a calendar link."""
    user, event, context = _about_ticket(ticket_id, now)
    ticket = context["ticket"]
    qr = mail.inline_image(tickets.qr_png(ticket), name=f"qr.{ticket.id}",
                           filename=f"ticket-{ticket.id}-qr.png")
    context.update(qr=qr, door_code=tickets.grouped_code(ticket.door_code),
                   receipt=tickets.receipt_for(ticket),
                   calendar_url=absolute_url("calendars.event_ics", event_id=event.id),
                   images=(qr,))
    return user, event, context


def _to_organizer(event: Event, now: datetime, **context):
    """An email to the event's organizer, with its figures as they are now."""
    return event.organizer, event, {
        "figures": reports.event_figures(event, now=now),
        "manage_url": absolute_url("seller.event_detail", event_id=event.id), **context}


def _first_sale(ticket_id: int, now: datetime):
    ticket = db.session.get(Ticket, ticket_id)
    return _to_organizer(ticket.event, now, ticket=ticket)


def _about_event_for_organizer(event_id: int, now: datetime):
    return _to_organizer(db.session.get(Event, event_id), now)


def _daily_summary(summary_id: int, now: datetime):
    summary = db.session.get(SalesSummary, summary_id)
    return summary.organizer, None, {
        "summary": summary, "rows": summaries.summary_rows(summary.organizer_id, summary.day),
        "dashboard_url": absolute_url("seller.dashboard")}


_LOADERS: dict[str, Loader] = {
    "offer_made": _about_entry,
    "offer_expired": _about_entry,
    "event_cancelled": _about_entry,
    "ticket_purchased": _purchase,
    "refund_issued": _about_ticket,
    "event_cancelled_ticket": _about_ticket,
    "first_sale": _first_sale,
    "sold_out": _about_event_for_organizer,
    "cancellation_done": _about_event_for_organizer,
    "daily_summary": _daily_summary,
    "lobby_joined": _about_entry,
    "place_drawn": _about_entry,
}


def send(kind: str, object_id: int, *, now: datetime | None = None) -> str:
    """Render and deliver one notification; returns its key (the task body)."""
    now = now or datetime.now(timezone.utc)
    user, event, context = _LOADERS[kind](object_id, now)
    images = context.pop("images", ())
    key = f"{kind}-{object_id}"
    day = context["summary"].day if "summary" in context else None
    message = mail.build(
        to=mail.recipient(user.name, user.email),
        subject=_SUBJECTS[kind].format(event=event.name if event else "",
                                       day=f"{day:%a} {day.day} {day:%b %Y}" if day else ""),
        template=kind, key=key, images=images, user=user, event=event,
        event_url=absolute_url("events.show", event_id=event.id) if event else None, **context,
    )
    mail.deliver(message, key=key)
    return key
