"""Which server line should serve Ticket Hub (issue 12, point 5)? Measured, not guessed.

Each candidate line serves both bench/hello.py (the yardstick) and the app, one after the
other in the same run, on the same seeded line of 10,000 (bench/waiting_room.py's seed):
hello, then the unchanged status poll (304); hello, then the changed poll (200); hello, then
the anonymous event page. Every endpoint is reported as req/s and as a share of the hello
run just before it on THE SAME line. The absolute rate matters as much: it is what holds
more people. Lines are measured in rounds, the order reversed each round, because the
machine is shared and its speed drifts.

Candidates: gunicorn gthread (1 x 8 is ``make run`` today), gunicorn with gevent, and
granian in WSGI mode, each with one process and with two (two need ``REDIS_URL``: the app
refuses several processes without a shared rate-limit store, so they get a throwaway
redis-server, as ``WEB_CONCURRENCY`` > 1 does in production). A line whose server is not
installed (gevent and granian are not in requirements.txt) is reported as skipped.

``python -m bench.stacks`` runs only this comparison (SQLite and, when installed,
PostgreSQL); ``make bench`` runs it last.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.http_rush import USER_AGENT
from bench.tables import table
from bench.waiting_room import seed
from bench.wrk import WrkResult, get_for, warm_up
from tests.support.live_server import BIN, LiveServer, launch_server
from tests.support.ports import free_port
from tests.support.postgres import create_database, postgres_server
from tests.support.redis_server import running_redis

CONNECTIONS = 16  # as bench/waiting_room.py
SECONDS = 4
ROUNDS = 3
ENDPOINTS = ("status poll, unchanged (304)", "status poll, changed (200)",
             "event page, anonymous")


@dataclass(frozen=True)
class Stack:
    """One server line: ``kind`` is gthread, gevent or granian; ``workers`` processes, each
    with ``concurrency`` threads (gthread, granian's blocking threads) or greenlets (gevent's
    worker connections)."""

    name: str
    kind: str
    workers: int
    concurrency: int

    @property
    def needs_redis(self) -> bool:
        return self.workers > 1

    @property
    def module(self) -> str:
        """The Python package the line needs installed."""
        return {"gthread": "gunicorn", "gevent": "gevent", "granian": "granian"}[self.kind]

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def argv(self, target: str, port: int) -> list[str]:
        """The command serving ``target`` ("module:app", or "module:factory()" for a
        factory, as gunicorn spells it) on 127.0.0.1:``port``, without an access log."""
        if self.kind == "granian":
            factory = target.endswith("()")
            return [str(BIN / "granian"), "--interface", "wsgi",
                    "--workers", str(self.workers), "--blocking-threads", str(self.concurrency),
                    "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                    "--log-level", "warning", *(["--factory"] if factory else []),
                    target.removesuffix("()")]
        per_worker = (["--threads", str(self.concurrency)] if self.kind == "gthread" else
                      ["--worker-class", "gevent", "--worker-connections", str(self.concurrency)])
        return [str(BIN / "gunicorn"), "--workers", str(self.workers), *per_worker,
                "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "3",
                "--no-control-socket", target]


STACKS = (
    Stack("gunicorn gthread 1 x 8 (make run today)", "gthread", 1, 8),
    Stack("gunicorn gthread 2 x 4 + Redis", "gthread", 2, 4),
    Stack("gunicorn gevent 1 x 100", "gevent", 1, 100),
    Stack("gunicorn gevent 2 x 100 + Redis", "gevent", 2, 100),
    Stack("granian wsgi 1 x 8", "granian", 1, 8),
    Stack("granian wsgi 2 x 4 + Redis", "granian", 2, 4),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def serve(stack: Stack, folder: Path, target: str, **env) -> LiveServer:
    """``target`` on ``stack``'s line with the app's scrubbed environment (``env`` added),
    on the instance folder and database in ``folder``; ready once /healthz answers 200."""
    server = launch_server(folder, start=False, **env)
    server.port = free_port()
    try:
        server._spawn(stack.kind, stack.argv(target, server.port))
        server._wait_until_ready(False)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def serving(stack: Stack, folder: Path, app_env: dict):
    """hello and the app, both on ``stack``'s line; the app with a Redis of its own when the
    line has several processes. Yields (hello, app); everything is stopped afterwards."""
    with ExitStack() as stack_of:
        env = dict(app_env)
        if stack.needs_redis:
            redis = stack_of.enter_context(running_redis())
            if redis is None:
                raise RuntimeError("redis-server is not installed")
            env.update(REDIS_URL=redis.url, WEB_CONCURRENCY=str(stack.workers))
        hello = serve(stack, folder / "hello", "bench.hello:app")
        stack_of.callback(hello.stop)
        app = serve(stack, folder / "app", "app:create_app()", **env)
        stack_of.callback(app.stop)
        yield hello, app


def server_cpu_seconds(server: LiveServer, name: str) -> float:
    """User + system CPU so far of the server's process and its live workers (Linux /proc)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in server.process_tree(name):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def measure_round(stack: Stack, folder: Path, app_env: dict, seeded: dict) -> dict:
    """One round on one line: {endpoint: (hello result, endpoint result)}, each with the
    server's CPU seconds during the run (less sensitive than req/s to a busy machine)."""
    requests = {
        ENDPOINTS[0]: seeded["unchanged"],
        ENDPOINTS[1]: seeded["changed"],
        ENDPOINTS[2]: [(f"/events/{seeded['event_id']}", None, None)],
    }

    def wrk(server: LiveServer, asked: list) -> WrkResult:
        before = server_cpu_seconds(server, stack.kind)
        result = get_for(server.url, asked, folder / "wrk", seconds=SECONDS,
                         connections=CONNECTIONS, user_agent=USER_AGENT)
        result.server_cpu_s = server_cpu_seconds(server, stack.kind) - before
        return result

    pairs = {}
    with serving(stack, folder, app_env) as (hello, app):
        warm_up(hello.url)
        warm_up(f"{app.url}/events/{seeded['event_id']}")
        for endpoint, asked in requests.items():
            pairs[endpoint] = (wrk(hello, [("/", None, None)]), wrk(app, asked))
    return pairs


