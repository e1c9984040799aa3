"""The waiting-list state machine: join, offer_next, release, expire, purchase, close.

Every status change of a waiting-list entry goes through a function here; nothing else
writes ``WaitingListEntry.status`` or the event's queue counters.

Locking
-------
Each transition runs inside ``with transition(event_id, now=now)``: a unit of work that
takes the event's lock first and holds it until its single commit (``services/locking.py``),
so all transitions of one event are serialized across every process. Reads take no lock
(``services/queue_reads.py``).

Invariant (also a CHECK constraint on ``events``):
``sold_count + offered_count <= total_tickets`` where ``offered_count`` counts offers with
status offered. Offers past their deadline are expired (``_expire_due``) under the lock at
the start of every transition, so no write ever acts on a stale offer; reads subtract the
stale ones (``availability``) so they are treated as expired at once.

Every function takes ``now``, so tests can move the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import (
    AuditAction,
    AuditEntry,
    CheckoutSession,
    CheckoutStatus,
    EndReason,
    EntryStatus,
    Event,
    QueueDeparture,
    Ticket,
    TicketStatus,
    WaitingListEntry,
)
from services import Busy, Forbidden, NotFound, ServiceError, draws, notifications, outbox
from services.locking import EventRead, UnitOfWork, lock_event, lock_event_row
from services.queue_reads import active_entry, block_of, forget_event_clock, live_ticket

log = logging.getLogger(__name__)


class QueueError(ServiceError):
    """A queue action was refused; nothing changed."""

    status_code = 409


class OfferNotLive(QueueError):
    """The offer a payment was for has ended (expired, released, or the event was cancelled)."""


class transition(UnitOfWork):
    """One locked unit of work on an event, as ``with transition(event_id, now=now) as event``.

    Entering locks the event (``services/locking.py``), draws its lobby if the on-sale time
    has come (whoever gets the lock first after it: a worker's task, a reader, a join) and
    expires its overdue offers, so no write ever acts on a stale lobby or offer; leaving
    commits once, with the transition's follow-ups written to the outbox in the same
    transaction (closing the payment page of every offer that ended unpaid among them).
    ``expired`` lists the offers expired on entry; ``drawn`` says whether it drew the lobby.
    """

    def __init__(self, event_id: int, *, now: datetime):
        super().__init__(now=now)
        self.event_id = event_id
        self.expired: list[WaitingListEntry] = []
        self.drawn = False

    def __enter__(self) -> Event:
        super().__enter__()
        _ended_offers().clear()
        event = lock_event(self.event_id)
        if event.draw_due(self.now):
            _draw_lobby(event, now=self.now)
            self.drawn = True
        self.expired = _expire_due(event, now=self.now)
        return event

    def before_commit(self) -> None:
        _close_unpaid_checkouts(now=self.now)

    def after_commit(self) -> None:
        forget_event_clock(self.event_id)


def _ended_offers() -> list[int]:
    """Entries whose offer ended in the open transition (their payment page must close)."""
    return db.session.info.setdefault("ended_offers", [])


def _close_unpaid_checkouts(*, now: datetime) -> None:
    """An offer that ended unpaid must not be paid any more: close its open payment page."""
    ended = _ended_offers()
    if not ended:
        return
    open_entries = db.session.scalars(select(CheckoutSession.entry_id).where(
        CheckoutSession.entry_id.in_(ended), CheckoutSession.status == CheckoutStatus.OPEN))
    for entry_id in open_entries:
        outbox.add("close_checkout", entry_id, now=now)
    ended.clear()


def _note(event: Event, action: str, *, now: datetime, subject_id: int | None,
          actor_id: int | None = None, entry: WaitingListEntry | None = None,
          ticket: Ticket | None = None, reason: str = "", email: bool = True) -> None:
    """Record a transition in the audit trail and write its follow-ups to the outbox, in the
    same transaction: the offer's deadline, closing a payment page, the email (unless not
    ``email``: the buyer is looking at the outcome already)."""
    db.session.add(AuditEntry(
        event_id=event.id, action=action, subject_id=subject_id, actor_id=actor_id,
        entry_id=entry.id if entry else None, ticket_id=ticket.id if ticket else None,
        reason=reason, created_at=now,
    ))
    if action == AuditAction.OFFERED:
        outbox.add("expire_offer", entry.id, now=now, run_at=entry.offer_expires_at)
    elif action in _OFFER_ENDINGS and entry is not None and entry.offered_at is not None:
        _ended_offers().append(entry.id)
    kind = notifications.kind_for(action, event_cancelled=event.is_cancelled,
                                  in_lobby=entry is not None and entry.in_lobby)
    if kind is not None and email:
        subject = ticket if notifications.is_about_ticket(kind) else entry
        outbox.add("send_notification", kind, subject.id, now=now)
    for kind, object_id in notifications.organizer_notices(event, action, ticket=ticket, now=now):
        outbox.add("send_notification", kind, object_id, now=now)


_OFFER_ENDINGS = (AuditAction.EXPIRED, AuditAction.RELEASED, AuditAction.EVENT_CANCELLED)


def offer_seconds() -> int:
    return int(current_app.config["TICKET_OFFER_SECONDS"])


def _record_departure(event: Event, entry: WaitingListEntry) -> None:
    """Count an entry leaving the active queue in its block (caller holds the lock)."""
    _record_departure_of(event.id, entry.seq)


def _count_departure(dialect_insert):
    table = QueueDeparture.__table__
    return dialect_insert(table).values(
        event_id=bindparam("event_id"), block=bindparam("block"), departed=1,
    ).on_conflict_do_update(index_elements=[table.c.event_id, table.c.block],
                            set_={"departed": table.c.departed + 1})


_COUNT_DEPARTURE = {"sqlite": _count_departure(sqlite_insert),
                    "postgresql": _count_departure(postgresql_insert)}


def _record_departure_of(event_id: int, seq: int) -> None:
    dialect = db.session.get_bind().dialect.name
    db.session.execute(_COUNT_DEPARTURE[dialect], {"event_id": event_id, "block": block_of(seq)})


# --------------------------------------------------------------------------- transitions


def _expire_due(event: Event, *, now: datetime) -> list[WaitingListEntry]:
    """Mark this event's offers past their deadline expired (caller holds the lock)."""
    if not event.offered_count:
        return []
    due = list(db.session.scalars(
        select(WaitingListEntry).where(
            WaitingListEntry.event_id == event.id,
            WaitingListEntry.status == EntryStatus.OFFERED,
            WaitingListEntry.offer_expires_at <= now,
        )
    ))
    for entry in due:
        _end(event, entry, EndReason.OFFER_EXPIRED, now=now)
    return due


