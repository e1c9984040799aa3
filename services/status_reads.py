"""The waiting room's changed poll, lean: a signed-in waiter's status in one statement.

A status poll whose ETag no longer matches (in a moving line, almost every poll: each offer
that ends moves everyone behind it) needs the event, the viewer, their newest entry, their
live ticket and their place. Read the ordinary way (``queue_reads.queue_status`` and
Flask-Login's user load) that is seven ORM queries. Here it is one prepared Core statement
(``POLL_ROW``): the event's row with its clock (the earliest live offer's deadline), and
beside it the viewer's: their sign-in session still live, their live ticket, their newest
entry, and the active entries ahead of it in its block of join order.

What every waiter of the event shares (the departures per block, the pace at which offers
ended) is read once per process per queue version (``EventShare``): every transition bumps
the version, so it is never stale. The results are the same ``QueueStatus`` and ``EventClock``
the ordinary path builds, from the same rules (``queue_reads.status_of``).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate

from flask import current_app
from sqlalchemy import Row, bindparam, exists, func, select

from extensions import db
from models import (
    EntryStatus,
    Event,
    QueueDeparture,
    SignInSession,
    Ticket,
    TicketStatus,
    User,
    UTCDateTime,
    WaitingListEntry,
)
from services import queue_reads
from services.queue_reads import POSITION_BLOCK, EventClock, QueueStatus

_events = Event.__table__
_entries = WaitingListEntry.__table__
_mine = _entries.alias("mine")
_ahead = _entries.alias("ahead")
_users = User.__table__
_sessions = SignInSession.__table__
_tickets = Ticket.__table__

_EVENT_ID = bindparam("event_id")
_USER_ID = bindparam("user_id")
_NOW = bindparam("now", type_=UTCDateTime)

# Every column the widget may show (not the description, which may be long and never is).
_EVENT_COLUMNS = [column for column in _events.c if column.key != "description"]

_LIVE_SESSION = exists().where(
    _sessions.c.id == bindparam("session_id"), _sessions.c.user_id == _users.c.id,
    _sessions.c.ended_at.is_(None), _sessions.c.expires_at > _NOW)
_LIVE_TICKET = (
    select(_tickets.c.id)
    .where(_tickets.c.event_id == _EVENT_ID, _tickets.c.user_id == _USER_ID,
           _tickets.c.status.in_(TicketStatus.LIVE))
    .limit(1)
    .scalar_subquery()
)
_NEWEST_ENTRY = (
    select(func.max(_entries.c.id))
    .where(_entries.c.event_id == _EVENT_ID, _entries.c.user_id == _USER_ID)
    .scalar_subquery()
)
# queue_reads.position's second half: the active entries ahead in the entry's own block.
_ACTIVE_AHEAD_IN_BLOCK = (
    select(func.count())
    .select_from(_ahead)
    .where(_ahead.c.event_id == _EVENT_ID, _ahead.c.status.in_(EntryStatus.ACTIVE),
           _ahead.c.seq > (_mine.c.seq - 1) // POSITION_BLOCK * POSITION_BLOCK,
           _ahead.c.seq < _mine.c.seq)
    .scalar_subquery()
)
_USER_COLUMNS = ("id", "name", "email", "email_verified_at", "pending_email", "deleted_at")
_ENTRY_COLUMNS = ("id", "seq", "status", "joined_at", "offered_at", "offer_expires_at",
                  "ended_at", "end_reason", "ref")
# The event (its columns by their names) and the viewer (``user_*``, ``entry_*``, ``live``,
# ``ticket_id``, ``ahead_in_block``; None when nobody is signed in or no such user).
POLL_ROW = (
    select(
        *_EVENT_COLUMNS, queue_reads.NEXT_DEADLINE,
        *(_users.c[name].label(f"user_{name}") for name in _USER_COLUMNS),
        _LIVE_SESSION.label("live"),
        _LIVE_TICKET.label("ticket_id"),
        *(_mine.c[name].label(f"entry_{name}") for name in _ENTRY_COLUMNS),
        _ACTIVE_AHEAD_IN_BLOCK.label("ahead_in_block"),
    )
    .select_from(_events.outerjoin(_users, _users.c.id == _USER_ID)
                 .outerjoin(_mine, _mine.c.id == _NEWEST_ENTRY))
    .where(_events.c.id == _EVENT_ID)
)


@dataclass(frozen=True)
class EventShare:
    """What every waiter of one event at one queue version shares (read-only, so one copy
    serves every thread): the event itself, the departures before each block, and when its
    recent offers ended (newest first)."""

    key: tuple
    event: Event  # transient: built from its row, in no session
    blocks: list[int]  # blocks with departures, ascending
    departed_before: list[int]  # departures in all blocks before blocks[i]
    recent_ends: list[datetime]

    def departures_before(self, block: int) -> int:
        return self.departed_before[bisect_left(self.blocks, block)]


@dataclass(frozen=True)
class PollView:
    """A changed poll's reads: who (a transient ``User``), the event, its clock, their status."""

    user: User
    event: Event
    clock: EventClock
    status: QueueStatus


