"""``make bench``: what an on-sale rush costs, as tables with ratios against a baseline
measured in the same run.

1. Status read vs queue length: our read (event counters + one index range count) against
   the seed's way (collect every entry and ticket of the event, filter in code).
2. Status poll over HTTP: a full 200 render against the 304 an unchanged ETag costs.
3. Join rush: threads joining one event at once; joins per second, and the invariant after.
4. Join burst over HTTP (bench/http_rush.py): 10,000 signed-in users POST the join form
   once each to gunicorn (one worker process as the baseline, then several + Redis), by wrk.
5. Purchase rush over HTTP: 1,000 live offers paid at once on the local payment page.
6. One join's transaction with its outbox rows against the same join without them.
7. The fair start's draw: a lobby of 1,000 and 10,000 drawn into line (bench/draws.py).
8. Not here: the serving stacks compared (`python -m bench.stacks`, ~20 minutes on its own).

Runs on SQLite and on a throwaway PostgreSQL (when installed).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager, nullcontext
from datetime import timedelta

from sqlalchemy import func, insert, select

import tasks
from bench import draws, http_rush, open_loop, page_weight, waiting_room
from bench.queues import NOW, build_queue, make_app
from bench.tables import table
from blueprints.auth import SESSION_ID
from extensions import db
from models import Event, OutboxItem, Ticket, TicketStatus, User, WaitingListEntry
from services import outbox, queue, queue_reads, sessions
from tests.support.invariants import assert_queue_invariants
from tests.support.postgres import postgres_server
from tests.support.workers import run_threads

QUEUE_LENGTHS = (1_000, 10_000, 100_000)


def timed(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def our_read(event_id: int, user_id: int):
    event = db.session.get(Event, event_id)
    queue_reads.availability(event, now=NOW)
    status = queue_reads.queue_status(event_id=event_id, user_id=user_id, now=NOW)
    db.session.rollback()
    return status.position


def seed_read(event_id: int, user_id: int):
    """The seed's getEventAvailability + getQueuePosition: collect, then filter in code."""
    tickets = db.session.scalars(select(Ticket).where(Ticket.event_id == event_id)).all()
    sold = sum(t.status in TicketStatus.LIVE for t in tickets)
    offered = db.session.scalars(select(WaitingListEntry).where(
        WaitingListEntry.event_id == event_id, WaitingListEntry.status == "offered")).all()
    live = sum(e.offer_expires_at > NOW for e in offered)
    entries = db.session.scalars(
        select(WaitingListEntry).where(WaitingListEntry.event_id == event_id)).all()
    mine = next(e for e in entries if e.user_id == user_id and e.status != "expired")
    ahead = sum(1 for e in entries if e.seq < mine.seq and e.status in ("waiting", "offered"))
    db.session.rollback()
    return sold, live, ahead + 1


def bench_reads(name: str, url: str, folder: str, rows: list):
    app = make_app(url, folder)
    with app.app_context():
        for length in QUEUE_LENGTHS:
            event_id, last_user = build_queue(length)
            assert our_read(event_id, last_user) == length
            assert seed_read(event_id, last_user)[2] == length
            ours = timed(lambda e=event_id, u=last_user: our_read(e, u), 30)
            seeds = timed(lambda e=event_id, u=last_user: seed_read(e, u), 5)
            rows.append((name, f"{length:,}", f"{ours * 1e3:.2f}", f"{seeds * 1e3:.1f}",
                         f"{seeds / ours:.0f}x"))
        db.session.remove()
        db.engine.dispose()


def bench_http(name: str, url: str, folder: str, rows: list):
    app = make_app(url, folder)
    with app.app_context():
        event_id, last_user = build_queue(10_000)
        client = app.test_client()
        sign_in_id = sessions.start_session(user_id=last_user, now=NOW)
        with client.session_transaction() as session:
            session["_user_id"] = str(last_user)
            session[SESSION_ID] = sign_in_id
            session["_fresh"] = True
        path = f"/events/{event_id}/status"
        first = client.get(path)
        assert first.status_code == 200 and b'data-position="10000"' in first.data
        etag = first.headers["ETag"]
        full = timed(lambda: client.get(path), 200)
        cached = timed(lambda: client.get(path, headers={"If-None-Match": etag}), 200)
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
        rows.append((name, f"{full * 1e3:.2f}", f"{cached * 1e3:.2f}", f"{full / cached:.1f}x",
                     f"{len(first.data):,}"))
        db.session.remove()
        db.engine.dispose()


def bench_rush(name: str, url: str, folder: str, rows: list, joins: int = 2000, threads: int = 16):
    app = make_app(url, folder)
    with app.app_context():
        db.session.execute(insert(User), [
            {"name": f"r{i}", "email": f"r{i}@bench.example", "password_hash": "x",
             "created_at": NOW}
            for i in range(joins + 1)])
        event = Event(organizer_id=1, name="Rush", description="", location="Here",
                      published_at=NOW, starts_at=NOW + timedelta(days=1), price_pence=1000,
                      total_tickets=100)
        db.session.add(event)
        db.session.commit()
        event_id = event.id
        jobs = [("join", event_id, 2 + i, NOW) for i in range(joins)]
        start = time.perf_counter()
        results = run_threads(app, jobs, workers=threads)
        elapsed = time.perf_counter() - start
        counts = Counter(results)
        recount = assert_queue_invariants(event_id)
        rows.append((name, f"{joins:,}", str(threads), f"{elapsed:.2f}", f"{joins / elapsed:,.0f}",
                     f"{counts['offered']} / {counts['waiting']}",
                     "yes" if recount["sold"] + recount["offered"] <= 100 else "NO"))
        db.session.remove()
        db.engine.dispose()