EXPECTED = {ENDPOINTS[0]: 304, ENDPOINTS[1]: 200, ENDPOINTS[2]: 200}


@dataclass
class Figures:
    """One line's figures for one endpoint over its rounds: req/s counting only the expected
    status, hello's req/s on the same line just before, and their ratio per round."""

    rates: list[float]
    hellos: list[float]
    shares: list[float]
    p99s: list[float]
    cpu_ms: list[float]  # the server's CPU per answered request
    hello_cpu_ms: list[float]
    loads: list[float]
    unexpected: int  # answers with another status (a 429, a 500...), over every round

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def hello(self) -> float:
        return statistics.median(self.hellos)

    @property
    def share(self) -> float:
        return statistics.median(self.shares)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)


def figures(pairs: list[tuple[WrkResult, WrkResult]], expected: int) -> Figures:
    """Figures from each round's (hello, endpoint) wrk results; hello counts its 200s."""
    out = Figures([], [], [], [], [], [], [], 0)
    for hello, result in pairs:
        rate, hello_rate = result.rate(result.statuses[expected]), hello.rate(hello.statuses[200])
        out.rates.append(rate)
        out.hellos.append(hello_rate)
        out.shares.append(rate / hello_rate if hello_rate else 0.0)
        out.p99s.append(result.p99_ms)
        out.cpu_ms.append(result.cpu_ms_per_request())
        out.hello_cpu_ms.append(hello.cpu_ms_per_request())
        out.loads.append(result.load_before)
        out.unexpected += sum(n for code, n in result.statuses.items() if code != expected)
    return out


def compare(stacks, run_round, rounds: int = ROUNDS) -> dict:
    """Run ``run_round(stack) -> {endpoint: (hello, result)}`` for every stack, ``rounds``
    times, reversing the order each round; {stack: {endpoint: Figures}}. A stack whose
    round fails is kept with the error instead of figures (the others still run)."""
    raw: dict = {stack: {} for stack in stacks}
    errors: dict = {}
    for k in range(rounds):
        for stack in (stacks if k % 2 == 0 else list(reversed(stacks))):
            if stack in errors:
                continue
            try:
                for endpoint, pair in run_round(stack).items():
                    raw[stack].setdefault(endpoint, []).append(pair)
            except Exception as error:  # a line that cannot serve is a finding, not a crash
                errors[stack] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
    return {stack: errors.get(stack) or {endpoint: figures(pairs, EXPECTED[endpoint])
                                          for endpoint, pairs in raw[stack].items()}
            for stack in stacks}