def poll_row(event_id: int, *, user_id: int | None, session_id: str | None,
             now: datetime) -> tuple[Row, EventClock] | None:
    """The event's row with its clock's ``next_deadline`` and the viewer's beside it, in one
    indexed read, with the event's clock (kept for ``queue_reads.cached_event_clock``); None
    for no such event."""
    row = db.session.connection().execute(POLL_ROW, {
        "event_id": event_id, "user_id": user_id, "session_id": session_id, "now": now,
    }).one_or_none()
    if row is None:
        return None
    return row, queue_reads.remember_clock(queue_reads.clock_from_row(row))


def viewer_status(row: Row, clock: EventClock, *, now: datetime) -> PollView | None:
    """The signed-in viewer's status from ``poll_row``'s row and clock, or None when the lean
    path can't answer (nobody signed in, a session that ended, a draft, a live offer that ran
    out or a draw that is due): the caller then takes the ordinary path, which handles each
    of those (a signed-out widget, signing the cookie out, a 404, a refresh)."""
    if row.user_id is None or not row.live or not clock.published or clock.needs_refresh(now):
        return None
    share = _event_share(row)
    entry = None
    if row.entry_id is not None:
        entry = WaitingListEntry(event_id=row.id, user_id=row.user_id, **{
            name: getattr(row, f"entry_{name}") for name in _ENTRY_COLUMNS})
    ticket = Ticket(id=row.ticket_id) if row.ticket_id is not None else None

    def place() -> int:
        block = queue_reads.block_of(entry.seq)
        return 1 + block * POSITION_BLOCK - share.departures_before(block) + row.ahead_in_block

    status = queue_reads.status_of(ticket=ticket, entry=entry, event=share.event, now=now,
                                   place=place, recent=lambda: share.recent_ends)
    user = User(**{name: getattr(row, f"user_{name}") for name in _USER_COLUMNS})
    return PollView(user=user, event=share.event, clock=clock, status=status)


_share_lock = threading.Lock()
# At most this many events' shares are kept per process (an on-sale has one or a few).
MAX_SHARES = 256


def _event_share(row) -> EventShare:
    """The event's share at the row's version: from this process's cache, else read (two
    small index reads) and kept."""
    key = (row.id, row.queue_version, row.updated_at)
    shares = current_app.extensions.setdefault("event_shares", {})
    share = shares.get(row.id)
    if share is not None and share.key == key:
        return share
    departures = db.session.execute(
        select(QueueDeparture.block, QueueDeparture.departed)
        .where(QueueDeparture.event_id == row.id).order_by(QueueDeparture.block)).all()
    blocks = [block for block, _ in departures]
    before = list(accumulate((departed for _, departed in departures), initial=0))
    event = Event(**{column.key: row._mapping[column] for column in _EVENT_COLUMNS})
    share = EventShare(key, event, blocks, before,
                       queue_reads.recent_offer_ends(row.id))
    with _share_lock:
        if len(shares) >= MAX_SHARES:
            shares.clear()
        shares[row.id] = share
    return share
