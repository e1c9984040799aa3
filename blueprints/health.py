"""``/healthz``: can the app serve? Database and task-queue state as JSON."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, jsonify
from sqlalchemy import text

import tasks
from extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    body: dict = {}
    try:
        db.session.execute(text("SELECT 1"))
        body["db"] = "ok"
    except Exception as error:  # report, don't crash: this is what monitors read
        db.session.rollback()
        body["db"] = f"error: {type(error).__name__}"
    try:
        body["tasks"] = "ok"
        body["tasks_pending"] = tasks.huey.pending_count()
        last_seen = tasks.consumer_last_seen()
        body["consumer_last_seen"] = last_seen
        if last_seen:
            age = datetime.now(timezone.utc) - datetime.fromisoformat(last_seen)
            body["consumer"] = "ok" if age.total_seconds() < 150 else "stale"
        else:
            body["consumer"] = "not seen yet"
    except Exception as error:
        body["tasks"] = f"error: {type(error).__name__}"
    healthy = body["db"] == "ok" and body["tasks"] == "ok"
    return jsonify(body), 200 if healthy else 503
