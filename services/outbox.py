"""The transactional outbox: the one way a committed transition sets off work elsewhere.

A transition's follow-ups (an offer's deadline, closing an unpaid payment page, a refund,
every email) are rows written by ``add`` in the **same transaction** as the transition, so
they commit or vanish with it. Then:

1. ``relay_new`` hands the rows the unit of work just committed to the task queue, through
   the dispatcher ``tasks.py`` registers (services never import ``tasks``);
2. ``relay_due`` hands again every row whose hand-over failed (the broker was down) or whose
   task never finished (a lost task, a killed worker), until it is done. The task consumer
   runs it every few seconds;
3. the worker ``claim``s a row before acting on it and marks it ``finish``ed after, or
   ``release``s it to be retried. A row handed over twice is acted on once; a worker killed
   mid-task leaves a claim that lapses after ``lease()``, and the row is handed over again.

Delivery is at least once and action exactly once for a finished row; every handler is also
idempotent (a crash between acting and ``finish`` repeats an action that changes nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, func, insert, or_, select, update

from extensions import db
from models import OutboxItem

log = logging.getLogger(__name__)

# A row that failed this often stops being retried (it shows in /healthz's backlog).
MAX_ATTEMPTS = 25
KEEP_DONE = timedelta(days=7)


@dataclass(frozen=True)
class Handover:
    """What the dispatcher needs of a row, read before commit (no reload after it)."""

    id: int
    kind: str
    args: tuple
    eta: datetime | None  # not before this (an offer's deadline); None: at once

    @classmethod
    def of(cls, item_id: int, kind: str, args, run_at: datetime, *, now: datetime) -> Handover:
        return cls(item_id, kind, tuple(args), run_at if run_at > now else None)


Dispatcher = Callable[[Handover], None]
_dispatcher: Dispatcher | None = None


def lease() -> timedelta:
    """How long a hand-over or a claim is trusted before the row is handed over again
    (``OUTBOX_LEASE_SECONDS``): longer than any task takes, short enough to recover soon."""
    return timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    """Where rows are handed over (``tasks.py`` registers the Huey one)."""
    global _dispatcher
    _dispatcher = dispatcher


def _new() -> list[OutboxItem]:
    return db.session.info.setdefault("outbox_new", [])


def _inserted() -> list[Handover]:
    """Rows ``insert_rows`` wrote in the open unit of work (already with their ids)."""
    return db.session.info.setdefault("outbox_inserted", [])


def begin() -> None:
    """Start collecting the rows of a new unit of work."""
    _new().clear()
    _inserted().clear()


def add(kind: str, *args, now: datetime, run_at: datetime | None = None,
        deferred: bool = False) -> None:
    """Write a follow-up into the open transaction; it is handed over once that commits.

    ``deferred``: left to the relay in the task consumer instead (``relay_due``, within
    ``OUTBOX_RELAY_SECONDS``), for follow-ups that come by the thousand, such as the
    emails of a draw, which the request that caused them should not wait to hand over.
    """
    item = OutboxItem(kind=kind, args=list(args), run_at=run_at or now, created_at=now,
                      handed_at=now if _dispatcher and not deferred else None)
    db.session.add(item)
    if not deferred:
        _new().append(item)


_INSERT = insert(OutboxItem.__table__).returning(OutboxItem.__table__.c.id,
                                                 sort_by_parameter_order=True)


def insert_rows(rows: list[tuple[str, tuple, datetime | None]], *, now: datetime) -> None:
    """``add`` for the lean transitions, which write with Core statements rather than the
    ORM: every (kind, args, run_at or None for at once) in one INSERT … RETURNING, handed
    over after commit like the rows ``add`` writes."""
    if not rows:
        return
    handed_at = now if _dispatcher else None
    values = [{"kind": kind, "args": list(args), "run_at": run_at or now, "created_at": now,
               "handed_at": handed_at} for kind, args, run_at in rows]
    ids = db.session.execute(_INSERT, values).scalars().all()
    _inserted().extend(Handover.of(item_id, value["kind"], value["args"], value["run_at"],
                                   now=now) for item_id, value in zip(ids, values))


def take_new(*, now: datetime) -> list[Handover]:
    """The rows added since ``begin``, flushed so they have ids; call just before commit."""
    items = list(_new())
    _new().clear()
    handovers = list(_inserted())
    _inserted().clear()
    if not items:
        return handovers
    db.session.flush()
    return handovers + [Handover.of(item.id, item.kind, item.args, item.run_at, now=now)
                        for item in items]


def relay_new(handovers: list[Handover], *, now: datetime) -> None:
    """After commit: hand the unit of work's rows over. A failure loses nothing: the row is
    marked not handed, and ``relay_due`` hands it over on its next pass."""
    if not handovers or _dispatcher is None:
        return
    failed = []
    for handover in handovers:
        # After one failure the broker is away: don't make the user wait on it again.
        if failed or not _hand(handover):
            failed.append(handover.id)
    if failed:
        try:
            db.session.execute(
                update(OutboxItem).where(OutboxItem.id.in_(failed)).values(handed_at=None))
            db.session.commit()
        except Exception:  # the sweep's lease covers this too, a little later
            db.session.rollback()
            log.warning("could not mark outbox rows %s for the relay", failed, exc_info=True)


def _hand(handover: Handover) -> bool:
    try:
        _dispatcher(handover)
    except Exception as error:
        log.warning("could not hand outbox row %s (%s) to the task queue: %s; the relay "
                    "retries it", handover.id, handover.kind, error)
        return False
    return True


RELAY_BATCH = 500  # rows handed over per pass of the relay


def relay_due(*, now: datetime, limit: int = RELAY_BATCH) -> int:
    """Hand over again every row that was never handed over, or whose task has not finished
    a lease after both its hand-over and its due time. Returns how many were handed."""
    if _dispatcher is None:
        return 0
    stale = now - lease()
    rows = db.session.execute(
        select(OutboxItem.id, OutboxItem.kind, OutboxItem.args, OutboxItem.run_at)
        .where(
            OutboxItem.done_at.is_(None),
            OutboxItem.attempts < MAX_ATTEMPTS,
            or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
            or_(OutboxItem.handed_at.is_(None),
                and_(OutboxItem.handed_at < stale, OutboxItem.run_at < stale)),
        )
        .order_by(OutboxItem.run_at, OutboxItem.id)
        .limit(limit)
    ).all()
    db.session.rollback()  # end the read before handing over (a hand-over may run the task)
    handed = [row.id for row in rows if _hand(Handover.of(*row, now=now))]
    if handed:
        db.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_(handed), OutboxItem.done_at.is_(None))
            .values(handed_at=now))
        db.session.commit()
    return len(handed)


def claim(item_id: int, *, now: datetime) -> bool:
    """Take a row to act on it: False when it is done already or another worker holds it."""
    result = db.session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.id == item_id,
            OutboxItem.done_at.is_(None),
            or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
        )
        .values(claimed_until=now + lease(), attempts=OutboxItem.attempts + 1)
    )
    db.session.commit()
    return result.rowcount == 1


def finish(item_id: int, *, now: datetime) -> None:
    db.session.execute(update(OutboxItem).where(OutboxItem.id == item_id)
                       .values(done_at=now, claimed_until=None, last_error=None))
    db.session.commit()


def release(item_id: int, *, error: BaseException) -> None:
    """The action failed: let the next delivery (a task retry or the relay) claim it again."""
    db.session.rollback()
    db.session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(
        claimed_until=None, last_error=f"{type(error).__name__}: {error}"[:200]))
    db.session.commit()


@dataclass(frozen=True)
class Backlog:
    due: int  # rows due and not yet acted on
    oldest_due_at: datetime | None

    def lag_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest_due_at).total_seconds()) if self.oldest_due_at else 0.0


def backlog(*, now: datetime) -> Backlog:
    """How far behind the workers are: one read over the pending rows' partial index."""
    due, oldest = db.session.execute(
        select(func.count(), func.min(OutboxItem.run_at))
        .where(OutboxItem.done_at.is_(None), OutboxItem.run_at <= now)
    ).one()
    return Backlog(due, oldest)


def prune(*, now: datetime) -> int:
    """Forget rows acted on more than ``KEEP_DONE`` ago."""
    result = db.session.execute(delete(OutboxItem).where(OutboxItem.done_at < now - KEEP_DONE))
    db.session.commit()
    return result.rowcount
