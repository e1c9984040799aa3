"""Concurrent actors for the concurrency tests: threads and separate processes.

A process worker builds its own app (its own engine and connections) on the same
database, waits at a barrier so every worker starts together, then runs its actions.
"""

from __future__ import annotations

import random
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from services import ServiceError, queue, queue_reads

# Outcomes a user may legitimately meet under load; anything else is a failure.
EXPECTED = (ServiceError,)


def run_action(action: str, event_id: int, user_id: int, now: datetime) -> str:
    try:
        if action == "join":
            entry = queue.join_queue(event_id=event_id, user_id=user_id, now=now)
            return "lobby" if entry.in_lobby else entry.status
        if action == "draw":  # the task scheduled for the on-sale
            return "drew" if queue.draw_lobby(event_id=event_id, now=now) else "no draw"
        if action == "sweep":  # the minute sweep
            return f"swept {queue.draw_due_lobbies(now=now)}"
        if action == "read":  # a page view: refreshes lazily when time made the state stale
            if queue_reads.event_clock(event_id).needs_refresh(now):
                queue.refresh_event(event_id=event_id, now=now)
            return "read"
        if action == "release":
            return queue.release(event_id=event_id, user_id=user_id, now=now).end_reason
        if action == "expire":
            return f"expired {queue.expire_offers(now=now)}"
        if action == "buy":
            entry = queue_reads.latest_entry(event_id=event_id, user_id=user_id)
            if entry is None:
                return "no entry"
            ticket = queue.complete_purchase(
                entry_id=entry.id, user_id=user_id, payment_reference=f"pay-{entry.id}",
                amount_pence=100, now=now,
            )
            return f"ticket {ticket.id}"
        raise ValueError(action)
    except EXPECTED as error:
        return f"refused: {type(error).__name__}"


def run_threads(app, jobs, workers: int = 16) -> list[str]:
    """Run (action, event_id, user_id, now) jobs on ``workers`` threads, all released at once."""
    barrier = threading.Barrier(min(workers, len(jobs)))

    def one(job):
        with app.app_context():
            if len(jobs) <= workers:
                barrier.wait(timeout=30)
            try:
                return run_action(*job)
            finally:
                from extensions import db

                db.session.remove()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, jobs))


def process_worker(config: dict, jobs, barrier, results) -> None:
    """Entry point of a worker process (multiprocessing 'spawn')."""
    try:
        from app import create_app
        from extensions import db

        app = create_app(config)
        with app.app_context():
            barrier.wait(timeout=60)
            out = [run_action(*job) for job in jobs]
            db.session.remove()
        results.put(("ok", out))
    except BaseException:  # report to the parent, which fails the test
        results.put(("error", traceback.format_exc()))


def random_jobs(event_id: int, user_ids: list[int], count: int, start: datetime,
                seed: int) -> list[tuple]:
    """A reproducible mix of joins, releases, purchases and expiry sweeps over a moving clock."""
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        now = start + timedelta(seconds=i * 7)
        action = rng.choices(["join", "release", "buy", "expire"], weights=[5, 2, 2, 1])[0]
        jobs.append((action, event_id, rng.choice(user_ids), now))
    return jobs


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
