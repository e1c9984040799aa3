"""The waiting room over real HTTP (issue 12), every figure also as a share of "hello".

1. Yardstick: a trivial Flask app (bench/hello.py) on the same server line as ``make run``
   (gunicorn, 1 worker x 8 threads, scripts/run.sh) in the same run, measured with wrk right
   before each endpoint: the unchanged status poll (304: a waiter far back sends the ETag it
   was given), the changed poll (200 render), a join (distinct signed-in buyers, each POSTs
   the join form once), the event page and the home page anonymously, /availability direct.
2. People held in line: real queues of 1,000, 10,000 and 100,000 waiters on the move (offers
   ending every few seconds), each sampled waiter's own poll_seconds (queue_status +
   poll_seconds, in process), the poll rate the whole line demands, and how many people the
   measured unchanged-poll capacity holds with 30 % headroom.
3. The shared /availability fragment through nginx (deploy/nginx/tickethub.conf, as
   tests/support/nginx.py runs it) against the app directly.

Sessions, CSRF tokens and ETags are made in process with the server's key and database
(bench/http_rush.py's forge_credentials, the app's own event clock), so wrk sends nothing
but the measured requests. ``python -m bench.waiting_room`` runs only these tables.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from bench.http_rush import USER_AGENT, forge_credentials, join_requests
from bench.queues import NOW, build_queue, make_app
from bench.tables import table
from bench.wrk import WrkResult, get_for, post_each_once, warm_up
from extensions import db
from models import EntryStatus, WaitingListEntry
from services import queue_reads
from tests.support.live_server import BIN, LiveServer, launch_server
from tests.support.nginx import running_nginx
from tests.support.ports import free_port
from tests.support.postgres import create_database, postgres_server

THREADS = 8  # scripts/run.sh: gunicorn --workers 1 --threads 8 (make run's line)
CONNECTIONS = 16
SECONDS = 5  # each wrk run
LINE = 10_000  # waiters on the yardstick's event
FAR_BACK = 1_000  # the waiters whose cookies poll (each stays under STATUS_POLL_LIMIT)
JOINS = 1_000
LIVE_OFFERS = 20
ENDED_OFFERS = 50
PACE_SECONDS = 4.0  # an offer ends every 4 s: the queue's pace
QUEUE_LENGTHS = (1_000, 10_000, 100_000)
SAMPLES = 200
HEADROOM = 0.7
TARGET_PEOPLE = 20_000
TARGET_SHARES = {"status poll, unchanged (304)": 0.5, "status poll, changed (200)": 0.3,
                 "join (POST, 303)": 0.25}
TARGET_PROXY_RATIO = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def serve_hello(folder: Path) -> LiveServer:
    """bench/hello.py on gunicorn with the app's server line (no database, no consumer)."""
    server = launch_server(folder, start=False)
    server.port = free_port()
    # LiveServer.start serves app:create_app() only; the same command line otherwise.
    server._spawn("gunicorn", [
        str(BIN / "gunicorn"), "--workers", "1", "--threads", str(THREADS),
        "--bind", f"127.0.0.1:{server.port}", "--graceful-timeout", "3",
        "--no-control-socket", "bench.hello:app"])
    server._wait_until_ready(False)
    return server


def seed(app) -> dict:
    """A line of LINE on the move, the far-back waiters' cookies and ETags, and a second
    event with JOINS join POSTs ready (so joining never touches the polled event's clock)."""
    now = datetime.now(timezone.utc)
    event_id, last = build_queue(LINE, now=now, live_offers=LIVE_OFFERS,
                                 ended_offers=ENDED_OFFERS, pace_seconds=PACE_SECONDS)
    far = list(range(last - FAR_BACK + 1, last + 1))
    credentials = forge_credentials(app, far)
    clock = queue_reads.event_clock(event_id)
    path = f"/events/{event_id}/status"
    join_event, joins = join_requests(app, JOINS, capacity=100)
    return {
        "event_id": event_id, "join_event": join_event, "joins": joins,
        "unchanged": [(path, credentials[u][0], clock.fingerprint(user_id=u, now=now))
                      for u in far],
        "changed": [(path, credentials[u][0], None) for u in far],
    }


def _row(name: str, hello: WrkResult, result: WrkResult, rate: float, expected: int) -> dict:
    hello_rate = hello.rate(hello.statuses[200])
    return {"name": name, "rate": rate, "hello": hello_rate,
            "share": rate / hello_rate if hello_rate else 0.0, "result": result,
            "expected": expected}