_END_ACTIONS = {
    EndReason.OFFER_EXPIRED: AuditAction.EXPIRED,
    EndReason.DECLINED: AuditAction.RELEASED,
    EndReason.LEFT: AuditAction.LEFT,
    EndReason.EVENT_CANCELLED: AuditAction.EVENT_CANCELLED,
}


def _end(event: Event, entry: WaitingListEntry, reason: str, *, now: datetime,
         actor_id: int | None = None) -> None:
    if entry.in_lobby:  # no place in line yet: nobody's place moves
        event.lobby_count -= 1
    elif entry.status == EntryStatus.OFFERED:
        event.offered_count -= 1
    elif entry.status == EntryStatus.WAITING:
        event.waiting_count -= 1
    if entry.status in EntryStatus.ACTIVE and not entry.in_lobby:
        _record_departure(event, entry)
    entry.status = EntryStatus.PURCHASED if reason == EndReason.PURCHASED else EntryStatus.EXPIRED
    entry.end_reason = reason
    entry.ended_at = now
    event.queue_version += 1
    if reason in _END_ACTIONS:
        _note(event, _END_ACTIONS[reason], now=now, subject_id=entry.user_id,
              actor_id=actor_id, entry=entry, reason=reason.replace("_", " "))


def _free_tickets(event: Event) -> int:
    return event.total_tickets - event.sold_count - event.offered_count


def offer_next(event: Event, *, now: datetime) -> list[WaitingListEntry]:
    """Offer every free ticket to the oldest waiters (caller holds the lock)."""
    free = _free_tickets(event)
    if free <= 0 or event.waiting_count == 0 or event.is_cancelled or event.is_past(now):
        return []
    waiters = list(db.session.scalars(
        select(WaitingListEntry)
        .where(WaitingListEntry.event_id == event.id,
               WaitingListEntry.status == EntryStatus.WAITING,
               WaitingListEntry.seq > 0)  # the lobby has no place in line until the draw
        .order_by(WaitingListEntry.seq)
        .limit(free)
    ))
    expires_at = now + timedelta(seconds=offer_seconds())
    for entry in waiters:
        entry.status = EntryStatus.OFFERED
        entry.offered_at = now
        entry.offer_expires_at = expires_at
        event.waiting_count -= 1
        event.offered_count += 1
        _note(event, AuditAction.OFFERED, now=now, subject_id=entry.user_id, entry=entry,
              reason="a ticket came free; next in line")
    if waiters:
        event.queue_version += 1
    return waiters


