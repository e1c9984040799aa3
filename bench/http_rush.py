"""On-sale rush over real HTTP: gunicorn on a migrated database, driven by wrk.

1. Join burst: 10,000 distinct signed-in users each POST /events/<id>/join exactly once into
   one event of 1,000 tickets; once against one worker process (`--workers 1 --threads 8`,
   rate limits in memory: the baseline) and once against several (`--workers 4 --threads 2`,
   rate limits and Huey on a throwaway redis-server, as WEB_CONCURRENCY > 1 requires), on
   SQLite and (when installed) on PostgreSQL.
2. Purchase rush: 1,000 live offers with open local checkout sessions, all paid at once
   through the local payment page (POST /pay/local/<session_id>, action=pay).

The server is tests/support/live_server.py's (its environment scrubbed of every setting the
app reads), started without a consumer: the tasks the requests enqueue stay queued, as a
consumer would take them off the request path anyway. Sessions and CSRF tokens are forged
in-process with the server's SECRET_KEY (Flask's session serializer, Flask-WTF's
generate_csrf), so every request is a distinct signed-in user with a valid token and nothing
but the measured POSTs reaches the server. bench/wrk.py sends each request exactly once and
times it (bench/rush.lua); afterwards the event is recounted from the database
(tests/support/invariants.py). Every process listens on or talks to 127.0.0.1 only, is
bounded in time and is stopped in a ``finally``.

``python -m bench`` runs these after the in-process tables; ``python -m bench.http_rush``
runs only these.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from flask import g, session
from flask_wtf.csrf import generate_csrf
from sqlalchemy import func, insert, select

from bench.tables import table
from bench.wrk import post_each_once, warm_up
from blueprints.auth import SESSION_ID
from blueprints.payments import checkout_urls
from extensions import db, login_manager
from models import CheckoutSession, CheckoutStatus, EntryStatus, SignInSession, User
from services import events as event_service
from services import purchases, queue
from tests.support.invariants import assert_queue_invariants, recount_queue
from tests.support.live_server import LiveServer, launch_server
from tests.support.postgres import postgres_server
from tests.support.redis_server import redis_server

USER_AGENT = "tickethub-bench"
PRICE_PENCE = 1_000

JOIN_USERS = 10_000
JOIN_CAPACITY = 1_000
RUSH_OFFERS = 1_000
CONNECTIONS = 32  # wrk threads, one connection each: the users in flight at any moment
SINGLE = (1, 8)  # gunicorn --workers, --threads (the baseline; no Redis needed)
MULTI = (4, 2)  # needs REDIS_URL (shared rate limits)

TARGET_JOINS_PER_S = 1_500
TARGET_JOIN_P99_MS = 100
TARGET_FULFILMENTS_PER_S = 500


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ seeding


def add_users(count: int) -> tuple[int, list[int]]:
    """One organizer and ``count`` buyers, bulk inserted: (organizer id, buyer ids)."""
    now = datetime.now(timezone.utc)
    tag = os.urandom(4).hex()
    db.session.execute(insert(User), [
        {"name": f"Bench {i}", "email": f"b{i}-{tag}@bench.example",
         "person_key": f"b{i}-{tag}@bench.example", "email_verified_at": now,
         "password_hash": "x", "created_at": now} for i in range(count + 1)])
    db.session.commit()
    ids = list(db.session.scalars(
        select(User.id).where(User.email.like(f"%-{tag}@bench.example")).order_by(User.id)))
    assert len(ids) == count + 1, len(ids)
    return ids[0], ids[1:]


def add_event(organizer_id: int, capacity: int) -> int:
    now = datetime.now(timezone.utc)
    event = event_service.create_event(
        organizer_id=organizer_id, now=now,
        details=event_service.EventDetails(
            name="Rush night", description="Benchmark event", location="Bench Hall",
            starts_at=now + timedelta(days=30), price_pence=PRICE_PENCE,
            total_tickets=capacity))
    return event.id


def forge_credentials(app, user_ids: list[int]) -> dict[int, tuple[str, str]]:
    """{user id: (session cookie, CSRF token)}, as the server would have issued at sign-in.

    The session holds what Flask-Login's login_user stores (including the identifier of
    this client address + User-Agent, so session protection leaves it alone), the id of the
    sign-in's row on the server (written here in bulk, as sign-ins would have) and the raw
    token Flask-WTF checks the form's signed one against.
    """
    serializer = app.session_interface.get_signing_serializer(app)
    now = datetime.now(timezone.utc)
    session_ids = {user_id: secrets.token_urlsafe(32) for user_id in user_ids}
    if session_ids:
        db.session.execute(insert(SignInSession), [
            {"id": session_id, "user_id": user_id, "created_at": now,
             "expires_at": now + app.permanent_session_lifetime}
            for user_id, session_id in session_ids.items()])
        db.session.commit()
    credentials = {}
    for user_id in user_ids:
        with app.test_request_context("/", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                                      headers={"User-Agent": USER_AGENT}):
            session["_user_id"] = str(user_id)
            session[SESSION_ID] = session_ids[user_id]
            session["_fresh"] = True
            session["_id"] = login_manager._session_identifier_generator()
            g.pop(app.config["WTF_CSRF_FIELD_NAME"], None)  # generate_csrf caches it in g
            token = generate_csrf()
            credentials[user_id] = (serializer.dumps(dict(session)), token)
    return credentials


def join_requests(app, count: int = JOIN_USERS, capacity: int = JOIN_CAPACITY) -> tuple[int, list]:
    """An event of ``capacity`` tickets and one join POST for each of ``count`` users."""
    organizer, users = add_users(count)
    event_id = add_event(organizer_id=organizer, capacity=capacity)
    start = time.perf_counter()
    credentials = forge_credentials(app, users)
    log(f"  forged {len(users):,} sessions + CSRF tokens in {time.perf_counter() - start:.1f} s")
    path = f"/events/{event_id}/join"
    return event_id, [(path, credentials[u][0], "csrf_token=" + quote(credentials[u][1], safe=""))
                      for u in users]


def pay_requests(app) -> tuple[int, list]:
    """RUSH_OFFERS live offers with open local checkout sessions and one Pay POST for each."""
    organizer, users = add_users(RUSH_OFFERS)
    event_id = add_event(organizer_id=organizer, capacity=RUSH_OFFERS)
    start = time.perf_counter()
    now = datetime.now(timezone.utc)
    for user_id in users:
        entry = queue.join_queue(event_id=event_id, user_id=user_id, now=now)
        assert entry.status == EntryStatus.OFFERED, entry.status
    sessions = {}
    for user_id in users:
        with app.test_request_context("/"):
            page = purchases.start_checkout(event_id=event_id, user_id=user_id,
                                            now=datetime.now(timezone.utc),
                                            urls=checkout_urls())
        sessions[user_id] = page.rsplit("/", 1)[-1]
    log(f"  {len(users):,} offers + local checkout sessions in "
        f"{time.perf_counter() - start:.1f} s")
    credentials = forge_credentials(app, users)
    return event_id, [(f"/pay/local/{sessions[u]}", credentials[u][0],
                       "action=pay&csrf_token=" + quote(credentials[u][1], safe=""))
                      for u in users]


# ----------------------------------------------------------------- serve, load, recount


def gunicorn_cpu_seconds(server: LiveServer) -> float:
    """User + system CPU of gunicorn's master and its live workers so far (Linux /proc)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in [server.processes["gunicorn"].pid, *server.web_workers()]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def recount(event_id: int) -> dict:
    """The event recounted from its rows, whether its invariants hold, and the paid sessions."""
    counts = recount_queue(event_id)
    try:
        assert_queue_invariants(event_id)
        counts["invariants"] = "hold"
    except AssertionError as error:
        counts["invariants"] = f"FAILED: {error}"
    counts["paid_sessions"] = db.session.scalar(
        select(func.count()).select_from(CheckoutSession)
        .where(CheckoutSession.event_id == event_id, CheckoutSession.status == CheckoutStatus.PAID))
    return counts


