"""What the waiting list looks like, read without locks: availability, a user's status and
place in line, the estimated wait, and the fingerprint a status poll is compared by.

Reads take no lock: they read the counters the transitions keep on the event row
(``services/queue.py``) and one index range, so their cost barely grows with the queue.
Offers past their deadline that no worker has expired yet are treated as expired at once.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, func, select, type_coerce

from extensions import db
from models import (
    EndReason,
    EntryStatus,
    Event,
    QueueDeparture,
    Ticket,
    TicketStatus,
    UTCDateTime,
    WaitingListEntry,
)


@dataclass(frozen=True)
class Availability:
    total: int
    sold: int
    reserved: int  # live offers
    remaining: int

    @property
    def sold_out(self) -> bool:
        return self.remaining == 0


def _stale_offer_count(event_id: int, now: datetime) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(WaitingListEntry)
        .where(
            WaitingListEntry.event_id == event_id,
            WaitingListEntry.status == EntryStatus.OFFERED,
            WaitingListEntry.offer_expires_at <= now,
        )
    )


def availability(event: Event, *, now: datetime, clock: EventClock | None = None) -> Availability:
    """Capacity − sold − live offers, from the event's counters: O(1) in the queue length.

    Offers past their deadline that no worker has expired yet are not counted as live
    (with the event's ``clock`` at hand, counting them is only needed when one is due).
    """
    counted = event.offered_count and (clock is None or clock.has_stale_offers(now))
    stale = _stale_offer_count(event.id, now) if counted else 0
    live_offers = event.offered_count - stale
    remaining = max(0, event.total_tickets - event.sold_count - live_offers)
    if event.is_cancelled:
        remaining = 0
    return Availability(event.total_tickets, event.sold_count, live_offers, remaining)


class ViewerStatus:
    """What ``#queue-status``'s ``data-status`` says of a viewer (../shared/CONTRACT.md)."""

    NONE = "none"
    LOBBY = "lobby"  # joined before a scheduled on-sale: no place until the draw
    WAITING = EntryStatus.WAITING
    OFFERED = EntryStatus.OFFERED
    PURCHASED = "purchased"
    EXPIRED = "expired"


@dataclass(frozen=True)
class QueueStatus:
    """What one user sees of their place in one event's queue."""

    status: str  # a ViewerStatus
    entry: WaitingListEntry | None = None
    position: int | None = None
    offer_expires_at: datetime | None = None
    end_reason: str | None = None
    ticket: Ticket | None = None
    estimated_wait: tuple[int, int] | None = None  # minutes, low and high
    wait_sample: int = 0  # how many ended offers the estimate rests on
    waiting_ahead: int | None = None  # waiters ahead (offer holders are all ahead too)
    sale_starts_at: datetime | None = None  # in the lobby: when the draw gives places
    lobby_size: int | None = None  # in the lobby: how many wait there

    @property
    def people_ahead(self) -> int | None:
        return None if self.position is None else self.position - 1

    @property
    def offers_ahead(self) -> int | None:
        """Offer holders ahead of a waiter (every live offer is ahead of every waiter)."""
        if self.people_ahead is None or self.waiting_ahead is None:
            return None
        return self.people_ahead - self.waiting_ahead


def latest_entry(*, event_id: int, user_id: int) -> WaitingListEntry | None:
    return db.session.scalar(
        select(WaitingListEntry)
        .where(WaitingListEntry.event_id == event_id, WaitingListEntry.user_id == user_id)
        .order_by(WaitingListEntry.id.desc())  # the newest (a lobby entry's seq is negative)
        .limit(1)
    )


def live_ticket(*, event_id: int, user_id: int) -> Ticket | None:
    return db.session.scalar(
        select(Ticket).where(
            Ticket.event_id == event_id,
            Ticket.user_id == user_id,
            Ticket.status.in_(TicketStatus.LIVE),
        )
    )


# Join order is cut into blocks; departures are counted per block (QueueDeparture).
POSITION_BLOCK = 1024


def block_of(seq: int) -> int:
    """The block of join order a join number belongs to."""
    return (seq - 1) // POSITION_BLOCK


def position(entry: WaitingListEntry) -> int:
    """1 + active entries of the event that joined before this one.

    Everyone in earlier blocks joined before us, so they count in full less the departed
    ones (one SUM over at most queue/1024 small rows); within our own block we count the
    active entries ahead over the partial index (at most 1023). The cost barely grows with
    the queue: no scan of everyone ahead.
    """
    block = block_of(entry.seq)
    departed_before = db.session.scalar(
        select(func.coalesce(func.sum(QueueDeparture.departed), 0)).where(
            QueueDeparture.event_id == entry.event_id, QueueDeparture.block < block)
    )
    active_in_block = db.session.scalar(
        select(func.count())
        .select_from(WaitingListEntry)
        .where(
            WaitingListEntry.event_id == entry.event_id,
            WaitingListEntry.status.in_(EntryStatus.ACTIVE),
            WaitingListEntry.seq > block * POSITION_BLOCK,
            WaitingListEntry.seq < entry.seq,
        )
    )
    return 1 + block * POSITION_BLOCK - departed_before + active_in_block


WAIT_WINDOW = timedelta(minutes=30)
WAIT_SAMPLE = 50
# An estimate rests on at least this many offers that ended within WAIT_WINDOW; fewer (two
# instant releases, say) say nothing about how fast the line moves.
WAIT_MIN_SAMPLE = 5


@dataclass(frozen=True)
class WaitEstimate:
    low: int  # minutes
    high: int
    sample: int  # the ended offers it rests on


def recent_offer_ends(event_id: int, *, since: datetime | None = None) -> list[datetime]:
    """When the event's last ``WAIT_SAMPLE`` offers ended (bought, declined, expired), newest
    first, those after ``since`` only if given: at most WAIT_SAMPLE index rows."""
    query = select(WaitingListEntry.ended_at).where(
        WaitingListEntry.event_id == event_id, WaitingListEntry.offered_at.is_not(None),
        WaitingListEntry.ended_at.is_not(None))
    if since is not None:
        query = query.where(WaitingListEntry.ended_at > since)
    return list(db.session.scalars(
        query.order_by(WaitingListEntry.ended_at.desc()).limit(WAIT_SAMPLE)))


def estimate_wait(*, waiting_ahead: int, offers_out: int, now: datetime,
                  recent: Callable[[], list[datetime]]) -> WaitEstimate | None:
    """The wait of a waiter with ``waiting_ahead`` waiters ahead, or None.

    Each offer that ends (bought, declined, expired) lets the next waiter in, so the pace
    at which the event's last few offers ended (``recent()``, newest first; those within the
    last half hour count) is the queue's speed. No estimate until ``WAIT_MIN_SAMPLE`` offers
    have ended, nor while everyone ahead holds an offer (then the earliest of their deadlines
    is the honest answer).
    """
    if waiting_ahead == 0 and offers_out:
        return None
    window = now - WAIT_WINDOW
    ends = [moment for moment in recent() if moment > window]
    if len(ends) < WAIT_MIN_SAMPLE:
        return None
    span_minutes = max((now - ends[-1]).total_seconds() / 60, 1.0)
    per_minute = len(ends) / span_minutes
    minutes = (waiting_ahead + 1) / per_minute
    return WaitEstimate(max(1, int(minutes * 0.75)), max(1, int(minutes * 1.5 + 0.999)),
                        len(ends))


# The waiting room's cadence: how often a viewer's page asks "has my place changed?".
POLL_FAST = 2  # offer holders and the front of the line
POLL_SLOWEST = 60  # the back of a long line
POLL_WATCHING = 15  # no place in line: only the remaining tickets can change
POLL_JITTER = 0.2  # ± this share, so pages never poll in lockstep
# A waiter asks again after this share of the time they can expect to wait (so at least
# about six times before their turn, and every 2 s once it is near).
POLL_SHARE_OF_WAIT = 1 / 6
# With no pace measured yet, each waiter ahead counts as this many seconds of waiting.
POLL_SECONDS_PER_WAITER_AHEAD = 0.5
# At the on-sale every lobby page asks at once for its new place, and each answer is a
# fresh render: the lobby's first polls after the draw are spread over one second per this
# many people (at least POLL_FAST, at most POLL_SLOWEST seconds).
LOBBY_RENDERS_PER_SECOND = 50


def poll_seconds(status: QueueStatus | None, *, rng: random.Random | None = None,
                 now: datetime | None = None) -> int | None:
    """How long a viewer's page waits before asking again; None when it needn't ask again.

    The cadence grows with how long the viewer can expect to wait (their place and the
    queue's pace, from ``estimated_wait``; with no pace measured yet, the waiters ahead),
    not with the length of the line, so the poll rate a whole line demands follows the rate
    tickets come back. In the lobby, the first ask after the on-sale is spread over a
    window that grows with the lobby (``lobby_poll_seconds``).
    """
    rng = rng or random
    state = status.status if status is not None else ViewerStatus.NONE
    if state == ViewerStatus.PURCHASED:
        return None
    if state == ViewerStatus.LOBBY:
        return lobby_poll_seconds(status, now=now, rng=rng)
    if state == ViewerStatus.OFFERED:
        base = POLL_FAST
    elif state == ViewerStatus.WAITING:
        if status.estimated_wait is not None:
            low, high = status.estimated_wait
            expected = (low + high) / 2 * 60
        else:
            expected = status.waiting_ahead * POLL_SECONDS_PER_WAITER_AHEAD / POLL_SHARE_OF_WAIT
        base = min(POLL_SLOWEST, max(POLL_FAST, expected * POLL_SHARE_OF_WAIT))
    else:
        base = POLL_WATCHING
    jittered = base * rng.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)
    return max(POLL_FAST, min(round(jittered), round(POLL_SLOWEST * (1 + POLL_JITTER))))


