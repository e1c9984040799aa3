"""Databases and queues for the benchmarks: a fresh app on a database URL, and a whole
waiting list bulk inserted in one go (bench/__main__.py, bench/waiting_room.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, select

from app import create_app
from extensions import db
from models import Event, QueueDeparture, Ticket, TicketStatus, User, WaitingListEntry
from services import queue_reads

NOW = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


def make_app(url: str, folder: str):
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": folder, "SECRET_KEY": "bench",
        "TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
        "HUEY_IMMEDIATE": True,
    })
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


def build_queue(length: int, capacity: int = 100, *, now: datetime = NOW, live_offers: int = 0,
                ended_offers: int = 0, pace_seconds: float = 4.0) -> tuple[int, int]:
    """An event with ``capacity`` sold and ``length`` waiting (bulk insert, counters set),
    plus every tenth joiner having left already, as in a real queue (departures counted).

    A queue on the move: ``live_offers`` of the capacity are held as offers (30 minutes
    left) instead of sold, and ahead of them ``ended_offers`` offers ended (declined) one
    every ``pace_seconds`` up to ``now``, so the estimated wait has a pace to go by.
    Returns (event id, the user id of the last person waiting)."""
    users = [{"name": f"u{i}", "email": f"u{i}-{length}@bench.example", "password_hash": "x",
              "created_at": now} for i in range(length + capacity + 1)]
    db.session.execute(insert(User), users)
    first = db.session.scalar(select(User.id).where(User.email == f"u0-{length}@bench.example"))
    left = length // 10
    event = Event(organizer_id=first, name="Rush", description="", location="Here",
                  published_at=now, starts_at=now + timedelta(days=1), price_pence=1000,
                  total_tickets=capacity,
                  sold_count=capacity - live_offers, offered_count=live_offers,
                  waiting_count=length, last_seq=length + left)
    db.session.add(event)
    db.session.flush()
    db.session.execute(insert(Ticket), [
        {"event_id": event.id, "user_id": first + 1 + i, "status": TicketStatus.VALID,
         "purchased_at": now, "amount_pence": 1000} for i in range(capacity - live_offers)])
    rows, departed = [], {}
    for k in range(ended_offers, 0, -1):  # the organizer's id: ended entries are not active
        ended = now - timedelta(seconds=k * pace_seconds)
        rows.append({"event_id": event.id, "user_id": first, "seq": len(rows) + 1,
                     "status": "expired", "joined_at": now - timedelta(hours=1),
                     "offered_at": ended - timedelta(minutes=5), "ended_at": ended,
                     "offer_expires_at": ended + timedelta(minutes=25), "end_reason": "declined"})
        block = queue_reads.block_of(len(rows))
        departed[block] = departed.get(block, 0) + 1
    for i in range(live_offers):
        rows.append({"event_id": event.id, "user_id": first + 1 + capacity - live_offers + i,
                     "seq": len(rows) + 1, "status": "offered", "joined_at": now,
                     "offered_at": now, "offer_expires_at": now + timedelta(minutes=30)})
    # Then the line; every 11th of it is someone who already left the queue.
    start, user, gone_so_far = len(rows), first + 1 + capacity, 0
    for seq in range(start + 1, start + length + left + 1):
        gone = (seq - start) % 11 == 0 and gone_so_far < left
        gone_so_far += gone
        rows.append({"event_id": event.id, "user_id": user if not gone else first,
                     "seq": seq, "status": "expired" if gone else "waiting", "joined_at": now,
                     "end_reason": "left" if gone else None, "ended_at": now if gone else None})
        if gone:
            block = queue_reads.block_of(seq)
            departed[block] = departed.get(block, 0) + 1
        else:
            user += 1
    columns = ("offered_at", "offer_expires_at", "ended_at", "end_reason")
    db.session.execute(insert(WaitingListEntry), [
        {c: None for c in columns} | r | {"ref": f"{r['seq']:016x}"} for r in rows])
    db.session.execute(insert(QueueDeparture), [
        {"event_id": event.id, "block": block, "departed": n} for block, n in departed.items()])
    event.last_seq = len(rows)
    db.session.commit()
    last_user = user - 1
    return event.id, last_user