def rush(folder: Path, seed, *, workers: int, threads: int, redis_url: str | None,
         postgres_url: str | None = None) -> dict:
    """Migrate a fresh database, ``seed(app)`` it in-process (-> event id, requests), serve
    it with gunicorn, send every request once with wrk, then recount the event."""
    env = {"PAYMENTS": "local", "TICKET_OFFER_SECONDS": None,  # the embedded 30 minutes
           "WEB_CONCURRENCY": workers, "REDIS_URL": redis_url}
    if postgres_url:
        env["DATABASE_URL"] = postgres_url
    server = launch_server(folder, start=False, **env)
    try:
        server.flask("db", "upgrade")
        with server.app_context(SECRET_KEY=server.env["SECRET_KEY"], PAYMENTS="local",
                                RATELIMIT_ENABLED=False) as app:
            event_id, requests = seed(app)
        server.start(consumer=False, threads=threads, access_log=False)
        warm_up(f"{server.url}/events/{event_id}")
        result = post_each_once(server.url, requests, folder / "wrk", connections=CONNECTIONS,
                                user_agent=USER_AGENT,
                                cpu_seconds=lambda: gunicorn_cpu_seconds(server))
    finally:
        server.stop()
    with server.app_context():
        counts = recount(event_id)
    return {"workers": workers, "threads": threads, "redis": bool(redis_url),
            "database": "postgresql" if postgres_url else "sqlite", "wrk": result,
            "counts": counts}


