"""On-sale rush over real HTTP: gunicorn + the migrated embedded SQLite database, driven by wrk.

1. Join burst: 10,000 distinct signed-in users each POST /events/<id>/join exactly once into
   one event of 1,000 tickets; once against one worker process (`--workers 1 --threads 8`,
   rate limits in memory: the baseline) and once against several (`--workers 4 --threads 2`,
   rate limits and Huey on a throwaway redis-server, as WEB_CONCURRENCY > 1 requires).
2. Purchase rush: 1,000 live offers with open local checkout sessions, all paid at once
   through the local payment page (POST /pay/local/<session_id>, action=pay).

Sessions and CSRF tokens are forged in-process with the server's SECRET_KEY (Flask's own
session serializer, Flask-WTF's generate_csrf), so every request is a distinct signed-in
user with a valid token and nothing but the measured POSTs reaches the server. wrk runs one
connection per wrk thread, so its Lua script can time every request itself (a monotonic
clock through LuaJIT's ffi) and send each user's request exactly once: each thread reads its
own slice of the users, parks its connection (``delay()``) once the slice is sent and stops
(``wrk.thread:stop()``) after the last response; ``done()`` adds up the status codes and
prints wrk's p50/p99 next to the exact ones. After each run the event is recounted from the
database with the app's models.

Every process started here (redis-server, gunicorn, wrk) listens on or talks to 127.0.0.1
only, is bounded in time and is stopped in a ``finally``. No Huey consumer runs: the tasks
the requests enqueue (offer deadlines, emails) are left queued, as a consumer would take
them off the request path anyway.

``python -m bench`` runs these after the in-process tables; ``python -m bench.http_rush``
runs only these.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
if not os.environ.get("INSTANCE_PATH"):
    # tasks.py opens its Huey store under INSTANCE_PATH at import: keep it out of instance/.
    _own_instance = tempfile.mkdtemp(prefix="tickethub-bench-")
    os.environ["INSTANCE_PATH"] = _own_instance
    atexit.register(shutil.rmtree, _own_instance, True)

from flask import g, session  # noqa: E402
from flask_wtf.csrf import generate_csrf  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from app import create_app  # noqa: E402
from blueprints.payments import checkout_urls  # noqa: E402
from extensions import db, login_manager  # noqa: E402
from models import (  # noqa: E402
    CheckoutSession, CheckoutStatus, EntryStatus, Event, Ticket, TicketStatus, User,
    WaitingListEntry,
)
from services import events as event_service  # noqa: E402
from services import purchases, queue  # noqa: E402
from tests.support.invariants import assert_queue_invariants  # noqa: E402
from tests.support.postgres import postgres_server  # noqa: E402
from tests.support.processes import stop_groups  # noqa: E402
from tests.support.redis_server import redis_server  # noqa: E402

# The virtualenv this runs in (make bench: .venv), which has gunicorn and flask.
BIN = Path(sys.executable).parent if (Path(sys.executable).parent / "gunicorn").exists() \
    else REPO / ".venv" / "bin"
SECRET_KEY = "bench-http-rush-secret"
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

WRK_MAX_SECONDS = 240  # wrk's -d: the hard bound of one run
START_TIMEOUT = 30.0

# Settings a server must not inherit from whoever runs the benchmark.
_APP_SETTINGS = (
    "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "INSTANCE_PATH", "PAYMENTS", "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "PLATFORM_FEE_PERCENT", "TICKET_OFFER_SECONDS",
    "QUEUE_JOIN_LIMIT", "STATUS_POLL_LIMIT", "LOGIN_LIMIT_PER_IP", "LOGIN_LIMIT_PER_EMAIL",
    "HOST", "PORT", "FLASK_APP", "WEB_CONCURRENCY", "BASE_URL", "MAIL_SERVER", "MAIL_PORT",
    "MAIL_USE_TLS", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_FROM", "GUNICORN_CMD_ARGS",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ one database + its app


@dataclass
class Site:
    """A private instance folder with a migrated SQLite database and an in-process app on it."""

    folder: Path
    env: dict = field(default_factory=dict)
    app: object = None
    postgres_url: str | None = None  # None: the embedded SQLite default

    @property
    def database_url(self) -> str:
        return self.postgres_url or f"sqlite:///{self.folder / 'tickethub.sqlite3'}"

    def server_env(self, redis_url: str | None, workers: int) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in _APP_SETTINGS}
        env.update({
            "FLASK_APP": "app:create_app",
            "INSTANCE_PATH": str(self.folder / "instance"),
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": SECRET_KEY,
            "PAYMENTS": "local",
            "PYTHONUNBUFFERED": "1",
        })
        if redis_url:
            env["REDIS_URL"] = redis_url
        if workers > 1:
            env["WEB_CONCURRENCY"] = str(workers)
        return env


def make_site(folder: Path, postgres_url: str | None = None) -> Site:
    """`flask db upgrade` (as `make run` does) on a fresh database, then an app bound to it."""
    folder.mkdir(parents=True, exist_ok=True)
    site = Site(folder, postgres_url=postgres_url)
    done = subprocess.run(
        [str(BIN / "flask"), "db", "upgrade"], cwd=REPO, env=site.server_env(None, 1),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{done.stdout}")
    site.app = create_app({
        "SQLALCHEMY_DATABASE_URI": site.database_url,
        "INSTANCE_PATH": str(folder / "instance"),
        "SECRET_KEY": SECRET_KEY,
        "PAYMENTS": "local",
        "HUEY_IMMEDIATE": False,  # enqueue (into the bench's own store), don't run inline
        "RATELIMIT_ENABLED": False,
    })
    return site


def add_users(count: int) -> tuple[int, list[int]]:
    """One organizer and ``count`` buyers, bulk inserted: (organizer id, buyer ids)."""
    now = datetime.now(timezone.utc)
    tag = os.urandom(4).hex()
    db.session.execute(insert(User), [
        {"name": f"Bench {i}", "email": f"b{i}-{tag}@bench.example", "password_hash": "x",
         "created_at": now} for i in range(count + 1)])
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
    this client address + User-Agent, so session protection leaves it alone) and the raw
    token Flask-WTF checks the form's signed one against.
    """
    serializer = app.session_interface.get_signing_serializer(app)
    credentials = {}
    for user_id in user_ids:
        with app.test_request_context("/", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                                      headers={"User-Agent": USER_AGENT}):
            session["_user_id"] = str(user_id)
            session["_fresh"] = True
            session["_id"] = login_manager._session_identifier_generator()
            g.pop(app.config["WTF_CSRF_FIELD_NAME"], None)  # generate_csrf caches it in g
            token = generate_csrf()
            credentials[user_id] = (serializer.dumps(dict(session)), token)
    return credentials


