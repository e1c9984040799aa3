"""``/healthz``: can the app serve, and are its follow-ups being acted on? JSON for monitors.

200 while the database answers (the app can serve, even with the task broker away: users'
actions still commit and their follow-ups wait in the outbox); 503 when it does not.
``consumer`` is ``ok`` only while a consumer's heartbeat is fresh **and** the outbox has no
follow-up due for longer than ``STALE_AFTER``: a stopped consumer shows as ``stale`` as soon
as work piles up, not only when its heartbeat ages.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, jsonify
from sqlalchemy import text

import tasks
from extensions import db
from services import outbox

bp = Blueprint("health", __name__)

STALE_AFTER = timedelta(seconds=60)
HEARTBEAT_EVERY = timedelta(minutes=1)


@bp.get("/healthz")
def healthz():
    now = datetime.now(timezone.utc)
    body: dict = {}
    lag = None
    try:
        db.session.execute(text("SELECT 1"))
        backlog = outbox.backlog(now=now)
        lag = backlog.lag_seconds(now)
        body.update(db="ok", outbox_due=backlog.due, outbox_lag_seconds=round(lag, 1))
    except Exception as error:  # report, don't crash: this is what monitors read
        db.session.rollback()
        body["db"] = f"error: {type(error).__name__}"
    try:
        body["tasks_pending"] = tasks.huey.pending_count()
        body["consumer_last_seen"] = last_seen = tasks.consumer_last_seen()
        body["tasks"] = "ok"
    except Exception as error:  # the broker is away: follow-ups wait in the outbox
        body["tasks"] = f"error: {type(error).__name__}"
        last_seen = None
    body["consumer"] = _consumer_state(last_seen, lag, now)
    return jsonify(body), 200 if body["db"] == "ok" else 503


def _consumer_state(last_seen: str | None, lag: float | None, now: datetime) -> str:
    if lag is not None and lag > STALE_AFTER.total_seconds():
        return "stale"
    if not last_seen:
        return "not seen yet"
    age = now - datetime.fromisoformat(last_seen)
    return "ok" if age < 2.5 * HEARTBEAT_EVERY else "stale"
