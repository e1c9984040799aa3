"""The fair start's draw at scale: a lobby of 1,000 and 10,000 entries drawn into line at the
on-sale, as one transition (services/queue.py ``_draw_lobby``): every entry takes its place
in the HMAC order, the first tickets are offered, and each place's email is written to the
outbox. Timed on SQLite and PostgreSQL (``make bench``), then checked: places 1..N, the
order recomputed from the seed, every queue invariant."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import insert, select

from bench.queues import NOW
from extensions import db
from models import Event, User, WaitingListEntry
from services import draws, queue
from tests.support.invariants import assert_queue_invariants

LOBBY_SIZES = (1_000, 10_000)
CAPACITY = 500
ON_SALE = NOW + timedelta(hours=1)


def build_lobby(size: int, *, capacity: int = CAPACITY) -> int:
    """A published event whose on-sale is ``ON_SALE``, with ``size`` people in its lobby
    (bulk inserted, counters set as the joins would have). Returns the event id."""
    tag = f"lobby{size}-{time.monotonic_ns()}"
    db.session.execute(insert(User), [
        {"name": f"l{i}", "email": f"l{i}-{tag}@bench.example", "password_hash": "x",
         "created_at": NOW} for i in range(size + 1)])
    first = db.session.scalar(select(User.id).where(User.email == f"l0-{tag}@bench.example"))
    seed = draws.new_seed()
    event = Event(organizer_id=first, name="On-sale", description="", location="Here",
                  starts_at=NOW + timedelta(days=7), price_pence=1000, total_tickets=capacity,
                  published_at=NOW, sale_starts_at=ON_SALE, draw_seed=seed,
                  draw_commitment=draws.commitment_of(seed), lobby_count=size, lobby_seq=size)
    db.session.add(event)
    db.session.flush()
    db.session.execute(insert(WaitingListEntry), [
        {"event_id": event.id, "user_id": first + 1 + i, "seq": -(i + 1), "status": "waiting",
         "joined_at": NOW + timedelta(seconds=i % 3600), "ref": draws.new_entry_ref()}
        for i in range(size)])
    db.session.commit()
    return event.id


def bench_draw(name: str, rows: list) -> None:
    """Rows of (database, lobby, seconds, entries/s, offered, checks) for each lobby size;
    run inside an app context on a fresh database."""
    for size in LOBBY_SIZES:
        event_id = build_lobby(size)
        start = time.perf_counter()
        drawn = queue.draw_lobby(event_id=event_id, now=ON_SALE)
        elapsed = time.perf_counter() - start
        event = db.session.get(Event, event_id)
        record = draws.draw_record(event)
        problems = draws.verify(seed=record.seed, commitment=record.commitment,
                                event_id=event_id, places=record.places)
        counts = assert_queue_invariants(event_id)
        checks = "hold" if drawn and not problems and len(record.places) == size else "NO"
        rows.append((name, f"{size:,}", f"{elapsed:.2f}", f"{size / elapsed:,.0f}",
                     f"{counts['offered']:,}", checks))
        db.session.remove()