def lobby_spread_seconds(lobby_size: int) -> float:
    """The window over which a lobby's pages first ask after the on-sale."""
    return min(POLL_SLOWEST, max(POLL_FAST, lobby_size / LOBBY_RENDERS_PER_SECOND))


def lobby_poll_seconds(status: QueueStatus, *, now: datetime | None, rng) -> int:
    """A lobby page asks rarely while the on-sale is far (every POLL_SLOWEST ± jitter: the
    page's own clock counts down meanwhile), then once at a random moment in the spread
    window just after the on-sale, so a big lobby's pages never all ask at one instant."""
    now = now or datetime.now(status.sale_starts_at.tzinfo)
    until = (status.sale_starts_at - now).total_seconds()
    if until <= 0:  # the draw is under way or just done: ask again soon
        return POLL_FAST
    spread = lobby_spread_seconds(status.lobby_size or 0)
    slow = POLL_SLOWEST * rng.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)
    if slow < until:
        return round(slow)
    return max(1, math.ceil(until + rng.uniform(1, 1 + spread)))


@dataclass(frozen=True)
class EventClock:
    """What a status poll is compared by: the event's queue version (every transition bumps
    it, so it covers every entry and ticket of the event, the viewer's own included) and the
    moments at which time alone changes what the widget shows (the event starts, the
    earliest live offer's deadline passes, the on-sale draws the lobby)."""

    event_id: int
    version: int
    updated_at: datetime
    cancelled: bool
    starts_at: datetime
    next_deadline: datetime | None
    published: bool = True
    draw_at: datetime | None = None  # the on-sale time, while its lobby awaits the draw

    def has_stale_offers(self, now: datetime) -> bool:
        return self.next_deadline is not None and self.next_deadline <= now

    def draw_due(self, now: datetime) -> bool:
        """As ``Event.draw_due``: a draft's passed on-sale is nothing to refresh for."""
        return (self.draw_at is not None and self.draw_at <= now and not self.cancelled
                and self.published)

    def needs_refresh(self, now: datetime) -> bool:
        """Time alone has made the stored state stale: an offer ran out, or the on-sale came
        (the next transition expires or draws; a reader may trigger one)."""
        return self.has_stale_offers(now) or self.draw_due(now)

    def fingerprint(self, *, user_id: int | None, now: datetime) -> str:
        """The poll's ETag: equal exactly while what this viewer is shown is unchanged."""
        return "-".join(str(part) for part in (
            self.event_id, self.version, self.updated_at.timestamp(), int(self.cancelled),
            int(self.starts_at <= now), int(self.needs_refresh(now)), user_id or 0))