@dataclass(frozen=True)
class Joined:
    """What a join made: the new entry, as written (read nothing back to learn it)."""

    id: int
    event_id: int
    user_id: int
    seq: int
    status: str
    ref: str
    joined_at: datetime
    offered_at: datetime | None = None
    offer_expires_at: datetime | None = None

    @property
    def in_lobby(self) -> bool:
        return self.status == EntryStatus.WAITING and self.seq < 0

    @classmethod
    def of(cls, entry: WaitingListEntry) -> Joined:
        return cls(entry.id, entry.event_id, entry.user_id, entry.seq, entry.status, entry.ref,
                   entry.joined_at, entry.offered_at, entry.offer_expires_at)


def join_queue(*, event_id: int, user_id: int, now: datetime, watching: bool = False) -> Joined:
    """Join the event's waiting list: offered at once if a ticket is free and nobody waits.

    ``watching``: the buyer sees the outcome as they join (the web page), so a ticket held
    at once sends no "offer made" email; offers made later (a ticket came back) still do.

    Before a scheduled on-sale, the entry waits in the lobby instead, with no place in line
    until the draw. The transition draws the lobby first if the on-sale time has come, so a
    join racing that instant lands either in the lobby (and is drawn) or behind it.

    The join is the rush's hot path, so the usual case is written in Core statements
    (``lean_transition``): the lock and every refusal check in one or two reads, then the
    entry, the event's counters, the audit rows and the outbox rows, one statement each.
    The rare cases that need the whole transition take it (``_join_in_transition``).
    """
    try:
        with lean_transition(event_id, now=now, read=_JOIN_READ,
                             params={"user_id": user_id}) as event:
            return _join_lean(event, user_id=user_id, now=now, watching=watching)
    except TakeTheLongWay:
        pass
    return Joined.of(_join_in_transition(event_id=event_id, user_id=user_id, now=now,
                                         watching=watching))


_EVENTS = Event.__table__
_ENTRIES = WaitingListEntry.__table__
_TICKETS = Ticket.__table__
_AUDIT = AuditEntry.__table__
# What a lean transition reads of the event row (what ``Event``'s rules need).
_EVENT_COLUMNS = [_EVENTS.c[name] for name in (
    "id", "organizer_id", "published_at", "cancelled_at", "starts_at", "total_tickets",
    "sold_count", "offered_count", "waiting_count", "last_seq", "queue_version",
    "sale_starts_at", "drawn_at", "lobby_count", "lobby_seq")]
# Bound parameters of the statements below, which are built once (a request binds values).
_EVENT_ID, _USER_ID, _NOW = bindparam("event_id"), bindparam("user_id"), bindparam("now")
# Whether an offer of the event is past its deadline: the full transition expires it first.
_OFFER_DUE = exists().where(
    _ENTRIES.c.event_id == _EVENT_ID, _ENTRIES.c.status == EntryStatus.OFFERED,
    _ENTRIES.c.offer_expires_at <= _NOW).label("offer_due")
_JOIN_READ = EventRead(_EVENT_COLUMNS, [
    _OFFER_DUE,
    exists().where(_TICKETS.c.event_id == _EVENT_ID, _TICKETS.c.user_id == _USER_ID,
                   _TICKETS.c.status.in_(TicketStatus.LIVE)).label("has_ticket"),
    exists().where(_ENTRIES.c.event_id == _EVENT_ID, _ENTRIES.c.user_id == _USER_ID,
                   _ENTRIES.c.status.in_(EntryStatus.ACTIVE)).label("in_line"),
])
_INSERT_ENTRY = insert(_ENTRIES).returning(_ENTRIES.c.id)
_INSERT_TICKET = insert(_TICKETS).returning(_TICKETS.c.id)
_INSERT_AUDIT = insert(_AUDIT)
# The SET clause is the columns a request binds (besides ``target_id``).
_UPDATE_EVENT = update(_EVENTS).where(_EVENTS.c.id == bindparam("target_id"))
_UPDATE_ENTRY = update(_ENTRIES).where(_ENTRIES.c.id == bindparam("target_id"))


class TakeTheLongWay(Exception):
    """A lean transition met a case it leaves to the full one; nothing was written."""