# --------------------------------------------------------------------------- tables


def _server_name(run: dict) -> str:
    name = f"{run['workers']} worker{'s' if run['workers'] > 1 else ''} x {run['threads']} threads"
    name += " + Redis" if run["redis"] else " (baseline)"
    return name + (", PostgreSQL" if run["database"] == "postgresql" else ", SQLite")


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _measured(run: dict, asked: int, rate: float) -> tuple:
    """The first columns of both tables: server, answered, seconds and the rate."""
    w = run["wrk"]
    return (_server_name(run), f"{w.received:,} / {asked:,}", f"{w.seconds:.2f}",
            f"{rate:,.0f}")


def join_rows(runs: list[dict]) -> list[tuple]:
    # joins/s: waiting-list entries the run created, per second of the run
    baseline = next((r["wrk"].rate(r["counts"]["entries"]) for r in runs if r["workers"] == 1), 0)
    rows = []
    for run in runs:
        w, c = run["wrk"], run["counts"]
        rate = w.rate(c["entries"])
        rows.append((
            *_measured(run, JOIN_USERS, rate), f"{rate / baseline:.2f}x" if baseline else "-",
            _ms(w.p50_ms), _ms(w.p99_ms), f"{_ms(w.exact_p99_ms)} / {_ms(w.max_ms)}",
            w.statuses_text(), f"{c['offered']:,} / {c['waiting']:,}", str(c["oversold"]),
            str(c["duplicate_entries"]), c["invariants"], f"{w.cpu_ms_per_request():.1f}",
            f"{w.load_before:.1f}",
            f"{_mark(rate >= TARGET_JOINS_PER_S)} / {_mark(w.p99_ms < TARGET_JOIN_P99_MS)}",
        ))
    return rows


def rush_rows(runs: list[dict]) -> list[tuple]:
    rows = []
    for run in runs:
        w, c = run["wrk"], run["counts"]
        rate = w.rate(c["paid_sessions"])
        rows.append((
            *_measured(run, RUSH_OFFERS, rate), _ms(w.p50_ms), _ms(w.p99_ms),
            f"{_ms(w.exact_p99_ms)} / {_ms(w.max_ms)}", w.statuses_text(), f"{c['sold']:,}",
            str(c["oversold"]), str(c["duplicate_tickets"]), c["invariants"],
            f"{w.cpu_ms_per_request():.1f}", f"{w.load_before:.1f}",
            _mark(rate >= TARGET_FULFILMENTS_PER_S),
        ))
    return rows


