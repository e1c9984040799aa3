"""The on-sale instant under load, on SQLite and PostgreSQL: the draw's task, the minute
sweep, page views and joins all race it. The lobby is drawn exactly once, every join lands
either in the lobby (and is drawn) or in line behind it, never both and never lost, and the
places are 1..N in the draw's order."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from models import AuditAction, AuditEntry, Event, WaitingListEntry
from services import draws
from tests.support.factories import make_event, make_user, utc
from tests.support.invariants import assert_queue_invariants
from tests.support.workers import run_threads

pytestmark = [pytest.mark.concurrency]

T0 = utc(2030, 6, 1, 8, 0)
ON_SALE = T0 + timedelta(hours=1)
JUST = timedelta(milliseconds=1)


def test_everything_racing_the_on_sale_draws_once_and_loses_nobody(any_db_app):
    event = make_event(now=T0, total_tickets=5, starts_at=T0 + timedelta(days=3),
                       sale_starts_at=ON_SALE)
    early = [make_user() for _ in range(30)]
    results = run_threads(any_db_app, [("join", event.id, u.id, T0 + timedelta(seconds=n))
                                       for n, u in enumerate(early)], workers=16)
    assert Counter(results) == {"lobby": 30}

    racers = [make_user() for _ in range(16)]
    jobs = [("join", event.id, u.id, ON_SALE + (JUST if n % 2 else -JUST))
            for n, u in enumerate(racers)]
    jobs += [("draw", event.id, 0, ON_SALE)] * 4
    jobs += [("sweep", event.id, 0, ON_SALE + timedelta(seconds=1))] * 2
    jobs += [("read", event.id, 0, ON_SALE + JUST)] * 8
    results = run_threads(any_db_app, jobs, workers=len(jobs))
    assert not [r for r in results if r.startswith("refused")], results

    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == AuditAction.DRAWN)) == 1
    event = db.session.get(Event, event.id)
    entries = {e.user_id: e for e in db.session.scalars(
        select(WaitingListEntry).where(WaitingListEntry.event_id == event.id))}
    assert len(entries) == 46  # one entry each: nobody lost, nobody twice
    # Racers that came in before the draw were drawn with the lobby; the rest are behind it.
    drawn = [e for e in entries.values() if e.seq <= event.draw_size]
    behind = sorted(e.seq for e in entries.values() if e.seq > event.draw_size)
    assert event.draw_size >= 30 and len(drawn) == event.draw_size
    assert behind == list(range(event.draw_size + 1, 47))
    assert all(entries[u.id].seq <= event.draw_size for u in early)
    assert all(e.joined_at < ON_SALE for e in drawn)
    record = draws.draw_record(event)
    assert draws.verify(seed=record.seed, commitment=record.commitment, event_id=event.id,
                        places=record.places) == []
    counts = assert_queue_invariants(event.id)
    assert counts["offered"] == 5 and counts["waiting"] == 41
