"""The unit of work and the event lock: how every state change reaches the database.

A write that must keep an invariant runs as one ``UnitOfWork``: it opens the transaction
(never joins one the caller left open), takes the lock the invariant needs, commits once
with the follow-ups it wrote to the outbox, and hands those to the task queue after commit.

Locking an event (``lock_event``) serializes every change of that event across processes:

* PostgreSQL: ``SELECT … FROM events WHERE id = … FOR UPDATE`` locks the event row. Under
  READ COMMITTED every later statement of the transaction sees everything committed before
  the lock was granted. ``lock_timeout`` (set on connect) turns a long wait into ``Busy``.
  Other events' changes do not wait.
* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock before the first read, so no
  other writer can interleave between our reads and writes (a deferred transaction could
  read, then fail to upgrade with SQLITE_BUSY). WAL mode keeps readers running beside the
  writer; the busy timeout (set on connect) makes writers queue, then ``Busy``.

A unit of work must open the transaction, because the lock is what makes every read after
it current. Entering one with unsaved changes in the session is a bug in the caller: it
raises ``PendingChanges`` rather than silently discarding them (after pretix's
``lock_objects``). A transaction that has only read is ended first.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, select
from sqlalchemy import event as sa_event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from extensions import db
from models import Event
from services import Busy, NotFound, is_lock_timeout, outbox


class PendingChanges(RuntimeError):
    """A unit of work was entered while the session held unsaved changes."""


def begin_write() -> None:
    """Make the next statement open a fresh transaction. Raises ``PendingChanges`` when the
    session holds unsaved changes (they would be lost or committed by accident)."""
    session = db.session()
    if session.new or session.dirty or session.deleted:
        changed = [*session.new, *session.dirty, *session.deleted]
        raise PendingChanges(f"a unit of work was entered with unsaved changes: {changed!r}")
    if session.in_transaction():
        session.rollback()  # end the earlier read, so the lock comes first


@contextmanager
def busy_on_lock_timeout():
    """A lock that could not be had in time is ``Busy`` ("try again"), never a 500; the
    transaction is rolled back either way."""
    try:
        yield
    except OperationalError as error:
        db.session.rollback()
        if is_lock_timeout(error):
            raise Busy() from error
        raise


def _begin_immediate_on_sqlite() -> bool:
    """On SQLite, open the transaction with ``BEGIN IMMEDIATE`` (the write lock), once
    through the writers' gate; returns whether the database is SQLite."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return False
    if not connection.connection.dbapi_connection.in_transaction:
        _enter_writers_gate(connection.engine.url.database)
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    return True


# The writers' gate (SQLite). Writers that find the database locked wait in SQLite's busy
# handler, which sleeps (1, 2, 5 … 100 ms) and polls: in a rush the lock sits free while
# every waiter sleeps, and a join or payment waits tens or hundreds of milliseconds for a
# lock held for one or two. So the transitions queue for ``BEGIN IMMEDIATE`` at a gate that
# wakes the next writer as the last one ends: a lock per process (threads) and an ``flock``
# on a file beside the database (processes; the kernel drops it if a process dies). A
# holder is never held up for long by anyone else (the busy timeout bounds its own waits on
# writers that do not pass the gate), and the gate opens when its transaction ends.
GATE_TIMEOUT_SECONDS = 15  # as the busy timeout (app.py)
_gate_locks: dict[str, threading.Lock] = {}
_gate_files: dict[tuple[int, str], int] = {}  # (process id, database): the open lock file


def _enter_writers_gate(database: str | None) -> None:
    session = db.session()
    if not database or database == ":memory:" or "writers_gate" in session.info:
        return
    lock = _gate_locks.setdefault(database, threading.Lock())
    if not lock.acquire(timeout=GATE_TIMEOUT_SECONDS):
        raise Busy()
    try:
        key = (os.getpid(), database)  # a forked worker opens its own: flock is per file
        if key not in _gate_files:
            _gate_files[key] = os.open(f"{database}.writers", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(_gate_files[key], fcntl.LOCK_EX)
    except BaseException:
        lock.release()
        raise
    session.info["writers_gate"] = (lock, _gate_files[key])


@sa_event.listens_for(Session, "after_transaction_end")
def _leave_writers_gate(session, transaction) -> None:
    """The transaction that passed the gate has ended (committed, rolled back or closed)."""
    if transaction.parent is not None or "writers_gate" not in session.info:
        return
    lock, fd = session.info.pop("writers_gate")
    fcntl.flock(fd, fcntl.LOCK_UN)
    lock.release()


def lock_event(event_id: int) -> Event:
    """Lock the event row for the rest of this transaction (see the module docstring)."""
    with busy_on_lock_timeout():
        _begin_immediate_on_sqlite()
        event = db.session.execute(
            select(Event)
            .where(Event.id == event_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    if event is None:
        db.session.rollback()
        raise NotFound("We couldn't find that event.")
    return event


class EventRead:
    """The first read of a lean transition, built once: ``columns`` of the event row, and
    ``checks`` (scalar subqueries over other tables, as labelled columns) as they stand
    once the event's lock is held. Both are bound by ``event_id`` and whatever else the
    checks name (``bindparam``), so a request only binds values, builds nothing.

    SQLite's ``BEGIN IMMEDIATE`` holds the write lock before the first read, so one SELECT
    reads both. PostgreSQL evaluates a statement against the snapshot taken when it began,
    before any wait for the row lock, so the checks are read by a second statement, which
    sees everything committed before the lock was granted.
    """

    def __init__(self, columns: list, checks: list):
        table = Event.__table__
        this_event = table.c.id == bindparam("event_id")
        self.together = select(*columns, *checks).where(this_event)
        self.locked = select(*columns).where(this_event).with_for_update()
        self.checks = select(*checks) if checks else None


def lock_event_row(read: EventRead, params: dict) -> SimpleNamespace | None:
    """``lock_event`` for the lean transitions: lock the event row ``params["event_id"]`` as
    it does and return ``read``'s columns and checks by name, as attributes (None: there is
    no such event), in one read on SQLite and two on PostgreSQL (see ``EventRead``)."""
    with busy_on_lock_timeout():
        if _begin_immediate_on_sqlite():
            row = db.session.execute(read.together, params).one_or_none()
            return None if row is None else SimpleNamespace(**row._mapping)
        row = db.session.execute(read.locked, params).one_or_none()
        if row is None:
            return None
        checked = ({} if read.checks is None
                   else db.session.execute(read.checks, params).one()._mapping)
        return SimpleNamespace(**row._mapping, **checked)


class UnitOfWork:
    """One transaction, as ``with UnitOfWork(now=now):``: commits once on success (with the
    outbox rows written meanwhile, then hands them over), rolls back on any exception.
    Subclasses lock what they need in ``__enter__`` and may add to ``before_commit``."""

    def __init__(self, *, now: datetime):
        self.now = now

    def __enter__(self):
        begin_write()
        outbox.begin()
        return self

    def before_commit(self) -> None:
        """Last writes of the unit (still inside the transaction)."""

    def after_commit(self) -> None:
        """What the process must forget once the unit committed (caches of what changed)."""

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            db.session.rollback()
            return False
        with busy_on_lock_timeout():
            self.before_commit()
            handovers = outbox.take_new(now=self.now)
            db.session.commit()
        self.after_commit()
        outbox.relay_new(handovers, now=self.now)
        return False
