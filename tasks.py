"""The Huey instance and its tasks.

Huey runs on SQLite under ``instance/`` by default and on Redis when ``REDIS_URL`` is set.
Each task is a thin wrapper: it enters the Flask app context and calls one service.
Start a consumer with ``huey_consumer worker.huey`` (``make run`` does): ``worker.py``
builds the app once and binds it here.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from contextlib import nullcontext
from datetime import datetime, timezone

from flask import Flask, has_app_context
from huey import RedisHuey, SqliteHuey, crontab
from redis import ConnectionPool

from config import load_config
from services import account_mail, notifications, outbox, purchases, queue, sessions, summaries

logger = logging.getLogger("tasks")

HEARTBEAT_KEY = "consumer-heartbeat"


def _make_huey(config: dict):
    redis_url = config["REDIS_URL"]
    if redis_url:
        # A hung Redis must not hang a request (the outbox keeps what can't be handed over)
        # or /healthz: give up within seconds. Above the consumer's 1 s blocking read.
        pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=1, socket_timeout=3)
        return RedisHuey("tickethub", connection_pool=pool)
    return SqliteHuey("tickethub", filename=config["HUEY_SQLITE_PATH"])


huey = _make_huey(load_config())
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
        raise RuntimeError("No app is bound to the tasks: start the consumer as "
                           "`huey_consumer worker.huey`, which builds it.")
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


def outbox_task(fn):
    """A task that acts on an outbox row: claim the row first, mark it done after.

    Called with ``outbox_id`` (as the relay does), a second delivery of the same row, or
    one arriving while another worker acts on it, does nothing; a failure releases the row
    for Huey's retry or the relay. Called without it (a sweep, a test), it just runs.
    """

    @functools.wraps(fn)
    def wrapper(*args, outbox_id: int | None = None, **kwargs):
        if outbox_id is None:
            return fn(*args, **kwargs)
        if not outbox.claim(outbox_id, now=_now()):
            return None
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            outbox.release(outbox_id, error=error)
            raise
        outbox.finish(outbox_id, now=_now())
        return result

    return wrapper


@huey.task(retries=3, retry_delay=5)
@in_app_context
@outbox_task
def expire_offer_at_deadline(entry_id: int) -> bool:
    """Scheduled for an offer's deadline when it is made (the seed's ``runAfter``)."""
    return queue.expire_offer(entry_id=entry_id, now=_now())


@huey.periodic_task(crontab(minute="*"))
@in_app_context
def sweep_expired_offers() -> int:
    """Every minute, expire any offer whose scheduled task was missed (the seed's cron)."""
    return queue.expire_offers(now=_now())


@huey.task(retries=10, retry_delay=5)
@in_app_context
@outbox_task
def draw_lobby_at_on_sale(event_id: int) -> bool:
    """Scheduled for an event's on-sale time when it is set: the lobby is drawn into line.
    (Should it run late, or never, the first read or write after the on-sale draws it.)"""
    return queue.draw_lobby(event_id=event_id, now=_now())


@huey.periodic_task(crontab(minute="*"))
@in_app_context
def sweep_due_draws() -> int:
    """Every minute, draw any lobby whose on-sale came without its task or a visitor."""
    return queue.draw_due_lobbies(now=_now())


@huey.task(retries=10, retry_delay=30)
@in_app_context
@outbox_task
def close_checkout(entry_id: int) -> None:
    """An offer ended unpaid: expire its Checkout Session so it can't be paid any more."""
    purchases.close_checkout(entry_id=entry_id)


@huey.task(retries=20, retry_delay=60)
@in_app_context
@outbox_task
def send_refund(ticket_id: int) -> None:
    """Return a refunded ticket's money; retried until the gateway confirms it."""
    purchases.send_refund(ticket_id=ticket_id, now=_now())


@huey.periodic_task(crontab(minute="*/5"))
@in_app_context
def resume_refunds() -> int:
    """Refunds are resumable: any still owed (a crash, a lost task) are sent again. The
    gateway call's idempotency key per ticket means nobody is refunded twice."""
    owed = purchases.owed_refunds()
    for ticket_id in owed:
        send_refund(ticket_id)
    return len(owed)


@huey.task(retries=5, retry_delay=60)
@in_app_context
@outbox_task
def send_notification(kind: str, object_id: int) -> str:
    """Email someone about their offer, ticket or event; retried when the mail server fails."""
    return notifications.send(kind, object_id, now=_now())


@huey.periodic_task(crontab(minute="7"))
@in_app_context
def queue_daily_sales_summaries() -> int:
    """Every hour, the daily sales emails due and not yet written (each organizer's once a
    day, from 07:00 UTC: a run missed while no consumer ran is made up by the next one)."""
    return summaries.queue_daily_summaries(now=_now())


@huey.task(retries=5, retry_delay=60)
@in_app_context
@outbox_task
def send_account_email(kind: str, user_id: int | None, address: str | None,
                       nonce: str) -> str | None:
    """Email a link to confirm an address or choose a password, or an account notice."""
    return account_mail.send(kind, user_id=user_id, address=address, nonce=nonce, now=_now())


@huey.periodic_task(crontab(hour="4", minute="23"))
@in_app_context
def prune_sessions() -> int:
    """Forget sign-in sessions that ended or expired."""
    return sessions.prune_sessions(now=_now())


@huey.periodic_task(crontab(minute="*"))
@in_app_context
def settle_stale_payments() -> int:
    """Every minute, finish payments authorised but never settled (a lost webhook, a worker
    killed mid-payment) exactly as the webhook would: seat and capture, or release."""
    return purchases.settle_stale_payments(now=_now())


# --------------------------------------------------------------------------- the outbox relay

OUTBOX_TASKS = {
    "expire_offer": expire_offer_at_deadline,
    "draw_lobby": draw_lobby_at_on_sale,
    "close_checkout": close_checkout,
    "send_refund": send_refund,
    "send_notification": send_notification,
    "send_account_email": send_account_email,
}


def dispatch(handover: outbox.Handover) -> None:
    """Hand one outbox row to Huey: at its due time, or now. Raises when the broker can't
    take it (the row then waits for the relay)."""
    task = OUTBOX_TASKS[handover.kind]
    if handover.eta is not None:
        task.schedule(args=handover.args, kwargs={"outbox_id": handover.id}, eta=handover.eta)
    else:
        task(*handover.args, outbox_id=handover.id)


outbox.set_dispatcher(dispatch)


@in_app_context
def relay_outbox() -> int:
    """Hand over every outbox row whose hand-over failed or whose task was lost."""
    return outbox.relay_due(now=_now())


@huey.periodic_task(crontab(hour="4", minute="17"))
@in_app_context
def prune_outbox() -> int:
    return outbox.prune(now=_now())


_relay_lock = threading.Lock()
_relay_thread: threading.Thread | None = None


@huey.on_startup()
def start_relay() -> None:
    """Each consumer process runs one relay loop beside its workers (Huey calls this for
    every worker; the first starts it). The loop reads the outbox directly, so rows whose
    hand-over failed while the broker was down reach it within seconds of its return."""
    global _relay_thread
    with _relay_lock:
        if _relay_thread is None:
            _relay_thread = threading.Thread(target=_relay_forever, name="outbox-relay",
                                             daemon=True)
            _relay_thread.start()


def _relay_forever() -> None:
    with _app_context():
        pause = _app.config["OUTBOX_RELAY_SECONDS"]
    while True:
        try:
            handed = relay_outbox()
        except Exception as error:  # the database or the broker is away: try again soon
            logger.warning("outbox relay pass failed: %s", error)
            handed = 0
        if handed < outbox.RELAY_BATCH:  # a full batch (a draw's emails): go on at once
            time.sleep(pause)


@huey.periodic_task(crontab(minute="*"))
def heartbeat() -> None:
    """Lets /healthz tell whether a consumer is running."""
    huey.put(HEARTBEAT_KEY, datetime.now(timezone.utc).isoformat())


def consumer_last_seen() -> str | None:
    return huey.get(HEARTBEAT_KEY, peek=True)
