"""What organizers read about their events: sales figures, sales over time, the attendee list.

Read only. Money comes from the tickets actually sold (each ticket's ``amount_pence``,
whatever the event costs today). A ticket refunded later still counts as sold, and its
refund is counted beside it, so a cancelled event keeps its history. Sums are SQL
aggregates, never per-ticket loops.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Date, and_, case, func, or_, select

from extensions import db
from models import EntryStatus, Event, Ticket, TicketStatus, User, WaitingListEntry
from services import queue_reads
from services.fees import platform_fee


@dataclass(frozen=True)
class EventFigures:
    """One event's numbers on the organizer's dashboard.

    Tickets sold stay sold in these figures when they are refunded later (by the organizer,
    or because the event was cancelled): ``sold`` counts them and ``refunded`` says how many
    went back, so a cancelled event still shows what it sold and who came to the door.
    """

    event: Event
    capacity: int
    sold: int  # tickets paid for (or free ones taken), refunded ones included
    refunded: int  # of those, refunded since
    live_offers: int  # offers held right now (past their deadline: not counted)
    waiting: int
    checked_in: int  # admitted at the door, refunded since or not
    sales_pence: int  # what every ticket sold was sold for, at the price paid
    refunded_pence: int  # what went back (or is on its way back) to buyers
    fee_pence: int  # the platform fee on the tickets kept, rounded half up per ticket
    remaining: int  # what buyers see as left (``queue_reads.availability``): 0 once cancelled

    @property
    def valid(self) -> int:
        """Tickets people hold now (valid or used)."""
        return self.sold - self.refunded

    @property
    def kept_pence(self) -> int:
        """Sales less refunds: what the tickets still held were sold for."""
        return self.sales_pence - self.refunded_pence

    @property
    def net_pence(self) -> int:
        return self.kept_pence - self.fee_pence


# Tickets that were sold: the live ones and those refunded since (a cancelled ticket's
# payment was never taken).
SOLD_STATUSES = (*TicketStatus.LIVE, TicketStatus.REFUNDED)


def figures_of(events: list[Event], *, now: datetime) -> list[EventFigures]:
    """Figures for each of ``events`` (same order), in two GROUP BY queries for them all."""
    ids = [event.id for event in events]
    if not ids:
        return []
    counts = {name: dict.fromkeys(ids, 0) for name in (
        "sold", "refunded", "checked_in", "sales", "refunds", "fees")}
    # One row per (event, status, price paid, admitted or not): the fee is rounded per
    # ticket, so it is the same for every ticket sold at one price.
    admitted = case((Ticket.checked_in_at.is_not(None), 1), else_=0)
    sales = db.session.execute(
        select(Ticket.event_id, Ticket.status, Ticket.amount_pence, admitted, func.count())
        .where(Ticket.event_id.in_(ids), Ticket.status.in_(SOLD_STATUSES))
        .group_by(Ticket.event_id, Ticket.status, Ticket.amount_pence, admitted)
    )
    for event_id, status, amount, was_admitted, count in sales:
        counts["sold"][event_id] += count
        counts["sales"][event_id] += amount * count
        counts["checked_in"][event_id] += count if was_admitted else 0
        if status == TicketStatus.REFUNDED:
            counts["refunded"][event_id] += count
            counts["refunds"][event_id] += amount * count
        else:
            counts["fees"][event_id] += platform_fee(amount) * count
    offers: dict[int, int] = dict.fromkeys(ids, 0)
    waiting: dict[int, int] = dict.fromkeys(ids, 0)
    queue_rows = db.session.execute(
        select(WaitingListEntry.event_id, WaitingListEntry.status, func.count())
        .where(
            WaitingListEntry.event_id.in_(ids),
            or_(
                WaitingListEntry.status == EntryStatus.WAITING,
                and_(WaitingListEntry.status == EntryStatus.OFFERED,
                     WaitingListEntry.offer_expires_at > now),
            ),
        )
        .group_by(WaitingListEntry.event_id, WaitingListEntry.status)
    )
    for event_id, status, count in queue_rows:
        (offers if status == EntryStatus.OFFERED else waiting)[event_id] = count
    return [
        EventFigures(
            event=event, capacity=event.total_tickets, sold=counts["sold"][event.id],
            refunded=counts["refunded"][event.id], live_offers=offers[event.id],
            waiting=waiting[event.id], checked_in=counts["checked_in"][event.id],
            sales_pence=counts["sales"][event.id], refunded_pence=counts["refunds"][event.id],
            fee_pence=counts["fees"][event.id],
            remaining=queue_reads.availability(event, now=now).remaining,
        )
        for event in events
    ]


def event_figures(event: Event, *, now: datetime) -> EventFigures:
    """One event's figures (see ``EventFigures``)."""
    return figures_of([event], now=now)[0]