class lean_transition(UnitOfWork):
    """A transition in Core statements, as ``with lean_transition(event_id, now=now,
    read=…, params=…) as event``: the same lock, the same single commit with the outbox
    rows, and the same forgetting of the event's clock after it as ``transition``, but the
    event comes back as the plain values ``read`` reads as the lock is taken (an
    ``EventRead`` bound by the event's id, ``now`` and ``params``), not as an ORM object.

    It does not draw a lobby nor expire offers: when either is due, entering raises
    ``TakeTheLongWay`` (rolled back), and the caller takes the full ``transition``.
    ``read`` must check ``offer_due`` (``_OFFER_DUE``)."""

    def __init__(self, event_id: int, *, now: datetime, read: EventRead, params: dict):
        super().__init__(now=now)
        self.event_id, self.read = event_id, read
        self.params = {**params, "event_id": event_id, "now": now}

    def __enter__(self):
        super().__enter__()
        event = lock_event_row(self.read, self.params)
        if event is None:
            db.session.rollback()
            raise NotFound("We couldn't find that event.")
        awaits_draw = (event.sale_starts_at is not None and event.drawn_at is None
                       and event.cancelled_at is None)
        event.awaits_draw = awaits_draw
        event.free = event.total_tickets - event.sold_count - event.offered_count
        if (event.offer_due or (awaits_draw and event.sale_starts_at <= self.now
                                and event.published_at is not None)):
            db.session.rollback()
            raise TakeTheLongWay()
        return event

    def after_commit(self) -> None:
        forget_event_clock(self.event_id)


def _refuse_join(event, user_id: int, now: datetime, *, has_ticket: bool,
                 in_line: bool) -> None:
    """The refusals of a join, lean or full: ``event`` is the ORM event or a lean read of
    it (its columns and ``awaits_draw``); ``has_ticket`` and ``in_line`` say whether the
    user holds a live ticket or an active entry for it."""
    if event.published_at is None:
        raise NotFound("We couldn't find that event.")
    if event.cancelled_at is not None:
        raise QueueError("This event was cancelled.")
    if event.starts_at <= now:
        raise QueueError("This event has already taken place.")
    if event.organizer_id == user_id:
        raise QueueError("You organize this event, so you can't buy a ticket for it.")
    if has_ticket:
        raise QueueError("You already have a ticket for this event.")
    if in_line:
        raise QueueError("You're already in the lobby for this event."
                         if event.awaits_draw else
                         "You're already in the waiting list for this event.")


def _join_lean(event, *, user_id: int, now: datetime, watching: bool) -> Joined:
    """The join's writes (caller holds the lock): the same rows, counters and follow-ups
    as ``_join_in_transition`` writes, as Core statements."""
    _refuse_join(event, user_id, now, has_ticket=event.has_ticket, in_line=event.in_line)
    if not event.awaits_draw and event.free > 0 and event.waiting_count > 0:
        raise TakeTheLongWay()  # a free ticket is owed to someone waiting: offer_next first
    counters = {"queue_version": event.queue_version + 1}
    offered_at = expires_at = None
    if event.awaits_draw:
        counters.update(lobby_seq=event.lobby_seq + 1, lobby_count=event.lobby_count + 1)
        seq, status = -(event.lobby_seq + 1), EntryStatus.WAITING  # the draw gives the place
    else:
        seq = event.last_seq + 1
        counters["last_seq"] = seq
        if event.free > 0:  # and nobody waits (above)
            status, offered_at = EntryStatus.OFFERED, now
            expires_at = now + timedelta(seconds=offer_seconds())
            counters["offered_count"] = event.offered_count + 1
        else:
            status = EntryStatus.WAITING
            counters["waiting_count"] = event.waiting_count + 1
    ref = draws.new_entry_ref()
    try:
        entry_id = db.session.execute(_INSERT_ENTRY, {
            "event_id": event.id, "user_id": user_id, "seq": seq, "status": status,
            "joined_at": now, "offered_at": offered_at, "offer_expires_at": expires_at,
            "ref": ref}).scalar_one()
    except IntegrityError as error:  # the database's own guard; the lock should prevent it
        raise QueueError("You're already in the waiting list for this event.") from error
    db.session.execute(_UPDATE_EVENT, {"target_id": event.id, **counters})
    joined = Joined(entry_id, event.id, user_id, seq, status, ref, now, offered_at, expires_at)
    audit = [_audit_row(event.id, AuditAction.JOINED, now=now, user_id=user_id, actor_id=user_id,
                        entry_id=entry_id, reason="in the lobby" if joined.in_lobby else "")]
    follow_ups = []
    if joined.in_lobby:
        follow_ups.append(("send_notification", (
            notifications.kind_for(AuditAction.JOINED, event_cancelled=False, in_lobby=True),
            entry_id), None))
    if status == EntryStatus.OFFERED:
        audit.append(_audit_row(event.id, AuditAction.OFFERED, now=now, user_id=user_id,
                                entry_id=entry_id, reason="a ticket was free on joining"))
        follow_ups.append(("expire_offer", (entry_id,), expires_at))
        if not watching:
            follow_ups.append(("send_notification", (
                notifications.kind_for(AuditAction.OFFERED, event_cancelled=False), entry_id),
                None))
    db.session.execute(_INSERT_AUDIT, audit)
    outbox.insert_rows(follow_ups, now=now)
    return joined