def _rates(values: list[float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in values)


def stacks_table(database: str, results: dict, skipped: list[Stack]) -> str:
    """Two tables: req/s and shares of hello per line, then the server's CPU per request
    (what a busy, shared machine disturbs least)."""
    rows, cpu_rows = [], []
    baseline = results.get(STACKS[0])
    base_cpu = ({e: baseline[e].cpu for e in ENDPOINTS}
                if baseline and not isinstance(baseline, str) else None)
    for stack, by_endpoint in results.items():
        if isinstance(by_endpoint, str):
            rows.append((stack.name, "failed", by_endpoint, *[""] * 8))
            cpu_rows.append((stack.name, "failed", *[""] * 4))
            continue
        row = [stack.name, _rates(by_endpoint[ENDPOINTS[0]].hellos)]
        cpu_row = [stack.name,
                   f"{statistics.median(by_endpoint[ENDPOINTS[0]].hello_cpu_ms):.2f}"]
        for endpoint in ENDPOINTS:
            f = by_endpoint[endpoint]
            row += [_rates(f.rates), f"{f.share:.0%}"]
            cpu_row.append(f"{f.cpu:.2f}")
        poll = by_endpoint[ENDPOINTS[0]]
        others = sum(f.unexpected for f in by_endpoint.values())
        loads = [x for f in by_endpoint.values() for x in f.loads]
        row += [f"{statistics.median(poll.p99s):,.1f}", f"{others:,}",
                f"{min(loads):.1f}-{max(loads):.1f}"]
        rows.append(tuple(row))
        cpu_row += [" / ".join(f"{base_cpu[e] / by_endpoint[e].cpu:.2f}x"
                               if base_cpu and by_endpoint[e].cpu else "-" for e in ENDPOINTS)]
        cpu_rows.append(tuple(cpu_row))
    rows += [(stack.name, "skipped", f"{stack.module} not installed", *[""] * 8)
             for stack in skipped]
    return table(
        f"Serving stacks, {database}: each line serves bench/hello.py and the app in turn; "
        f"req/s per round (counting only the expected status; {ROUNDS} rounds, order "
        f"reversed each round) and the median share of the hello run just before it on the "
        f"same line; wrk {CONNECTIONS} connections, {SECONDS} s each; a line of 10,000, polls "
        f"by 1,000 waiters at its back",
        ("line", "hello req/s", "304 poll req/s", "304 share", "200 poll req/s", "200 share",
         "event page req/s", "event share", "304 p99 ms", "other statuses", "load"), rows,
    ) + "\n" + table(
        f"Serving stacks, {database}: the server's CPU per answered request (user + system "
        f"of its processes, median of the rounds), and today's line's CPU per request over this "
        f"line's ({STACKS[0].name}; above 1x: this line spends less)",
        ("line", "hello CPU ms", "304 poll CPU ms", "200 poll CPU ms", "event page CPU ms",
         "today's CPU / this line's: 304 / 200 / event"), cpu_rows)


def compare_on(folder: Path, database: str, postgres_url: str | None) -> str:
    stacks = [s for s in STACKS if s.installed()]
    skipped = [s for s in STACKS if not s.installed()]
    app_env = {"PAYMENTS": "local", "TICKET_OFFER_SECONDS": None}
    if postgres_url:
        app_env["DATABASE_URL"] = postgres_url
    seeder = launch_server(folder / "app", start=False, **app_env)
    try:
        seeder.flask("db", "upgrade")
        with seeder.app_context(SECRET_KEY=seeder.env["SECRET_KEY"], PAYMENTS="local",
                                RATELIMIT_ENABLED=False) as app:
            seeded = seed(app)
    finally:
        seeder.stop()

    def run_round(stack: Stack) -> dict:
        log(f"  {database}: {stack.name} (load {os.getloadavg()[0]:.1f})")
        return measure_round(stack, folder, app_env, seeded)

    return stacks_table(database, compare(stacks, run_round), skipped)


def main() -> None:
    if shutil.which("wrk") is None:
        print("\nServing-stack comparison skipped: wrk not installed (`make bench` installs it).")
        return
    with tempfile.TemporaryDirectory(prefix="tickethub-stacks-") as tmp, \
            postgres_server() as pg_url:
        tmp = Path(tmp)
        databases = [("sqlite", None)]
        if pg_url:
            databases.append(("postgresql", create_database(pg_url)))
        for database, url in databases:
            log(f"serving stacks on {database}…")
            print(compare_on(tmp / database, database, url), flush=True)


if __name__ == "__main__":
    main()