def organizer_figures(organizer_id: int, *, now: datetime) -> list[EventFigures]:
    """Figures for every event of one organizer, the latest first; nobody else's events."""
    events = list(db.session.scalars(
        select(Event).where(Event.organizer_id == organizer_id)
        .order_by(Event.starts_at.desc(), Event.id.desc())
    ))
    return figures_of(events, now=now)


# ------------------------------------------------------------------ sales over time


@dataclass(frozen=True)
class DaySales:
    """Tickets sold on one UTC day (refunded since or not), and the running total."""

    day: date
    sold: int
    cumulative: int


def daily_sales(event_id: int) -> list[DaySales]:
    """One entry per UTC day with sales (tickets sold by ``purchased_at``, refunded since or
    not: they were sold that day), oldest first."""
    # Timestamps are stored as naive UTC, so the database's date() is the UTC day.
    day = func.date(Ticket.purchased_at, type_=Date)
    rows = db.session.execute(
        select(day, func.count())
        .where(Ticket.event_id == event_id, Ticket.status.in_(SOLD_STATUSES))
        .group_by(day)
        .order_by(day)
    )
    days, total = [], 0
    for sold_on, count in rows:
        total += count
        days.append(DaySales(_as_date(sold_on), count, total))
    return days


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# ------------------------------------------------------------------ attendee export


ATTENDEE_COLUMNS = (
    "ticket_id", "name", "email", "status", "purchased_at", "amount_gbp", "checked_in_at",
)
# A spreadsheet reads a cell starting with one of these as a formula (OWASP's list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value``, with a leading ``'`` when a spreadsheet would otherwise run it as a
    formula (``=HYPERLINK(…)`` as a buyer's name, say)."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _utc_iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pounds(pence: int) -> str:
    return f"{pence // 100}.{pence % 100:02d}"


def attendee_csv(event_id: int) -> str:
    """Every ticket of the event, one CSV row each (``ATTENDEE_COLUMNS``), oldest first.

    Times are UTC ISO 8601, amounts in pounds; the csv module does the quoting and every
    cell is made spreadsheet-safe.
    """
    rows = db.session.execute(
        select(Ticket.id, User.name, User.email, Ticket.status, Ticket.purchased_at,
               Ticket.amount_pence, Ticket.checked_in_at)
        .join(User, Ticket.user_id == User.id)
        .where(Ticket.event_id == event_id)
        .order_by(Ticket.id)
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ATTENDEE_COLUMNS)
    for ticket_id, name, email, status, purchased_at, amount, checked_in_at in rows:
        cells = (str(ticket_id), name, email, status, _utc_iso(purchased_at), _pounds(amount),
                 _utc_iso(checked_in_at))
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return out.getvalue()


def event_filename(event: Event, extension: str, *, suffix: str = "") -> str:
    """``event-12-indie-night.ics``: the event's id and name, ASCII only, safe in a header."""
    slug = re.sub(r"[^a-z0-9]+", "-", event.name.lower()).strip("-")[:40].strip("-")
    words = "-".join(part for part in (slug, suffix) if part)
    return f"event-{event.id}{'-' + words if words else ''}.{extension}"


def attendee_filename(event: Event) -> str:
    """``event-12-indie-night-attendees.csv``."""
    return event_filename(event, "csv", suffix="attendees")