def _audit_row(event_id: int, action: str, *, now: datetime, user_id: int,
               actor_id: int | None = None, entry_id: int | None = None,
               ticket_id: int | None = None, reason: str = "") -> dict:
    return {"event_id": event_id, "action": action, "subject_id": user_id,
            "actor_id": actor_id, "entry_id": entry_id, "ticket_id": ticket_id,
            "reason": reason, "created_at": now}


def _join_in_transition(*, event_id: int, user_id: int, now: datetime,
                        watching: bool) -> WaitingListEntry:
    """The join as a full transition (the ORM way): when the lobby is due to be drawn, an
    offer is past its deadline, or a free ticket is still to be offered to someone waiting,
    all of which entering the transition or ``offer_next`` settle first."""
    with transition(event_id, now=now) as event:
        _refuse_join(event, user_id, now,
                     has_ticket=live_ticket(event_id=event.id, user_id=user_id) is not None,
                     in_line=active_entry(event.id, user_id) is not None)
        entry = WaitingListEntry(event_id=event.id, user_id=user_id, joined_at=now,
                                 ref=draws.new_entry_ref())
        if event.awaits_draw:
            event.lobby_seq += 1
            entry.seq = -event.lobby_seq  # the draw gives the place
            entry.status = EntryStatus.WAITING
            event.lobby_count += 1
        else:
            offer_next(event, now=now)  # earlier waiters first, should tickets have freed
            event.last_seq += 1
            entry.seq = event.last_seq
            if _free_tickets(event) > 0 and event.waiting_count == 0:
                entry.status = EntryStatus.OFFERED
                entry.offered_at = now
                entry.offer_expires_at = now + timedelta(seconds=offer_seconds())
                event.offered_count += 1
            else:
                entry.status = EntryStatus.WAITING
                event.waiting_count += 1
        event.queue_version += 1
        db.session.add(entry)
        try:
            db.session.flush()
        except IntegrityError as error:  # the database's own guard; the lock should prevent it
            raise QueueError("You're already in the waiting list for this event.") from error
        _note(event, AuditAction.JOINED, now=now, subject_id=user_id, actor_id=user_id,
              entry=entry, reason="in the lobby" if entry.in_lobby else "")
        if entry.status == EntryStatus.OFFERED:
            _note(event, AuditAction.OFFERED, now=now, subject_id=user_id, entry=entry,
                  reason="a ticket was free on joining", email=not watching)
    return entry


def _draw_lobby(event: Event, *, now: datetime) -> None:
    """The on-sale has come: everyone in the lobby takes a place in line, in the order of
    the draw (``services/draws.py``), and the first are offered tickets (caller holds the
    lock; runs once, as the event is marked drawn in the same transaction).

    Nobody can be in line before the draw (joins before it wait in the lobby, and an on-sale
    time can't be set once anyone has joined), so the places are seq 1..N.
    """
    lobby = list(db.session.scalars(
        select(WaitingListEntry).where(
            WaitingListEntry.event_id == event.id,
            WaitingListEntry.status == EntryStatus.WAITING,
            WaitingListEntry.seq < 0,
        )
    ))
    by_ref = {entry.ref: entry for entry in lobby}
    order = draws.draw_order(event.draw_seed, event.id, by_ref)
    base = event.last_seq
    for place, ref in enumerate(order, start=1):
        by_ref[ref].seq = base + place
    event.last_seq = base + len(order)
    event.waiting_count += len(order)
    event.lobby_count = 0
    event.drawn_at = now
    event.draw_size = len(order)
    event.queue_version += 1
    db.session.flush()
    db.session.add(AuditEntry(
        event_id=event.id, action=AuditAction.DRAWN, subject_id=None, actor_id=None,
        reason=f"{len(order)} in the lobby drawn into line; seed commitment "
               f"{event.draw_commitment}", created_at=now))
    offered = {entry.id for entry in offer_next(event, now=now)}
    for entry in lobby:  # everyone else learns their place; the offered, of their offer
        if entry.id not in offered:
            outbox.add("send_notification", "place_drawn", entry.id, now=now, deferred=True)


def draw_lobby(*, event_id: int, now: datetime) -> bool:
    """The task scheduled at the on-sale time: draws the lobby if it is due and not drawn
    (entering the transition does it). An early, late or repeated run changes nothing more;
    returns whether this call drew it."""
    unit = transition(event_id, now=now)
    with unit:
        pass
    return unit.drawn