def cached_event_clock(event_id: int, *, max_age: float) -> EventClock | None:
    """The event's clock as this process last read it, if at most ``max_age`` seconds ago:
    enough for a poll, which only decides "unchanged?" (a transition made in this process
    forgets its event at once; one made elsewhere shows within ``max_age``). No query."""
    hit = _clock_cache().get(event_id)
    if hit is not None and time.monotonic() - hit[0] < max_age:
        return hit[1]
    return None


# The earliest live offer's deadline of the event named by the ``event_id`` parameter, and the
# clock's row: statements built once (the poll's hot path only binds and runs them).
NEXT_DEADLINE = type_coerce(
    select(func.min(WaitingListEntry.offer_expires_at))
    .where(WaitingListEntry.event_id == bindparam("event_id"),
           WaitingListEntry.status == EntryStatus.OFFERED)
    .scalar_subquery(),
    UTCDateTime,
).label("next_deadline")
_CLOCK_ROW = select(
    Event.id, Event.queue_version, Event.updated_at, Event.cancelled_at, Event.starts_at,
    Event.published_at, Event.sale_starts_at, Event.drawn_at, NEXT_DEADLINE,
).where(Event.id == bindparam("event_id"))


def event_clock(event_id: int) -> EventClock | None:
    """The event's clock in one indexed read (kept for ``cached_event_clock``), or None for
    no such event."""
    row = db.session.connection().execute(_CLOCK_ROW, {"event_id": event_id}).one_or_none()
    return None if row is None else remember_clock(clock_from_row(row))


def clock_from_row(row) -> EventClock:
    """The clock from a row with the event's columns of that name and ``next_deadline``."""
    return EventClock(row.id, row.queue_version, row.updated_at, row.cancelled_at is not None,
                      row.starts_at, row.next_deadline, row.published_at is not None,
                      None if row.drawn_at else row.sale_starts_at)