@contextmanager
def _without_outbox_rows():
    """The join as it was before the outbox: its follow-ups handed to the queue after commit
    from memory, with no row written in the transaction."""
    real_add, real_insert = outbox.add, outbox.insert_rows
    outbox.add = lambda kind, *args, now, run_at=None: None
    outbox.insert_rows = lambda follow_ups, *, now: None  # the lean join's (services/queue.py)
    try:
        yield
    finally:
        outbox.add, outbox.insert_rows = real_add, real_insert


def bench_join_cost(name: str, url: str, folder: str, rows: list, rounds: int = 8,
                    per_round: int = 100):
    """One join's committed transaction, with and without its outbox rows, alternating in
    rounds so both see the same machine. Every join is offered a ticket at once: the worst
    case, two rows (the offer's deadline and its email) in the transaction."""
    app = make_app(url, folder)
    joins = 2 * rounds * per_round
    outbox.set_dispatcher(lambda handover: None)  # a Huey enqueue costs the same either way
    try:
        with app.app_context():
            db.session.execute(insert(User), [
                {"name": f"j{i}", "email": f"j{i}@bench.example", "password_hash": "x",
                 "created_at": NOW} for i in range(joins + 1)])
            variants = {"without outbox (before)": _without_outbox_rows, "with outbox": nullcontext}
            events = {}
            for label in variants:
                event = Event(organizer_id=1, name=label, description="", location="Here",
                              published_at=NOW,
                              starts_at=NOW + timedelta(days=1), price_pence=1000,
                              total_tickets=joins)
                db.session.add(event)
                db.session.commit()
                events[label] = event.id
            samples = {label: [] for label in variants}
            users = iter(range(2, joins + 2))
            for _ in range(rounds):
                for label, context in variants.items():
                    with context():
                        for _ in range(per_round):
                            user_id = next(users)
                            start = time.perf_counter()
                            queue.join_queue(event_id=events[label], user_id=user_id, now=NOW)
                            samples[label].append(time.perf_counter() - start)
            before, after = (statistics.median(samples[label]) for label in variants)
            written = db.session.scalar(select(func.count()).select_from(OutboxItem))
            assert written == 2 * rounds * per_round, written
            for label, cost in zip(variants, (before, after)):
                rows.append((name, label, f"{cost * 1e3:.2f}", f"{cost / before:.2f}x"))
            db.session.remove()
            db.engine.dispose()
    finally:
        outbox.set_dispatcher(tasks.dispatch)


def bench_draws(name: str, url: str, folder: str, rows: list):
    app = make_app(url, folder)
    outbox.set_dispatcher(lambda handover: None)  # the offers' tasks: not what is timed
    try:
        with app.app_context():
            draws.bench_draw(name, rows)
            db.engine.dispose()
    finally:
        outbox.set_dispatcher(tasks.dispatch)


def main() -> None:
    read_rows, http_rows, rush_rows, join_cost_rows, draw_rows = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg_url:
        databases = [("sqlite", lambda tag: f"sqlite:///{tmp}/{tag}.sqlite3")]
        if pg_url:
            databases.append(("postgresql", lambda tag: pg_url))
        for name, url_for in databases:
            print(f"benchmarking {name}…", file=sys.stderr)
            bench_reads(name, url_for("reads"), tmp, read_rows)
            bench_http(name, url_for("http"), tmp, http_rows)
            bench_rush(name, url_for("rush"), tmp, rush_rows)
            bench_join_cost(name, url_for("join-cost"), tmp, join_cost_rows)
            bench_draws(name, url_for("draws"), tmp, draw_rows)
    print(table("Status read for the last person in line (median ms; baseline = the seed's "
                "collect-and-filter)", ("database", "queue length", "ours ms", "seed ms",
                                        "seed / ours"), read_rows))
    print(table("Status poll over HTTP, 10,000 in line (median ms per request, in-process "
                "client)", ("database", "200 render ms", "304 ms", "200 / 304", "fragment bytes"),
                http_rows))
    print(table("Join rush: everyone joins one event of 100 tickets at once",
                ("database", "joins", "threads", "seconds", "joins/s", "offered / waiting",
                 "sold + offers <= capacity"), rush_rows))
    print(table("One join's transaction, before and after the outbox (median ms per committed "
                "join that is offered a ticket: two follow-up rows; alternating rounds)",
                ("database", "join", "ms", "vs before"), join_cost_rows))
    print(table(f"The on-sale draw: a lobby drawn into line, {draws.CAPACITY} tickets offered "
                "(one transition; places checked against the seed afterwards)",
                ("database", "lobby", "seconds", "entries/s", "offered", "places and invariants"),
                draw_rows))
    print(page_weight.table())
    sys.stdout.flush()
    # The same rushes over real HTTP: gunicorn + wrk (bench/http_rush.py).
    http_rush.main()
    sys.stdout.flush()
    # The waiting room as a share of a trivial app, people held in line, nginx.
    waiting_room.main()
    open_loop.main()  # then validated open-loop: 10,000 waiters on their own cadence


if __name__ == "__main__":
    main()