def yardstick(folder: Path, database: str, postgres_url: str | None) -> dict:
    """Every endpoint against hello, alternating; then /availability through nginx."""
    env = {"PAYMENTS": "local", "TICKET_OFFER_SECONDS": None}
    if postgres_url:
        env["DATABASE_URL"] = postgres_url
    server = launch_server(folder / "app", start=False, **env)
    hello = None
    try:
        server.flask("db", "upgrade")
        with server.app_context(SECRET_KEY=server.env["SECRET_KEY"], PAYMENTS="local",
                                RATELIMIT_ENABLED=False) as app:
            seeded = seed(app)
        server.start(consumer=False, threads=THREADS, access_log=False)
        hello = serve_hello(folder / "hello")
        event = seeded["event_id"]
        warm_up(f"{server.url}/events/{event}")
        warm_up(hello.url)
        gets = [
            ("status poll, unchanged (304)", seeded["unchanged"], 304),
            ("status poll, changed (200)", seeded["changed"], 200),
            ("event page, anonymous", [(f"/events/{event}", None, None)], 200),
            ("home page, anonymous", [("/", None, None)], 200),
            ("/availability, direct", [(f"/events/{event}/availability", None, None)], 200),
        ]
        rows = []

        def measure_hello() -> WrkResult:
            return get_for(hello.url, [("/", None, None)], folder / "wrk", seconds=SECONDS,
                           connections=CONNECTIONS, user_agent=USER_AGENT)

        for name, requests, expected in gets:
            log(f"  {database}: {name}")
            before = measure_hello()
            result = get_for(server.url, requests, folder / "wrk", seconds=SECONDS,
                             connections=CONNECTIONS, user_agent=USER_AGENT)
            rows.append(_row(name, before, result, result.rate(result.statuses[expected]),
                             expected))
        log(f"  {database}: join")
        before = measure_hello()
        result = post_each_once(server.url, seeded["joins"], folder / "join",
                                connections=CONNECTIONS, user_agent=USER_AGENT)
        rows.append(_row("join (POST, 303)", before, result, result.rate(result.statuses[303]),
                         303))
        proxy = through_nginx(folder / "nginx", server, event)
    finally:
        server.stop()
        if hello is not None:
            hello.stop()
    return {"database": database, "rows": rows, "proxy": proxy}


def through_nginx(folder: Path, server: LiveServer, event_id: int) -> dict | None:
    """The shared fragment through nginx against the app directly, back to back."""
    path = [(f"/events/{event_id}/availability", None, None)]
    with running_nginx(folder, f"127.0.0.1:{server.port}") as nginx:
        if nginx is None:
            return None
        log("  /availability through nginx")
        warm_up(f"{nginx.url}/events/{event_id}/availability")
        direct = get_for(server.url, path, folder / "wrk", seconds=SECONDS,
                         connections=CONNECTIONS, user_agent=USER_AGENT)
        proxied = get_for(nginx.url, path, folder / "wrk", seconds=SECONDS,
                          connections=CONNECTIONS, user_agent=USER_AGENT)
    return {"direct": direct, "nginx": proxied}


# ------------------------------------------------------------------ people held in line


def line_demand(length: int, *, samples: int = SAMPLES, seed: int = 12) -> dict:
    """Build a line of ``length`` on the move (in the current app context), read the poll
    cadence of ``samples`` waiters spread evenly along it and of one offer holder, and add
    up the polls per second the whole line (waiters and offer holders) asks for."""
    event_id, last = build_queue(length, now=NOW, live_offers=LIVE_OFFERS,
                                 ended_offers=ENDED_OFFERS, pace_seconds=PACE_SECONDS)
    first_waiter = last - length + 1
    rng = random.Random(seed)
    picks = sorted({first_waiter + round(i * (length - 1) / (samples - 1)) for i in range(samples)})
    polls = []
    for user_id in picks:
        status = queue_reads.queue_status(event_id=event_id, user_id=user_id, now=NOW)
        assert status.status == "waiting", status.status
        polls.append(queue_reads.poll_seconds(status, rng=rng))
    holder = db.session.scalar(select(WaitingListEntry.user_id).where(
        WaitingListEntry.event_id == event_id, WaitingListEntry.status == EntryStatus.OFFERED
    ).limit(1))
    status = queue_reads.queue_status(event_id=event_id, user_id=holder, now=NOW)
    assert status.status == "offered", status.status
    holder_poll = queue_reads.poll_seconds(status, rng=rng)
    db.session.rollback()
    waiter_rate = length * statistics.fmean(1 / p for p in polls)
    demand = waiter_rate + LIVE_OFFERS / holder_poll
    # Any transition bumps the event's version, so a poll finds a change when at least one
    # offer ended since the last (Poisson at the queue's pace): the share answered 304.
    unchanged = statistics.fmean(math.exp(-p / PACE_SECONDS) for p in polls)
    return {"length": length, "people": length + LIVE_OFFERS, "demand": demand,
            "polls": polls, "unchanged_share": unchanged}


def people_held(url: str, folder: str) -> list[dict]:
    app = make_app(url, folder)
    lines = []
    with app.app_context():
        for length in QUEUE_LENGTHS:
            log(f"  line of {length:,}")
            lines.append(line_demand(length))
        db.session.remove()
        db.engine.dispose()
    return lines