def remember_clock(clock: EventClock) -> EventClock:
    """Keep a clock just read for ``cached_event_clock``."""
    _clock_cache()[clock.event_id] = (time.monotonic(), clock)
    return clock


def forget_event_clock(event_id: int) -> None:
    """The event changed (a transition committed): the next poll reads its clock afresh."""
    _clock_cache().pop(event_id, None)


def _clock_cache() -> dict[int, tuple[float, EventClock]]:
    # Per app (each test's app has its own database), per process.
    return current_app.extensions.setdefault("event_clocks", {})


def queue_status(*, event_id: int, user_id: int, now: datetime) -> QueueStatus:
    """The user's status for the event, treating an offer past its deadline as expired."""
    ticket = live_ticket(event_id=event_id, user_id=user_id)
    entry = None if ticket is not None else latest_entry(event_id=event_id, user_id=user_id)
    return status_of(ticket=ticket, entry=entry, event=entry.event if entry else None, now=now,
                     place=lambda: position(entry),
                     recent=lambda: recent_offer_ends(event_id, since=now - WAIT_WINDOW))


def status_of(*, ticket: Ticket | None, entry: WaitingListEntry | None, event: Event | None,
              now: datetime, place: Callable[[], int],
              recent: Callable[[], list[datetime]]) -> QueueStatus:
    """A viewer's status from their live ticket and newest entry of ``event``, however read:
    ``place()`` gives the entry's position and ``recent()`` the event's recent offer ends,
    each asked only when needed."""
    if ticket is not None:
        return QueueStatus(ViewerStatus.PURCHASED, ticket=ticket)
    if entry is None:
        return QueueStatus(ViewerStatus.NONE)
    if entry.in_lobby:
        return QueueStatus(ViewerStatus.LOBBY, entry=entry, sale_starts_at=event.sale_starts_at,
                           lobby_size=event.lobby_count)
    if entry.status == EntryStatus.WAITING:
        at = place()
        ahead = max(0, at - 1 - event.offered_count)
        estimate = estimate_wait(waiting_ahead=ahead, offers_out=event.offered_count, now=now,
                                 recent=recent)
        return QueueStatus(ViewerStatus.WAITING, entry=entry, position=at,
                           estimated_wait=None if estimate is None else (estimate.low,
                                                                         estimate.high),
                           wait_sample=0 if estimate is None else estimate.sample,
                           waiting_ahead=ahead)
    if entry.status == EntryStatus.OFFERED:
        if entry.offer_expires_at > now:
            return QueueStatus(ViewerStatus.OFFERED, entry=entry, position=place(),
                               offer_expires_at=entry.offer_expires_at)
        return QueueStatus(ViewerStatus.EXPIRED, entry=entry, end_reason=EndReason.OFFER_EXPIRED)
    # Ended (a purchased entry whose ticket was refunded or cancelled since, too): the user
    # may queue again.
    return QueueStatus(ViewerStatus.EXPIRED, entry=entry, end_reason=entry.end_reason)


def active_entry(event_id: int, user_id: int) -> WaitingListEntry | None:
    return db.session.scalar(
        select(WaitingListEntry).where(
            WaitingListEntry.event_id == event_id,
            WaitingListEntry.user_id == user_id,
            WaitingListEntry.status.in_(EntryStatus.ACTIVE),
        )
    )


def places_of(*, user_id: int, now: datetime) -> list[QueueStatus]:
    """A buyer's live offers, places in line and lobby entries, for "My tickets": offers
    first (soonest deadline first), then places, then lobbies (soonest on-sale first)."""
    entries = db.session.scalars(
        select(WaitingListEntry)
        .join(Event)
        .where(WaitingListEntry.user_id == user_id,
               WaitingListEntry.status.in_(EntryStatus.ACTIVE),
               Event.cancelled_at.is_(None), Event.starts_at > now)
    )
    found = []
    for entry in entries:
        if entry.in_lobby:
            found.append(QueueStatus(ViewerStatus.LOBBY, entry=entry,
                                     sale_starts_at=entry.event.sale_starts_at))
        elif entry.status == EntryStatus.WAITING:
            found.append(QueueStatus(ViewerStatus.WAITING, entry=entry, position=position(entry)))
        elif entry.offer_expires_at > now:
            found.append(QueueStatus(ViewerStatus.OFFERED, entry=entry,
                                     offer_expires_at=entry.offer_expires_at))
    order = {ViewerStatus.OFFERED: 0, ViewerStatus.WAITING: 1, ViewerStatus.LOBBY: 2}
    return sorted(found, key=lambda s: (order[s.status], s.offer_expires_at or s.sale_starts_at
                                        or s.entry.event.starts_at, s.entry.id))
