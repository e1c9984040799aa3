"""The organizer's daily sales email: an opt-in, and one summary per organizer per UTC day.

Each summary is a ``SalesSummary`` row written with its outbox row in one transaction; the
row is unique per organizer and day, so the hourly task can run late, twice, or in two
consumers at once and every summary is still sent exactly once (the outbox sees to the
sending). The summary of a day is due from ``SEND_HOUR`` UTC the next morning; a run finds
the latest day due, so a consumer that was down at that hour sends it on its next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Event, SalesSummary, Ticket, TicketStatus, User
from services import outbox, reports
from services.locking import UnitOfWork

log = logging.getLogger(__name__)

SEND_HOUR = 7  # UTC: yesterday's summary arrives with the morning's post


def set_daily_sales_email(*, user_id: int, enabled: bool) -> None:
    """Turn the organizer's daily sales email on or off."""
    user = db.session.get(User, user_id)
    user.daily_sales_email = enabled
    db.session.commit()


def day_due(now: datetime) -> date:
    """The latest UTC day whose summary is due at ``now``."""
    return (now.astimezone(timezone.utc) - timedelta(hours=SEND_HOUR)).date() - timedelta(days=1)


@dataclass(frozen=True)
class SummaryRow:
    """One event in a day's summary."""

    figures: reports.EventFigures  # the event's totals as they are now
    sold_that_day: int
    takings_that_day_pence: int


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def summary_rows(organizer_id: int, day: date, *, now: datetime | None = None
                 ) -> list[SummaryRow]:
    """The organizer's events worth a line for ``day``: those still to come (not cancelled)
    and any that sold tickets that day, soonest first."""
    start, end = _bounds(day)
    sold: dict[int, tuple[int, int]] = {}
    for event_id, count, takings in db.session.execute(
        select(Ticket.event_id, func.count(), func.coalesce(func.sum(Ticket.amount_pence), 0))
        .join(Event, Ticket.event_id == Event.id)
        .where(Event.organizer_id == organizer_id, Ticket.purchased_at >= start,
               Ticket.purchased_at < end, Ticket.status != TicketStatus.CANCELLED)
        .group_by(Ticket.event_id)
    ):
        sold[event_id] = (int(count), int(takings))
    events = list(db.session.scalars(
        select(Event).where(
            Event.organizer_id == organizer_id,
            or_(Event.id.in_(sold), and_(Event.starts_at >= start, Event.cancelled_at.is_(None),
                                         Event.published_at.is_not(None))))
        .order_by(Event.starts_at, Event.id)))
    figures = reports.figures_of(events, now=now or datetime.now(timezone.utc))
    return [SummaryRow(f, *sold.get(f.event.id, (0, 0))) for f in figures]


def queue_daily_summaries(*, now: datetime) -> int:
    """Write the summary due at ``now`` for every organizer who asked for one, has something
    to report and has not had it yet (each with its email, in one transaction); returns how
    many were written."""
    day = day_due(now)
    waiting = list(db.session.scalars(
        select(User.id)
        .outerjoin(SalesSummary, and_(SalesSummary.organizer_id == User.id,
                                      SalesSummary.day == day))
        .where(User.daily_sales_email.is_(True), SalesSummary.id.is_(None))
        .order_by(User.id)))
    written = 0
    for organizer_id in waiting:
        if not summary_rows(organizer_id, day, now=now):
            continue  # no events to come and no sales that day: nothing to say
        try:
            with UnitOfWork(now=now):
                summary = SalesSummary(organizer_id=organizer_id, day=day, created_at=now)
                db.session.add(summary)
                db.session.flush()
                outbox.add("send_notification", "daily_summary", summary.id, now=now)
        except IntegrityError:  # another run wrote it meanwhile: it is sent once, by that one
            log.info("summary of %s for organizer %s already written", day, organizer_id)
            continue
        written += 1
    return written
