"""The Huey instance and its tasks.

Huey runs on SQLite under ``instance/`` by default and on Redis when ``REDIS_URL`` is set.
Each task is a thin wrapper: it enters the Flask app context and calls one service.
Start a consumer with ``huey_consumer tasks.huey`` (``make run`` does).
"""

from __future__ import annotations

import functools
import os
from contextlib import nullcontext
from datetime import datetime, timezone

from flask import Flask, has_app_context
from huey import RedisHuey, SqliteHuey, crontab

from config import instance_path

HEARTBEAT_KEY = "consumer-heartbeat"


def _make_huey():
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        return RedisHuey("tickethub", url=redis_url)
    folder = instance_path()
    folder.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("tickethub", filename=str(folder / "huey.sqlite3"))


huey = _make_huey()
_app: Flask | None = None


def bind_app(app: Flask) -> None:
    """Make ``app`` the one tasks run in (``create_app`` calls this)."""
    global _app
    _app = app
    huey.immediate = bool(app.config.get("HUEY_IMMEDIATE"))


def _app_context():
    if has_app_context():
        return nullcontext()
    if _app is None:
        from app import create_app

        create_app()  # binds itself through bind_app
    return _app.app_context()


def in_app_context(fn):
    """Run a task body inside the Flask app context (the consumer has none of its own)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _app_context():
            return fn(*args, **kwargs)

    return wrapper


def _now() -> datetime:
    return datetime.now(timezone.utc)


@huey.task(retries=3, retry_delay=5)
@in_app_context
def expire_offer_at_deadline(entry_id: int) -> bool:
    """Scheduled for an offer's deadline when it is made (the seed's ``runAfter``)."""
    from services import queue

    return queue.expire_offer(entry_id=entry_id, now=_now())


@huey.periodic_task(crontab(minute="*"))
@in_app_context
def sweep_expired_offers() -> int:
    """Every minute, expire any offer whose scheduled task was missed (the seed's cron)."""
    from services import queue

    return queue.expire_offers(now=_now())


@huey.task(retries=10, retry_delay=30)
@in_app_context
def close_checkout(entry_id: int) -> None:
    """An offer ended unpaid: expire its Checkout Session so it can't be paid any more."""
    from services import purchases

    purchases.close_checkout(entry_id=entry_id)


@huey.task(retries=20, retry_delay=60)
@in_app_context
def send_refund(ticket_id: int) -> None:
    """Return a refunded ticket's money; retried until the gateway confirms it."""
    from services import purchases

    purchases.send_refund(ticket_id=ticket_id, now=_now())


@huey.periodic_task(crontab(minute="*/5"))
@in_app_context
def resume_refunds() -> int:
    """Refunds are resumable: any still owed (a crash, a lost task) are sent again. The
    gateway call's idempotency key per ticket means nobody is refunded twice."""
    from services import purchases

    owed = purchases.owed_refunds()
    for ticket_id in owed:
        send_refund(ticket_id)
    return len(owed)


@huey.task(retries=5, retry_delay=60)
@in_app_context
def send_notification(kind: str, object_id: int) -> str:
    """Email someone about their offer or ticket; retried when the mail server fails."""
    from services import notifications

    return notifications.send(kind, object_id)


@huey.periodic_task(crontab(minute="*"))
def heartbeat() -> None:
    """Lets /healthz tell whether a consumer is running."""
    huey.put(HEARTBEAT_KEY, datetime.now(timezone.utc).isoformat())


def consumer_last_seen() -> str | None:
    return huey.get(HEARTBEAT_KEY, peek=True)
