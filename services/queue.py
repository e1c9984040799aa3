"""The waiting-list state machine: join, offer_next, release, expire, purchase, close.

Every status change of a waiting-list entry goes through a function here; nothing else
writes ``WaitingListEntry.status`` or the event's queue counters.

Locking
-------
Each transition runs inside ``with transition(event_id, now=now)``, which takes the event's
lock first and holds it until its single commit, so all transitions of one event are serialized across every process:

* PostgreSQL: ``SELECT … FROM events WHERE id = … FOR UPDATE`` locks the event row. Under
  READ COMMITTED every later statement of the transaction sees everything committed before
  the lock was granted. ``lock_timeout`` (set on connect) turns a long wait into ``Busy``.
* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock before the first read, so
  no other writer can interleave between our reads and writes (a deferred transaction
  could read, then fail to upgrade with SQLITE_BUSY). WAL mode keeps readers running
  beside the writer; the busy timeout (set on connect) makes writers queue, then ``Busy``.

Other events' transitions do not wait on PostgreSQL. Reads (availability, position) take
no lock: they read the counters kept on the event row and one index range.

Invariant (also a CHECK constraint on ``events``):
``sold_count + offered_count <= total_tickets`` where ``offered_count`` counts offers with
status offered. Offers past their deadline are expired (``_expire_due``) under the lock at
the start of every transition, so no write ever acts on a stale offer; reads subtract the
stale ones (``availability``) so they are treated as expired at once.

Every function takes ``now``, so tests can move the clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError

from extensions import db
from models import (
    AuditAction, AuditEntry, CheckoutSession, CheckoutStatus, EndReason, EntryStatus, Event,
    QueueDeparture, Ticket, TicketStatus, WaitingListEntry,
)
from services import Busy, Forbidden, NotFound, ServiceError, is_lock_timeout, notifications, outbox

log = logging.getLogger(__name__)


class QueueError(ServiceError):
    """A queue action was refused; nothing changed."""

    status_code = 409


class OfferNotLive(QueueError):
    """The offer a payment was for has ended (expired, released, or the event was cancelled)."""


# --------------------------------------------------------------------------- locking


def _lock(event_id: int) -> Event:
    """Lock the event row for the rest of this transaction (see the module docstring)."""
    try:
        connection = db.session.connection()
        if connection.dialect.name == "sqlite":
            dbapi = connection.connection.dbapi_connection
            if not dbapi.in_transaction:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
        event = db.session.execute(
            select(Event)
            .where(Event.id == event_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    except OperationalError as error:
        db.session.rollback()
        if is_lock_timeout(error):
            raise Busy() from error
        raise
    if event is None:
        db.session.rollback()
        raise NotFound("We couldn't find that event.")
    return event


class transition:
    """One locked unit of work on an event, as ``with transition(event_id, now=now) as event``.

    Entering locks the event and expires its overdue offers (so no write ever acts on a stale
    offer); leaving commits once, with the transition's follow-ups written to the outbox in
    the same transaction, or rolls back on any exception; after commit the outbox rows are
    handed to the task queue. It must open the unit of work: the lock is what makes every
    read after it current. ``expired`` lists the offers expired on entry.
    """

    def __init__(self, event_id: int, *, now: datetime):
        if db.session().in_transaction():
            db.session.rollback()  # end any earlier read, so the lock comes first
        self.event_id = event_id
        self.now = now
        self.event: Event | None = None
        self.expired: list[WaitingListEntry] = []

    def __enter__(self) -> Event:
        outbox.begin()
        _ended_offers().clear()
        self.event = _lock(self.event_id)
        self.expired = _expire_due(self.event, now=self.now)
        return self.event

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            db.session.rollback()
            return False
        try:
            _close_unpaid_checkouts(now=self.now)
            handovers = outbox.take_new(now=self.now)
            db.session.commit()
        except OperationalError as error:
            db.session.rollback()
            if is_lock_timeout(error):
                raise Busy() from error
            raise
        outbox.relay_new(handovers, now=self.now)
        return False


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
          ticket: Ticket | None = None, reason: str = "") -> None:
    """Record a transition in the audit trail and write its follow-ups to the outbox, in the
    same transaction: the offer's deadline, closing a payment page, the email."""
    db.session.add(AuditEntry(
        event_id=event.id, action=action, subject_id=subject_id, actor_id=actor_id,
        entry_id=entry.id if entry else None, ticket_id=ticket.id if ticket else None,
        reason=reason, created_at=now,
    ))
    if action == AuditAction.OFFERED:
        outbox.add("expire_offer", entry.id, now=now, run_at=entry.offer_expires_at)
    elif action in _OFFER_ENDINGS and entry is not None and entry.offered_at is not None:
        _ended_offers().append(entry.id)
    kind = notifications.kind_for(action, event_cancelled=event.is_cancelled)
    if kind is not None:
        subject = ticket if notifications.is_about_ticket(kind) else entry
        outbox.add("send_notification", kind, subject.id, now=now)


_OFFER_ENDINGS = (AuditAction.EXPIRED, AuditAction.RELEASED, AuditAction.EVENT_CANCELLED)