def draw_due_lobbies(*, now: datetime) -> int:
    """Draw every lobby whose on-sale time has passed (the minute sweep); returns how many."""
    event_ids = list(db.session.scalars(
        select(Event.id).where(Event.sale_starts_at <= now, Event.drawn_at.is_(None),
                               Event.published_at.is_not(None), Event.cancelled_at.is_(None))
    ))
    return _sweep(event_ids, lambda event_id: draw_lobby(event_id=event_id, now=now),
                  sweep="draw")


def _sweep(event_ids: list[int], act, *, sweep: str) -> int:
    """``act`` on each event in turn, adding up what it returns; an event busy beyond the
    lock timeout is left to the next sweep."""
    total = 0
    for event_id in event_ids:
        try:
            total += act(event_id)
        except Busy:
            log.warning("event %s busy during the %s sweep; next sweep retries", event_id, sweep)
    return total


def release(*, event_id: int, user_id: int, now: datetime) -> WaitingListEntry:
    """Decline an offer or leave the queue; a freed ticket goes to the next waiter."""
    with transition(event_id, now=now) as event:
        entry = active_entry(event.id, user_id)
        if entry is None:
            raise QueueError("You're not in the waiting list for this event (any more).")
        reason = EndReason.DECLINED if entry.status == EntryStatus.OFFERED else EndReason.LEFT
        _end(event, entry, reason, now=now, actor_id=user_id)
        offer_next(event, now=now)
    return entry


def expire_offer(*, entry_id: int, now: datetime) -> bool:
    """Expire one offer if its deadline has passed (the task scheduled at the deadline).

    Returns whether this call expired it. Decides from the stored deadline, not from when
    the task runs, so an early or repeated run changes nothing.
    """
    event_id = db.session.scalar(
        select(WaitingListEntry.event_id).where(WaitingListEntry.id == entry_id)
    )
    return event_id is not None and entry_id in _expire_and_pass_on(event_id, now=now)


def expire_offers(*, now: datetime) -> int:
    """Sweep every event for offers past their deadline (the minute cron); returns how many."""
    event_ids = list(db.session.scalars(
        select(WaitingListEntry.event_id)
        .where(
            WaitingListEntry.status == EntryStatus.OFFERED,
            WaitingListEntry.offer_expires_at <= now,
        )
        .distinct()
    ))
    return _sweep(event_ids, lambda event_id: refresh_event(event_id=event_id, now=now),
                  sweep="expiry")


def refresh_event(*, event_id: int, now: datetime) -> int:
    """Expire overdue offers of one event and pass the tickets on; returns how many expired.

    The sweep calls it per event, and reads call it lazily when they find a stale offer.
    """
    return len(_expire_and_pass_on(event_id, now=now))


def _expire_and_pass_on(event_id: int, *, now: datetime) -> list[int]:
    """The one body of ``expire_offer`` and ``refresh_event``: entering the transition
    expires what is overdue; the freed tickets go to the next in line. Returns the ids of
    the offers it expired."""
    unit = transition(event_id, now=now)
    with unit as event:
        offer_next(event, now=now)
    return [entry.id for entry in unit.expired]


def complete_purchase(*, entry_id: int, user_id: int, payment_reference: str,
                      amount_pence: int, now: datetime, honour_lapsed: bool = False) -> Ticket:
    """Turn a live offer into a ticket, exactly once per payment reference.

    Refused (OfferNotLive) when the offer is no longer live, unless ``honour_lapsed`` and a
    ticket is still free (nobody waits for it), as for a payment that arrived just late;
    Forbidden when the entry is someone else's. A second call with the same
    ``payment_reference`` returns the ticket the first one made and changes nothing.
    """
    existing = _ticket_for_payment(payment_reference)
    if existing is not None:
        return existing
    entry = db.session.get(WaitingListEntry, entry_id)
    if entry is None:
        raise NotFound("We couldn't find that offer.")
    event_id = entry.event_id
    try:
        with transition(event_id, now=now) as event:
            existing = _ticket_for_payment(payment_reference)
            if existing is not None:
                return existing
            entry = db.session.get(WaitingListEntry, entry_id, populate_existing=True)
            if entry.user_id != user_id:
                raise Forbidden("That offer belongs to someone else.")
            if entry.status == EntryStatus.OFFERED:
                _end(event, entry, EndReason.PURCHASED, now=now)
            elif not (honour_lapsed and _can_honour(event, entry, now)):
                raise OfferNotLive("Your offer ended before payment completed.")
            else:
                entry.status = EntryStatus.PURCHASED  # ended unpaid, now paid after all
                entry.end_reason = EndReason.PURCHASED
                entry.ended_at = now
            ticket = Ticket(
                event_id=event.id, user_id=user_id, entry_id=entry.id,
                status=TicketStatus.VALID, purchased_at=now, amount_pence=amount_pence,
                payment_reference=payment_reference,
            )
            db.session.add(ticket)
            event.sold_count += 1
            event.queue_version += 1
            db.session.flush()
            _note(event, AuditAction.PURCHASED, now=now, subject_id=user_id, actor_id=user_id,
                  entry=entry, ticket=ticket,
                  reason=f"payment {payment_reference}" if amount_pence else "free ticket")
            offer_next(event, now=now)
    except IntegrityError:
        db.session.rollback()
        existing = _ticket_for_payment(payment_reference)
        if existing is None:
            raise
        return existing
    return ticket