# ------------------------------------------------------------------------ the server


@dataclass
class Server:
    url: str
    pid: int


@contextmanager
def gunicorn(site: Site, *, workers: int, threads: int, redis_url: str | None):
    """Serve ``site`` on a free 127.0.0.1 port; yield it (URL, master pid); always stop it."""
    port = _free_port()
    log_path = site.folder / f"gunicorn-{workers}x{threads}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--workers", str(workers), "--threads", str(threads),
             "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "3", "--timeout", "60",
             "--no-control-socket", "app:create_app()"],
            cwd=REPO, env=site.server_env(redis_url, workers), stdin=subprocess.DEVNULL,
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n"
                                   + log_path.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn not ready in time:\n"
                                   + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        yield Server(url, process.pid)
    finally:
        stop_groups([process])


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of gunicorn's master and its live workers so far (Linux /proc)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    for each in [str(pid), *children]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def warm_up(url: str, path: str) -> None:
    """A second of GETs, so every worker has imported, connected and compiled templates."""
    subprocess.run(["wrk", "-t", "2", "-c", "8", "-d", "1s", url + path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


# ------------------------------------------------------------------------------ wrk

LUA = r"""
-- Generated by bench/http_rush.py: sends every request of requests-<thread>.txt once, on
-- this thread's one connection, and times each one.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC: one clock for every thread
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local DIR = "@DIR@"
local USER_AGENT = "@USER_AGENT@"

-- main state: every thread, for done()
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- thread state; the bench_* globals are what done() reads through thread:get()
local requests, total, sent = {}, 0, 0
local awaiting, probing, started, probe = false, false, 0, nil
local running = false -- wrk calls request() once before the run, to check its format

function init(args)
  for line in io.lines(DIR .. "/requests-" .. id .. ".txt") do
    local path, cookie, body = line:match("^(%S+)\t(%S+)\t(%S+)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Host"] = "127.0.0.1",
      ["Cookie"] = "session=" .. cookie,
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["User-Agent"] = USER_AGENT,
    }, body)
  end
  probe = wrk.format("GET", "/healthz", {["Host"] = "127.0.0.1"})
  total = #requests
  bench_counts, bench_latencies = {}, {}
  bench_sent, bench_received, bench_lost, bench_finished = 0, 0, 0, false
end

local function finish()
  bench_finished = true
  local marker = io.open(DIR .. "/done-" .. id, "w")
  marker:write("done")
  marker:close()
  wrk.thread:stop()
end

function delay()
  -- before each request: go at once while this thread has users left, else park
  running = true
  if sent < total then return 0 end
  return 3600000
end

function request()
  if not running then return probe end
  if awaiting then
    bench_lost = bench_lost + 1 -- the connection dropped before this request was answered
  end
  awaiting = true
  started = now_us()
  if sent >= total then
    probing = true -- nothing left to send: a GET whose answer just ends the thread
    return probe
  end
  probing = false
  sent = sent + 1
  bench_sent = sent
  if bench_first == nil then bench_first = started end
  return requests[sent]
end

function response(status, headers, body)
  local t = now_us()
  awaiting = false
  if not probing then
    bench_latencies[#bench_latencies + 1] = math.floor(t - started + 0.5)
    bench_counts[status] = (bench_counts[status] or 0) + 1
    bench_received = bench_received + 1
    bench_last = t
  end
  if bench_received + bench_lost >= total then finish() end
end

function done(summary, latency, requests)
  local counts, all, first, last = {}, {}, nil, nil
  local sent, received, lost, finished = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    sent = sent + thread:get("bench_sent")
    received = received + thread:get("bench_received")
    lost = lost + thread:get("bench_lost")
    if thread:get("bench_finished") then finished = finished + 1 end
    for code, n in pairs(thread:get("bench_counts")) do
      counts[code] = (counts[code] or 0) + n
    end
    for _, value in ipairs(thread:get("bench_latencies")) do all[#all + 1] = value end
    local f, l = thread:get("bench_first"), thread:get("bench_last")
    if f and (first == nil or f < first) then first = f end
    if l and (last == nil or l > last) then last = l end
  end
  table.sort(all)
  local function exact(p)
    if #all == 0 then return 0 end
    return all[math.max(1, math.ceil(p / 100 * #all))]
  end
  local codes = {}
  for code, n in pairs(counts) do codes[#codes + 1] = code .. "=" .. n end
  table.sort(codes)
  local e = summary.errors
  io.write(string.format("BENCH threads %d finished %d\n", #threads, finished))
  io.write(string.format("BENCH sent %d received %d lost %d\n", sent, received, lost))
  io.write(string.format("BENCH statuses %s\n", table.concat(codes, ",")))
  local elapsed = (first and last) and math.floor(last - first) or 0
  io.write(string.format("BENCH elapsed_us %d\n", elapsed))
  io.write(string.format("BENCH wrk_p50_us %d\n", latency:percentile(50)))
  io.write(string.format("BENCH wrk_p99_us %d\n", latency:percentile(99)))
  io.write(string.format("BENCH exact_p50_us %d\n", exact(50)))
  io.write(string.format("BENCH exact_p99_us %d\n", exact(99)))
  io.write(string.format("BENCH max_us %d\n", #all > 0 and all[#all] or 0))
  io.write(string.format("BENCH errors connect=%d,read=%d,write=%d,timeout=%d\n",
                         e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class WrkResult:
    sent: int = 0
    received: int = 0
    lost: int = 0  # sent, but the connection dropped before an answer
    threads_finished: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    p50_ms: float = 0.0  # wrk's latency histogram, as done() gets it
    p99_ms: float = 0.0
    exact_p50_ms: float = 0.0  # every request timed by the script itself
    exact_p99_ms: float = 0.0
    max_ms: float = 0.0
    errors: str = ""
    output: str = ""
    server_cpu_s: float = 0.0  # gunicorn's CPU time during the run
    load_before: float = 0.0  # the machine's 1-minute load average as the run started

    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s * 1e3 / self.received if self.received else 0.0

    def rate(self, count: int) -> float:
        return count / self.seconds if self.seconds else 0.0


def run_wrk(server: Server, requests: list[tuple[str, str, str]], workdir: Path,
            connections: int | None = None) -> WrkResult:
    """POST every (path, session cookie, form body) exactly once, ``connections`` at a time."""
    url = server.url
    workdir.mkdir(parents=True, exist_ok=True)
    connections = max(1, min(connections or CONNECTIONS, len(requests)))
    for k in range(connections):
        part = requests[k * len(requests) // connections:(k + 1) * len(requests) // connections]
        (workdir / f"requests-{k}.txt").write_text(
            "".join(f"{path}\t{cookie}\t{body}\n" for path, cookie, body in part))
    script = workdir / "rush.lua"
    script.write_text(LUA.replace("@DIR@", str(workdir)).replace("@USER_AGENT@", USER_AGENT))
    load_before = os.getloadavg()[0]
    cpu_before = server_cpu_seconds(server.pid)
    process = subprocess.Popen(
        ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{WRK_MAX_SECONDS}s",
         "--timeout", "60s", "-s", str(script), url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        # wrk always runs for its -d; once every thread has stopped, SIGINT ends it early.
        deadline = time.monotonic() + WRK_MAX_SECONDS + 5
        while process.poll() is None and time.monotonic() < deadline:
            if sum(1 for _ in workdir.glob("done-*")) >= connections:
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.02)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    result = _parse_wrk(output)
    result.server_cpu_s = server_cpu_seconds(server.pid) - cpu_before
    result.load_before = load_before
    return result


def _parse_wrk(output: str) -> WrkResult:
    result = WrkResult(output=output)
    values = {}
    for line in output.splitlines():
        if line.startswith("BENCH "):
            _, key, rest = line.split(" ", 2)
            values[key] = rest
    if "sent" in values:
        sent, received, lost = re.match(r"(\d+) received (\d+) lost (\d+)",
                                        values["sent"]).groups()
        result.sent, result.received, result.lost = int(sent), int(received), int(lost)
    if "threads" in values:
        result.threads_finished = int(values["threads"].split()[-1])
    for pair in filter(None, values.get("statuses", "").split(",")):
        code, count = pair.split("=")
        result.statuses[int(code)] = int(count)

    def us(key: str) -> float:  # microseconds in, milliseconds out
        return int(values.get(key, "0")) / 1e3

    result.seconds = us("elapsed_us") / 1e3
    result.p50_ms, result.p99_ms = us("wrk_p50_us"), us("wrk_p99_us")
    result.exact_p50_ms, result.exact_p99_ms = us("exact_p50_us"), us("exact_p99_us")
    result.max_ms = us("max_us")
    result.errors = values.get("errors", "")
    return result


def statuses_text(counts: Counter) -> str:
    return ", ".join(f"{code}: {n:,}" for code, n in sorted(counts.items())) or "none"


def socket_errors(result: WrkResult) -> str:
    bad = [pair for pair in result.errors.split(",") if pair and not pair.endswith("=0")]
    return " (socket errors " + ", ".join(bad) + ")" if bad else ""


# ------------------------------------------------------------------------ recounts


def invariants_text(event_id: int) -> str:
    try:
        assert_queue_invariants(event_id)
    except AssertionError as error:
        return f"FAILED: {error}"
    return "hold"


def recount_queue(event_id: int) -> dict:
    db.session.rollback()
    event = db.session.get(Event, event_id)
    by_status = dict(db.session.execute(
        select(WaitingListEntry.status, func.count()).where(WaitingListEntry.event_id == event_id)
        .group_by(WaitingListEntry.status)).all())
    sold = db.session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.event_id == event_id, Ticket.status.in_(TicketStatus.LIVE)))
    doubled_entries = db.session.scalar(select(func.count()).select_from(
        select(WaitingListEntry.user_id)
        .where(WaitingListEntry.event_id == event_id,
               WaitingListEntry.status.in_(EntryStatus.ACTIVE))
        .group_by(WaitingListEntry.user_id).having(func.count() > 1).subquery()))
    doubled_tickets = db.session.scalar(select(func.count()).select_from(
        select(Ticket.user_id)
        .where(Ticket.event_id == event_id, Ticket.status.in_(TicketStatus.LIVE))
        .group_by(Ticket.user_id).having(func.count() > 1).subquery()))
    offered = by_status.get(EntryStatus.OFFERED, 0)
    return {
        "capacity": event.total_tickets,
        "entries": sum(by_status.values()),
        "offered": offered,
        "waiting": by_status.get(EntryStatus.WAITING, 0),
        "sold": sold,
        "oversold": max(0, sold + offered - event.total_tickets),
        "duplicate_entries": doubled_entries,
        "duplicate_tickets": doubled_tickets,
        "paid_sessions": db.session.scalar(select(func.count()).select_from(CheckoutSession).where(
            CheckoutSession.event_id == event_id, CheckoutSession.status == CheckoutStatus.PAID)),
        "invariants": invariants_text(event_id),
    }


# ----------------------------------------------------------------------- benchmarks


def _load(site: Site, event_id: int, requests, *, workers: int, threads: int,
          redis_url: str | None) -> dict:
    """Serve ``site`` with gunicorn, send ``requests`` with wrk, then recount the event."""
    with gunicorn(site, workers=workers, threads=threads, redis_url=redis_url) as server:
        warm_up(server.url, f"/events/{event_id}")
        result = run_wrk(server, requests, site.folder / "wrk")
    with site.app.app_context():
        counts = recount_queue(event_id)
        db.session.remove()
        db.engine.dispose()
    return {"workers": workers, "threads": threads, "redis": bool(redis_url),
            "database": "postgresql" if site.postgres_url else "sqlite", "wrk": result,
            "counts": counts}


def join_burst(tmp: Path, *, workers: int, threads: int, redis_url: str | None,
               postgres_url: str | None = None) -> dict:
    site = make_site(tmp / f"join-{workers}x{threads}-{'pg' if postgres_url else 'sqlite'}",
                     postgres_url)
    with site.app.app_context():
        organizer, users = add_users(JOIN_USERS)
        event_id = add_event(organizer_id=organizer, capacity=JOIN_CAPACITY)
        start = time.perf_counter()
        credentials = forge_credentials(site.app, users)
        log(f"  forged {len(users):,} sessions + CSRF tokens in "
            f"{time.perf_counter() - start:.1f} s")
        db.session.remove()
        db.engine.dispose()
    path = f"/events/{event_id}/join"
    requests = [(path, credentials[u][0], "csrf_token=" + quote(credentials[u][1], safe=""))
                for u in users]
    return _load(site, event_id, requests, workers=workers, threads=threads,
                 redis_url=redis_url)


def purchase_rush(tmp: Path, *, workers: int, threads: int, redis_url: str | None) -> dict:
    site = make_site(tmp / f"pay-{workers}x{threads}")
    with site.app.app_context():
        organizer, users = add_users(RUSH_OFFERS)
        event_id = add_event(organizer_id=organizer, capacity=RUSH_OFFERS)
        start = time.perf_counter()
        now = datetime.now(timezone.utc)
        for user_id in users:
            entry = queue.join_queue(event_id=event_id, user_id=user_id, now=now)
            assert entry.status == EntryStatus.OFFERED, entry.status
        sessions = {}
        for user_id in users:
            with site.app.test_request_context("/"):
                page = purchases.start_checkout(event_id=event_id, user_id=user_id,
                                                now=datetime.now(timezone.utc),
                                                urls=checkout_urls())
            sessions[user_id] = page.rsplit("/", 1)[-1]
        log(f"  {len(users):,} offers + local checkout sessions in "
            f"{time.perf_counter() - start:.1f} s")
        credentials = forge_credentials(site.app, users)
        db.session.remove()
        db.engine.dispose()
    requests = [(f"/pay/local/{sessions[u]}", credentials[u][0],
                 "action=pay&csrf_token=" + quote(credentials[u][1], safe="")) for u in users]
    return _load(site, event_id, requests, workers=workers, threads=threads,
                 redis_url=redis_url)


# --------------------------------------------------------------------------- tables


def _server_name(run: dict) -> str:
    name = f"{run['workers']} worker{'s' if run['workers'] > 1 else ''} x {run['threads']} threads"
    name += " + Redis" if run["redis"] else " (baseline)"
    return name + (", PostgreSQL" if run.get("database") == "postgresql" else ", SQLite")


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def join_rows(runs: list[dict]) -> list[tuple]:
    # joins/s: waiting-list entries the run created, per second of the run
    baseline = next((r["wrk"].rate(r["counts"]["entries"]) for r in runs if r["workers"] == 1), 0)
    rows = []
    for run in runs:
        w, c = run["wrk"], run["counts"]
        rate = w.rate(c["entries"])
        ratio = f"{rate / baseline:.2f}x" if baseline else "-"
        rows.append((
            _server_name(run), f"{w.received:,} / {JOIN_USERS:,}", f"{w.seconds:.2f}",
            f"{rate:,.0f}", ratio, _ms(w.p50_ms), _ms(w.p99_ms),
            f"{_ms(w.exact_p99_ms)} / {_ms(w.max_ms)}",
            statuses_text(w.statuses) + socket_errors(w),
            f"{c['offered']:,} / {c['waiting']:,}", str(c["oversold"]),
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
            _server_name(run), f"{w.received:,} / {RUSH_OFFERS:,}", f"{w.seconds:.2f}",
            f"{rate:,.0f}", _ms(w.p50_ms), _ms(w.p99_ms),
            f"{_ms(w.exact_p99_ms)} / {_ms(w.max_ms)}",
            statuses_text(w.statuses) + socket_errors(w), f"{c['sold']:,}", str(c["oversold"]),
            str(c["duplicate_tickets"]), c["invariants"], f"{w.cpu_ms_per_request():.1f}",
            f"{w.load_before:.1f}", _mark(rate >= TARGET_FULFILMENTS_PER_S),
        ))
    return rows


def _table(title: str, header: tuple, rows: list) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(cells) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [f"\n{title}\n", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def tables(join_runs: list[dict], pay_runs: list[dict], notes: list[str]) -> str:
    out = []
    out.append(_table(
        f"Join burst over HTTP: {JOIN_USERS:,} signed-in users each POST /events/<id>/join once, "
        f"one event of {JOIN_CAPACITY:,} tickets (gunicorn; wrk with {CONNECTIONS} "
        f"connections; targets: >= {TARGET_JOINS_PER_S:,} joins/s, p99 < {TARGET_JOIN_P99_MS} ms)",
        ("server", "answered", "seconds", "joins/s", "vs 1 worker", "p50 ms", "p99 ms",
         "exact p99 / max ms", "statuses", "offered / waiting", "oversold",
         "duplicate active entries", "invariants", "server CPU ms/join", "load at start",
         "targets joins/s / p99"),
        join_rows(join_runs)))
    out.append(_table(
        f"Purchase rush over HTTP: {RUSH_OFFERS:,} live offers paid at once on the local payment "
        f"page (POST /pay/local/<session>, action=pay; wrk with {CONNECTIONS} connections; "
        f"target: >= {TARGET_FULFILMENTS_PER_S} fulfilments/s)",
        ("server", "answered", "seconds", "fulfilments/s", "p50 ms", "p99 ms",
         "exact p99 / max ms", "statuses", "tickets issued", "oversold", "duplicate tickets",
         "invariants", "server CPU ms/payment", "load at start", "target"),
        rush_rows(pay_runs)))
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


def _missing_tools() -> list[str]:
    return [tool for tool in ("wrk",) if shutil.which(tool) is None]


def main() -> None:
    missing = _missing_tools()
    if missing:
        print(f"\nHTTP rush benchmarks skipped: {', '.join(missing)} not installed "
              "(`make bench` installs it).")
        return
    join_runs, pay_runs, notes = [], [], []

    def attempt(what: str, runs: list, bench, tmp: Path, **kwargs) -> None:
        log(f"{what}…")
        try:
            runs.append(bench(tmp, **kwargs))
        except Exception as error:  # report it beside the other tables, don't lose them
            notes.append(f"{what} failed: {type(error).__name__}: {error}"[:2000])

    with tempfile.TemporaryDirectory(prefix="tickethub-http-rush-") as tmp:
        tmp = Path(tmp)
        attempt(f"HTTP join burst, {SINGLE[0]} worker x {SINGLE[1]} threads (baseline)",
                join_runs, join_burst, tmp, workers=SINGLE[0], threads=SINGLE[1], redis_url=None)
        with redis_server() as redis_url:
            if redis_url is None:
                notes.append("redis-server is not installed: the multi-worker rows are missing "
                             "(WEB_CONCURRENCY > 1 needs REDIS_URL).")
            else:
                attempt(f"HTTP join burst, {MULTI[0]} workers x {MULTI[1]} threads + Redis",
                        join_runs, join_burst, tmp, workers=MULTI[0], threads=MULTI[1],
                        redis_url=redis_url)
                with postgres_server() as postgres_url:
                    if postgres_url:
                        attempt(f"HTTP join burst, {MULTI[0]} workers x {MULTI[1]} threads "
                                "+ Redis on PostgreSQL", join_runs, join_burst, tmp,
                                workers=MULTI[0], threads=MULTI[1], redis_url=redis_url,
                                postgres_url=postgres_url)
                attempt(f"HTTP purchase rush, {MULTI[0]} workers x {MULTI[1]} threads + Redis",
                        pay_runs, purchase_rush, tmp, workers=MULTI[0], threads=MULTI[1],
                        redis_url=redis_url)
    print(tables(join_runs, pay_runs, notes))


if __name__ == "__main__":
    main()