# --------------------------------------------------------------------------- reads


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


def availability(event: Event, *, now: datetime) -> Availability:
    """Capacity − sold − live offers, from the event's counters: O(1) in the queue length.

    Offers past their deadline that no worker has expired yet are not counted as live.
    """
    stale = _stale_offer_count(event.id, now) if event.offered_count else 0
    live_offers = event.offered_count - stale
    remaining = max(0, event.total_tickets - event.sold_count - live_offers)
    if event.is_cancelled:
        remaining = 0
    return Availability(event.total_tickets, event.sold_count, live_offers, remaining)


def has_stale_offers(event: Event, *, now: datetime) -> bool:
    return bool(event.offered_count) and _stale_offer_count(event.id, now) > 0


def offer_seconds() -> int:
    return int(current_app.config["TICKET_OFFER_SECONDS"])


@dataclass(frozen=True)
class QueueStatus:
    """What one user sees of their place in one event's queue."""

    status: str  # none | waiting | offered | purchased | expired
    entry: WaitingListEntry | None = None
    position: int | None = None
    offer_expires_at: datetime | None = None
    end_reason: str | None = None
    ticket: Ticket | None = None
    estimated_wait: tuple[int, int] | None = None  # minutes, low and high

    @property
    def people_ahead(self) -> int | None:
        return None if self.position is None else self.position - 1


def latest_entry(*, event_id: int, user_id: int) -> WaitingListEntry | None:
    return db.session.scalar(
        select(WaitingListEntry)
        .where(WaitingListEntry.event_id == event_id, WaitingListEntry.user_id == user_id)
        .order_by(WaitingListEntry.seq.desc())
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


def _block(seq: int) -> int:
    return (seq - 1) // POSITION_BLOCK


def position(entry: WaitingListEntry) -> int:
    """1 + active entries of the event that joined before this one.

    Everyone in earlier blocks joined before us, so they count in full less the departed
    ones (one SUM over at most queue/1024 small rows); within our own block we count the
    active entries ahead over the partial index (at most 1023). The cost barely grows with
    the queue: no scan of everyone ahead.
    """
    block = _block(entry.seq)
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


def _record_departure(event: Event, entry: WaitingListEntry) -> None:
    """Count an entry leaving the active queue in its block (caller holds the lock)."""
    table = QueueDeparture.__table__
    dialect = db.session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = insert(table).values(event_id=event.id, block=_block(entry.seq), departed=1)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[table.c.event_id, table.c.block],
        set_={"departed": table.c.departed + 1},
    ))


WAIT_WINDOW = timedelta(minutes=30)
WAIT_SAMPLE = 50


def estimated_wait(entry: WaitingListEntry, *, now: datetime, event: Event | None = None,
                   place: int | None = None) -> tuple[int, int] | None:
    """A (low, high) range of minutes until ``entry`` is offered a ticket, or None.

    Each offer that ends (bought, declined, expired) lets the next waiter in, so the pace
    at which this event's last few offers ended (within the last half hour) is the queue's
    speed. Reads at most ``WAIT_SAMPLE`` index rows, however busy the event. No estimate
    until two offers have ended, nor for anyone not waiting.
    """
    if entry.status != EntryStatus.WAITING:
        return None
    recent = list(db.session.scalars(
        select(WaitingListEntry.ended_at)
        .where(
            WaitingListEntry.event_id == entry.event_id,
            WaitingListEntry.ended_at > now - WAIT_WINDOW,
            WaitingListEntry.offered_at.is_not(None),
        )
        .order_by(WaitingListEntry.ended_at.desc())
        .limit(WAIT_SAMPLE)
    ))
    if len(recent) < 2:
        return None
    span_minutes = max((now - recent[-1]).total_seconds() / 60, 1.0)
    per_minute = len(recent) / span_minutes
    event = event or entry.event
    place = place or position(entry)
    # FIFO: every live offer is ahead of every waiter, so the waiters ahead are the rest.
    waiting_ahead = max(0, place - 1 - event.offered_count)
    minutes = (waiting_ahead + 1) / per_minute
    return max(1, int(minutes * 0.75)), max(1, int(minutes * 1.5 + 0.999))


def status_fingerprint(event: Event, *, user_id: int | None, now: datetime) -> str:
    """A cheap key that changes whenever what ``queue_status``/``availability`` show changes.

    Every transition bumps ``event.queue_version`` (positions, counts); the user's own entry
    and ticket cover the rest. Overdue offers must already have been expired (the status
    view refreshes them first), since time alone does not bump the version.
    """
    parts = [event.id, event.queue_version, event.updated_at.timestamp(),
             event.cancelled_at is not None, event.is_past(now), user_id or 0]
    if user_id is not None:
        ticket = live_ticket(event_id=event.id, user_id=user_id)
        entry = latest_entry(event_id=event.id, user_id=user_id)
        parts += [ticket.id if ticket else 0, ticket.status if ticket else "",
                  entry.id if entry else 0, entry.status if entry else ""]
    return "-".join(str(part) for part in parts)