_THIS_ENTRY = select(_ENTRIES.c.status).where(
    _ENTRIES.c.id == bindparam("entry_id"), _ENTRIES.c.event_id == _EVENT_ID,
    _ENTRIES.c.user_id == _USER_ID)
_SELL_READ = EventRead(_EVENT_COLUMNS, [
    _OFFER_DUE,
    _THIS_ENTRY.scalar_subquery().label("entry_status"),
    _THIS_ENTRY.with_only_columns(_ENTRIES.c.seq).scalar_subquery().label("entry_seq"),
    exists().where(_TICKETS.c.payment_reference == bindparam("payment_reference"))
    .label("paid_before"),
    exists().where(_TICKETS.c.event_id == _EVENT_ID,
                   _TICKETS.c.status != TicketStatus.CANCELLED).label("sold_before"),
])


def sell_offer(*, entry_id: int, event_id: int, user_id: int, payment_reference: str,
               amount_pence: int, now: datetime, record: Callable[[int], None]) -> int | None:
    """``complete_purchase`` for the plain case, as a ``lean_transition``: ``user_id``'s own
    offer, live (no offer of the event past its deadline), no ticket yet for this payment,
    no free ticket owed to someone waiting, and not the sale that sells the event out (the
    organizer's "sold out" email and its audit row take the full way). The same rows,
    counters and follow-ups as ``complete_purchase`` writes; ``record(ticket_id)`` writes the
    payment's own rows in the same transaction (it raises ``TakeTheLongWay`` to give up).

    Returns the new ticket's id, or None when the case is not the plain one (or a parallel
    write got there first): nothing was written, and ``complete_purchase`` decides.
    """
    try:
        with lean_transition(event_id, now=now, read=_SELL_READ, params={
                "user_id": user_id, "entry_id": entry_id,
                "payment_reference": payment_reference}) as event:
            if (event.entry_status != EntryStatus.OFFERED or event.paid_before
                    or (event.free > 0 and event.waiting_count > 0)
                    or event.sold_count + 1 >= event.total_tickets):
                raise TakeTheLongWay()
            return _sell_lean(event, entry_id=entry_id, user_id=user_id, now=now,
                              payment_reference=payment_reference, amount_pence=amount_pence,
                              record=record)
    except (TakeTheLongWay, IntegrityError):
        return None


def _sell_lean(event, *, entry_id: int, user_id: int, payment_reference: str,
               amount_pence: int, now: datetime, record: Callable[[int], None]) -> int:
    """The writes of ``sell_offer`` (caller holds the lock and checked the case)."""
    db.session.execute(_UPDATE_ENTRY, {
        "target_id": entry_id, "status": EntryStatus.PURCHASED,
        "end_reason": EndReason.PURCHASED, "ended_at": now})
    _record_departure_of(event.id, event.entry_seq)
    ticket_id = db.session.execute(_INSERT_TICKET, {
        "event_id": event.id, "user_id": user_id, "entry_id": entry_id,
        "status": TicketStatus.VALID, "purchased_at": now, "amount_pence": amount_pence,
        "payment_reference": payment_reference}).scalar_one()
    # As ``_end`` (the offer ends) and the purchase itself: two changes of the queue.
    db.session.execute(_UPDATE_EVENT, {
        "target_id": event.id, "offered_count": event.offered_count - 1,
        "sold_count": event.sold_count + 1, "queue_version": event.queue_version + 2})
    db.session.execute(_INSERT_AUDIT, _audit_row(
        event.id, AuditAction.PURCHASED, now=now, user_id=user_id, actor_id=user_id,
        entry_id=entry_id, ticket_id=ticket_id,
        reason=f"payment {payment_reference}" if amount_pence else "free ticket"))
    follow_ups = [("send_notification", (notifications.kind_for(
        AuditAction.PURCHASED, event_cancelled=False), ticket_id), None)]
    if not event.sold_before:  # the organizer's first sale (``organizer_notices``)
        follow_ups.append(("send_notification", ("first_sale", ticket_id), None))
    outbox.insert_rows(follow_ups, now=now)
    record(ticket_id)
    return ticket_id