def tables(join_runs: list[dict], pay_runs: list[dict], notes: list[str]) -> str:
    out = [table(
        f"Join burst over HTTP: {JOIN_USERS:,} signed-in users each POST /events/<id>/join once, "
        f"one event of {JOIN_CAPACITY:,} tickets (gunicorn; wrk with {CONNECTIONS} "
        f"connections; targets: >= {TARGET_JOINS_PER_S:,} joins/s, p99 < {TARGET_JOIN_P99_MS} ms)",
        ("server", "answered", "seconds", "joins/s", "vs 1 worker", "p50 ms", "p99 ms",
         "exact p99 / max ms", "statuses", "offered / waiting", "oversold",
         "duplicate active entries", "invariants", "server CPU ms/join", "load at start",
         "targets joins/s / p99"),
        join_rows(join_runs)), table(
        f"Purchase rush over HTTP: {RUSH_OFFERS:,} live offers paid at once on the local payment "
        f"page (POST /pay/local/<session>, action=pay; wrk with {CONNECTIONS} connections; "
        f"target: >= {TARGET_FULFILMENTS_PER_S} fulfilments/s)",
        ("server", "answered", "seconds", "fulfilments/s", "p50 ms", "p99 ms",
         "exact p99 / max ms", "statuses", "tickets issued", "oversold", "duplicate tickets",
         "invariants", "server CPU ms/payment", "load at start", "target"),
        rush_rows(pay_runs))]
    out.append(
        "\np50/p99: wrk's latency histogram as done() receives it (wrk corrects it for "
        "coordinated omission); exact: every request timed by the Lua script. Expected "
        "status: 303. server CPU: user + system time of gunicorn's processes during the run, "
        f"per request. load at start: the 1-minute load average ({os.cpu_count()} CPUs; "
        "wrk and redis-server run on the same machine). joins/s counts the waiting-list "
        "entries created, fulfilments/s the checkout sessions paid. No access log and no Huey "
        "consumer run; the tasks the requests enqueue stay queued.")
    out += [f"note: {n}" for n in notes]
    return "\n".join(out)


def main() -> None:
    if shutil.which("wrk") is None:
        print("\nHTTP rush benchmarks skipped: wrk not installed (`make bench` installs it).")
        return
    join_runs, pay_runs, notes = [], [], []

    def attempt(what: str, runs: list, folder: Path, seed, **kwargs) -> None:
        log(f"{what}…")
        try:
            runs.append(rush(folder, seed, **kwargs))
        except Exception as error:  # report it beside the other tables, don't lose them
            notes.append(f"{what} failed: {type(error).__name__}: {error}"[:2000])

    with tempfile.TemporaryDirectory(prefix="tickethub-http-rush-") as tmp:
        tmp = Path(tmp)
        (w1, t1), (w4, t2) = SINGLE, MULTI
        attempt(f"HTTP join burst, {w1} worker x {t1} threads (baseline)", join_runs,
                tmp / "join-single-sqlite", join_requests, workers=w1, threads=t1,
                redis_url=None)
        with redis_server() as redis_url:
            if redis_url is None:
                notes.append("redis-server is not installed: the multi-worker rows are missing "
                             "(WEB_CONCURRENCY > 1 needs REDIS_URL).")
            else:
                attempt(f"HTTP join burst, {w4} workers x {t2} threads + Redis", join_runs,
                        tmp / "join-multi-sqlite", join_requests, workers=w4, threads=t2,
                        redis_url=redis_url)
                with postgres_server() as postgres_url:
                    if postgres_url:
                        attempt(f"HTTP join burst, {w4} workers x {t2} threads + Redis on "
                                "PostgreSQL", join_runs, tmp / "join-multi-pg", join_requests,
                                workers=w4, threads=t2, redis_url=redis_url,
                                postgres_url=postgres_url)
                attempt(f"HTTP purchase rush, {w4} workers x {t2} threads + Redis", pay_runs,
                        tmp / "pay-multi-sqlite", pay_requests, workers=w4, threads=t2,
                        redis_url=redis_url)
    print(tables(join_runs, pay_runs, notes))


if __name__ == "__main__":
    main()