# --------------------------------------------------------------------------- tables


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def yardstick_table(run: dict) -> str:
    rows = []
    for r in run["rows"]:
        w, target = r["result"], TARGET_SHARES.get(r["name"])
        rows.append((r["name"], f"{r['rate']:,.0f}", f"{r['hello']:,.0f}", f"{r['share']:.0%}",
                     f">= {target:.0%}: {'met' if r['share'] >= target else 'MISSED'}"
                     if target else "-",
                     w.statuses_text(), f"{w.p50_ms:,.1f}", f"{w.p99_ms:,.1f}",
                     f"{w.load_before:.1f}"))
    return table(
        f"Share of hello, {run['database']}: req/s of each endpoint (counting only its expected "
        f"status) against bench/hello.py measured just before it, both on gunicorn 1 worker x "
        f"{THREADS} threads (make run's line); wrk {CONNECTIONS} connections, {SECONDS} s each "
        f"(the join: {JOINS:,} distinct buyers, each POST once); a line of {LINE:,}, polls by "
        f"{FAR_BACK:,} waiters at its back",
        ("endpoint", "req/s", "hello req/s", "share of hello", "target", "statuses", "p50 ms",
         "p99 ms", "load at start"), rows)


def held_table(database: str, lines: list[dict], yard: dict) -> str:
    by_name = {r["name"]: r["rate"] for r in yard["rows"]}
    unchanged = by_name["status poll, unchanged (304)"]
    changed = by_name["status poll, changed (200)"]
    rows = []
    for line in lines:
        per_person = line["demand"] / line["people"]
        held = unchanged * HEADROOM / per_person
        mix = line["unchanged_share"]
        blended = 1 / (mix / unchanged + (1 - mix) / changed) if changed and unchanged else 0
        polls = sorted(line["polls"])
        rows.append((f"{line['length']:,}", f"{polls[0]}/{statistics.median(polls):g}/{polls[-1]}",
                     f"{line['demand']:,.1f}", f"{unchanged:,.0f}", f"{held:,.0f}",
                     f"{'met' if held >= TARGET_PEOPLE else 'MISSED'}",
                     f"{mix:.0%}", f"{blended * HEADROOM / per_person:,.0f}"))
    return table(
        f"People held in line, {database}: {SAMPLES} waiters sampled along each line (offers "
        f"ending one every {PACE_SECONDS:g} s, {LIVE_OFFERS} offers held), each one's own "
        f"poll_seconds; held = unchanged-poll capacity x {HEADROOM:.0%} / polls per second per "
        f"person (target >= {TARGET_PEOPLE:,}); load now {_load()}",
        ("waiters", "poll s min/median/max", "line demands polls/s", "304 capacity req/s",
         "people held", "target", "polls finding no change at this pace",
         "held at that 304/200 mix"), rows)


def proxy_table(runs: list[dict]) -> str:
    rows = []
    for run in runs:
        proxy = run["proxy"]
        if proxy is None:
            rows.append((run["database"], "nginx not installed", "", "", "", ""))
            continue
        direct, nginx = proxy["direct"], proxy["nginx"]
        d, n = direct.rate(direct.statuses[200]), nginx.rate(nginx.statuses[200])
        ratio = n / d if d else 0.0
        rows.append((run["database"], f"{d:,.0f}", f"{n:,.0f}", f"{ratio:.1f}x",
                     f">= {TARGET_PROXY_RATIO}x: "
                     f"{'met' if ratio >= TARGET_PROXY_RATIO else 'MISSED'}",
                     f"{direct.statuses_text()} / {nginx.statuses_text()}",
                     f"{direct.load_before:.1f} / {nginx.load_before:.1f}"))
    return table(
        f"The shared /availability fragment through nginx (deploy/nginx/tickethub.conf, one "
        f"nginx worker) against the app directly; wrk {CONNECTIONS} connections, {SECONDS} s "
        f"each, no cookies",
        ("database", "direct req/s", "nginx req/s", "nginx / direct", "target",
         "statuses direct / nginx", "load at start"), rows)


def main() -> None:
    if shutil.which("wrk") is None:
        print("\nWaiting-room benchmarks skipped: wrk not installed (`make bench` installs it).")
        return
    out = []
    runs = []
    with tempfile.TemporaryDirectory(prefix="tickethub-waiting-room-") as tmp, \
            postgres_server() as pg_url:
        tmp = Path(tmp)
        databases = [("sqlite", None, lambda: f"sqlite:///{tmp}/line.sqlite3")]
        if pg_url:
            databases.append(("postgresql", create_database(pg_url), lambda: pg_url))
        for database, server_url, line_url in databases:
            log(f"waiting room on {database}…")
            yard = yardstick(tmp / database, database, server_url)
            runs.append(yard)
            out.append(yardstick_table(yard))
            log(f"people held in line on {database}…")
            out.append(held_table(database, people_held(line_url(), str(tmp)), yard))
    out.append(proxy_table(runs))
    print("\n".join(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