def _can_honour(event: Event, entry: WaitingListEntry, now: datetime) -> bool:
    """A late payment keeps its seat only if one is free and nobody is waiting for it."""
    return (
        entry.status == EntryStatus.EXPIRED
        and entry.end_reason in (EndReason.OFFER_EXPIRED, EndReason.DECLINED)
        and not event.is_cancelled and not event.is_past(now)
        and _free_tickets(event) > 0 and event.waiting_count == 0
        and live_ticket(event_id=event.id, user_id=entry.user_id) is None
        and active_entry(event.id, entry.user_id) is None
    )


def _free_seat(event: Event, ticket: Ticket, status: str, *, now: datetime,
               actor_id: int | None = None, reason: str = "", money_returned: bool = False) -> None:
    """The ticket stops being live and its seat frees. A refund sends the money back by an
    outbox task, unless ``money_returned`` (it was refunded at the payment service already)."""
    if ticket.status in TicketStatus.LIVE:
        event.sold_count -= 1
        event.queue_version += 1
    ticket.status = status
    if status == TicketStatus.REFUNDED:
        ticket.refunded_at = now
        if money_returned:
            ticket.refund_settled_at = now
        elif ticket.refund_settled_at is None:
            outbox.add("send_refund", ticket.id, now=now)
    action = AuditAction.REFUNDED if status == TicketStatus.REFUNDED else AuditAction.VOIDED
    _note(event, action, now=now, subject_id=ticket.user_id, actor_id=actor_id, ticket=ticket,
          reason=reason)


def void_ticket(*, ticket_id: int, now: datetime) -> Ticket:
    """Cancel a ticket whose payment could not be taken; its seat goes to the next waiter."""
    event_id = db.session.get(Ticket, ticket_id).event_id
    with transition(event_id, now=now) as event:
        ticket = db.session.get(Ticket, ticket_id, populate_existing=True, with_for_update=True)
        _free_seat(event, ticket, TicketStatus.CANCELLED, now=now,
                   reason="the payment could not be taken")
        offer_next(event, now=now)
    return ticket


def refund_ticket_seat(*, ticket_id: int, now: datetime, actor_id: int | None = None,
                       reason: str = "refunded by the organizer",
                       money_returned: bool = False) -> Ticket:
    """Mark a valid ticket refunded and pass its seat on; the money follows by an outbox task
    (none when ``money_returned``: the refund was made at the payment service, a fact that
    refunds a ticket already used at the door too)."""
    event_id = db.session.get(Ticket, ticket_id).event_id
    with transition(event_id, now=now) as event:
        ticket = db.session.get(Ticket, ticket_id, populate_existing=True, with_for_update=True)
        if ticket.status == TicketStatus.USED and not money_returned:
            raise QueueError("This ticket was already used at the door.")
        if ticket.status not in TicketStatus.LIVE:
            raise QueueError("This ticket is already refunded or cancelled.")
        _free_seat(event, ticket, TicketStatus.REFUNDED, now=now, actor_id=actor_id,
                   reason=reason, money_returned=money_returned)
        offer_next(event, now=now)
    return ticket


def _ticket_for_payment(payment_reference: str) -> Ticket | None:
    return db.session.scalar(select(Ticket).where(Ticket.payment_reference == payment_reference))


def close_queue(event: Event, *, now: datetime, actor_id: int | None = None) -> None:
    """A cancelled event: end every waiting and offered entry and refund every live ticket
    (caller holds the lock; the money goes back by outbox tasks)."""
    active = list(db.session.scalars(
        select(WaitingListEntry).where(
            WaitingListEntry.event_id == event.id,
            WaitingListEntry.status.in_(EntryStatus.ACTIVE),
        )
    ))
    for entry in active:
        _end(event, entry, EndReason.EVENT_CANCELLED, now=now, actor_id=actor_id)
    tickets = list(db.session.scalars(
        select(Ticket).where(Ticket.event_id == event.id, Ticket.status.in_(TicketStatus.LIVE))
    ))
    for ticket in tickets:
        _free_seat(event, ticket, TicketStatus.REFUNDED, now=now, actor_id=actor_id,
                   reason="event cancelled")
