"""Recount an event's queue from its rows and check every invariant the product promises."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from extensions import db
from models import EntryStatus, Event, QueueDeparture, Ticket, TicketStatus, WaitingListEntry
from services.queue_reads import block_of, position


def _queue_rows(event_id: int) -> tuple[Event, list[WaitingListEntry], list[int]]:
    """The event, its entries in join order and the owners of its live tickets, committed."""
    db.session.rollback()  # read what is committed
    event = db.session.get(Event, event_id)
    entries = list(db.session.scalars(
        select(WaitingListEntry).where(WaitingListEntry.event_id == event_id)
        .order_by(WaitingListEntry.seq)
    ))
    live_owners = list(db.session.scalars(
        select(Ticket.user_id).where(Ticket.event_id == event_id,
                                     Ticket.status.in_(TicketStatus.LIVE))
    ))
    return event, entries, live_owners


def _recount(event: Event, entries: list[WaitingListEntry], live_owners: list[int]) -> dict:
    sold = len(live_owners)
    offered = sum(e.status == EntryStatus.OFFERED for e in entries)
    active = Counter(e.user_id for e in entries if e.status in EntryStatus.ACTIVE)
    return {
        "capacity": event.total_tickets, "entries": len(entries), "offered": offered,
        "waiting": sum(e.status == EntryStatus.WAITING and not e.in_lobby for e in entries),
        "lobby": sum(e.in_lobby for e in entries), "sold": sold,
        "oversold": max(0, sold + offered - event.total_tickets),
        # users holding more than one active entry / more than one live ticket
        "duplicate_entries": sum(n > 1 for n in active.values()),
        "duplicate_tickets": sum(n > 1 for n in Counter(live_owners).values()),
    }


def recount_queue(event_id: int) -> dict:
    """The event's queue recounted from its rows, judging nothing (the benchmarks print
    these figures beside whether ``assert_queue_invariants`` holds)."""
    return _recount(*_queue_rows(event_id))


def assert_queue_invariants(event_id: int) -> dict:
    """sold + offers ≤ capacity, counters equal recounts, one active entry and one live
    ticket per user, and offers only ever made in join order. Returns the recounts."""
    event, entries, live_owners = _queue_rows(event_id)
    counts = _recount(event, entries, live_owners)
    sold, offered, waiting = counts["sold"], counts["offered"], counts["waiting"]
    assert sold + offered <= event.total_tickets, "oversold"
    counters = (event.sold_count, event.offered_count, event.waiting_count, event.lobby_count)
    recounted = (sold, offered, waiting, counts["lobby"])
    assert counters == recounted, (
        f"counters (sold, offered, waiting, lobby) {counters} but the rows say {recounted}")
    in_line = [e for e in entries if e.seq > 0]  # the lobby (negative seq) has no place yet
    assert event.last_seq == (in_line[-1].seq if in_line else 0), "last_seq drifted"
    if counts["lobby"]:
        assert event.drawn_at is None and not in_line, "a lobby beside a line"
    if event.drawn_at is not None:  # the draw gave places 1..N, nobody was in line before
        assert not any(e.in_lobby for e in entries), "a lobby entry left after the draw"
        assert [e.seq for e in in_line[:event.draw_size]] == list(
            range(1, event.draw_size + 1)), "the draw's places are not 1..N"
    assert len({e.seq for e in entries}) == len(entries), "two entries share a seq"
    assert counts["duplicate_entries"] == 0, "a user has two active entries"
    assert counts["duplicate_tickets"] == 0, "a user has two live tickets"
    # FIFO: a waiter only ever moves to offered, so an entry still waiting means nobody
    # who joined after it can ever have been offered a ticket.
    first_waiting = next((e.seq for e in in_line if e.status == EntryStatus.WAITING), None)
    if first_waiting is not None:
        skipped = [e.seq for e in in_line if e.offered_at is not None and e.seq > first_waiting]
        assert not skipped, f"entries {skipped} were offered while entry {first_waiting} waits"
    # The departure counts behind positions match the entries that left the queue.
    departed = {}
    for e in in_line:
        if e.status not in EntryStatus.ACTIVE:
            departed[block_of(e.seq)] = departed.get(block_of(e.seq), 0) + 1
    stored = {d.block: d.departed for d in db.session.scalars(
        select(QueueDeparture).where(QueueDeparture.event_id == event_id)) if d.departed}
    assert stored == departed, "departure counts drifted"
    active = [e for e in in_line if e.status in EntryStatus.ACTIVE]
    if len(active) <= 200:  # positions are 1..N in join order, no gaps
        assert [position(e) for e in active] == list(range(1, len(active) + 1)), (
            "positions are not 1..N in join order")
    return {"sold": sold, "offered": offered, "waiting": waiting, "entries": len(entries)}