def queue_status(*, event_id: int, user_id: int, now: datetime) -> QueueStatus:
    """The user's status for the event, treating an offer past its deadline as expired."""
    ticket = live_ticket(event_id=event_id, user_id=user_id)
    if ticket is not None:
        return QueueStatus("purchased", ticket=ticket)
    entry = latest_entry(event_id=event_id, user_id=user_id)
    if entry is None:
        return QueueStatus("none")
    if entry.status == EntryStatus.WAITING:
        place = position(entry)
        return QueueStatus("waiting", entry=entry, position=place,
                           estimated_wait=estimated_wait(entry, now=now, place=place))
    if entry.status == EntryStatus.OFFERED:
        if entry.offer_expires_at > now:
            return QueueStatus(
                "offered", entry=entry, position=position(entry),
                offer_expires_at=entry.offer_expires_at,
            )
        return QueueStatus("expired", entry=entry, end_reason=EndReason.OFFER_EXPIRED)
    if entry.status == EntryStatus.PURCHASED:
        # The ticket was refunded or cancelled since: the user may queue again.
        return QueueStatus("expired", entry=entry, end_reason=entry.end_reason)
    return QueueStatus("expired", entry=entry, end_reason=entry.end_reason)


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
    if entry.status == EntryStatus.OFFERED:
        event.offered_count -= 1
    elif entry.status == EntryStatus.WAITING:
        event.waiting_count -= 1
    if entry.status in EntryStatus.ACTIVE:
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
        .where(WaitingListEntry.event_id == event.id, WaitingListEntry.status == EntryStatus.WAITING)
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


def join_queue(*, event_id: int, user_id: int, now: datetime) -> WaitingListEntry:
    """Join the event's waiting list: offered at once if a ticket is free and nobody waits."""
    with transition(event_id, now=now) as event:
        if event.is_cancelled:
            raise QueueError("This event was cancelled.")
        if event.is_past(now):
            raise QueueError("This event has already taken place.")
        if event.organizer_id == user_id:
            raise QueueError("You organize this event, so you can't buy a ticket for it.")
        if live_ticket(event_id=event.id, user_id=user_id) is not None:
            raise QueueError("You already have a ticket for this event.")
        if _active_entry(event.id, user_id) is not None:
            raise QueueError("You're already in the waiting list for this event.")
        offer_next(event, now=now)  # earlier waiters first, should tickets have freed
        event.last_seq += 1
        entry = WaitingListEntry(event_id=event.id, user_id=user_id, seq=event.last_seq, joined_at=now)
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
        _note(event, AuditAction.JOINED, now=now, subject_id=user_id, actor_id=user_id, entry=entry)
        if entry.status == EntryStatus.OFFERED:
            _note(event, AuditAction.OFFERED, now=now, subject_id=user_id, entry=entry,
                  reason="a ticket was free on joining")
    return entry


def release(*, event_id: int, user_id: int, now: datetime) -> WaitingListEntry:
    """Decline an offer or leave the queue; a freed ticket goes to the next waiter."""
    with transition(event_id, now=now) as event:
        entry = _active_entry(event.id, user_id)
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
    if event_id is None:
        return False
    unit = transition(event_id, now=now)
    with unit as event:
        offer_next(event, now=now)
    return any(entry.id == entry_id for entry in unit.expired)


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
    expired = 0
    for event_id in event_ids:
        try:
            expired += refresh_event(event_id=event_id, now=now)
        except Busy:
            log.warning("event %s busy during the expiry sweep; next sweep retries", event_id)
    return expired


def refresh_event(*, event_id: int, now: datetime) -> int:
    """Expire overdue offers of one event and pass the tickets on; returns how many expired.

    The sweep calls it per event, and reads call it lazily when they find a stale offer.
    """
    unit = transition(event_id, now=now)
    with unit as event:
        offer_next(event, now=now)
    return len(unit.expired)


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


def _can_honour(event: Event, entry: WaitingListEntry, now: datetime) -> bool:
    """A late payment keeps its seat only if one is free and nobody is waiting for it."""
    return (
        entry.status == EntryStatus.EXPIRED
        and entry.end_reason in (EndReason.OFFER_EXPIRED, EndReason.DECLINED)
        and not event.is_cancelled and not event.is_past(now)
        and _free_tickets(event) > 0 and event.waiting_count == 0
        and live_ticket(event_id=event.id, user_id=entry.user_id) is None
        and _active_entry(event.id, entry.user_id) is None
    )


def _active_entry(event_id: int, user_id: int) -> WaitingListEntry | None:
    return db.session.scalar(
        select(WaitingListEntry).where(
            WaitingListEntry.event_id == event_id,
            WaitingListEntry.user_id == user_id,
            WaitingListEntry.status.in_(EntryStatus.ACTIVE),
        )
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


def close_queue(event: Event, *, now: datetime, actor_id: int | None = None) -> list[int]:
    """A cancelled event: end every waiting and offered entry and refund every live ticket
    (caller holds the lock; the money goes back by outbox tasks). Returns the refunded
    tickets' ids."""
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
    return [ticket.id for ticket in tickets]
