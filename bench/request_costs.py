"""What one join and one local payment cost in process: the Flask test client against the
app configured as a server runs it (CSRF on, rate limits in memory, Huey on SQLite, local
payments), with sessions and CSRF tokens forged as bench/http_rush.py does, on SQLite and
(when installed) PostgreSQL. Steadier than the HTTP rush on a shared machine, as no server,
load generator or scheduler sits between the measurement and the code.

``python -m bench.request_costs`` prints the medians per request; ``--profile`` also prints
where the time goes (cProfile, sorted by cumulative and by own time).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime, timezone

from app import create_app
from bench.http_rush import USER_AGENT, add_event, add_users, forge_credentials, pay_requests
from bench.tables import table
from extensions import db
from tests.support.postgres import postgres_server

JOINS_OFFERED = 150  # the event's capacity: these joins are offered a ticket at once
JOINS_WAITING = 300  # the joins after them wait in line


def make_app(url: str):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-costs",
                      "PAYMENTS": "local", "TICKET_OFFER_SECONDS": 1800})
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


def post_all(app, requests, profile: cProfile.Profile | None) -> list[tuple[float, float]]:
    """POST each (path, cookie, body) once as its own user; the (wall, CPU) seconds each
    took. The CPU time is this thread's alone: steadier on a busy machine than the wall
    time, but without the PostgreSQL server's share."""
    client = app.test_client()
    samples = []
    for path, cookie, body in requests:
        client.set_cookie("session", cookie)
        start, cpu = time.perf_counter(), time.thread_time()
        with profile or nullcontext():
            response = client.post(path, data=body, headers={
                "User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"},
                environ_base={"REMOTE_ADDR": "127.0.0.1"})
        samples.append((time.perf_counter() - start, time.thread_time() - cpu))
        assert response.status_code == 303, (path, response.status_code,
                                             response.get_data(as_text=True)[:2000])
    return samples


def join_requests(app, count: int, event_id: int) -> list:
    from urllib.parse import quote
    _, users = add_users(count)
    credentials = forge_credentials(app, users)
    return [(f"/events/{event_id}/join", credentials[u][0],
             "csrf_token=" + quote(credentials[u][1], safe="")) for u in users]


def measure(url: str, profiles: dict | None) -> dict[str, tuple[float, float]]:
    app = make_app(url)
    with app.app_context():
        organizer, _ = add_users(0)
        event_id = add_event(organizer_id=organizer, capacity=JOINS_OFFERED)
        offered = join_requests(app, JOINS_OFFERED, event_id)
        waiting = join_requests(app, JOINS_WAITING, event_id)
        _, payments = pay_requests(app)
    results = {}
    for name, requests in (("join, offered at once (303 to pay)", offered),
                           ("join, waits in line (303)", waiting),
                           ("local payment (Pay, 303)", payments)):
        profile = cProfile.Profile() if profiles is not None else None
        warm, timed_part = requests[:20], requests[20:]
        post_all(app, warm, None)
        samples = post_all(app, timed_part, profile)
        results[name] = tuple(statistics.median(column) * 1000 for column in zip(*samples))
        if profile is not None:
            profiles[name] = profile
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return results


def print_profile(name: str, profile: cProfile.Profile) -> None:
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(key).print_stats(45)
        print(f"\n===== {name}: by {key}\n{out.getvalue()}")


def main() -> None:
    profiling = "--profile" in sys.argv
    rows = []
    with tempfile.TemporaryDirectory() as folder, postgres_server() as postgres_url:
        for database, url in (("sqlite", f"sqlite:///{folder}/costs.sqlite3"),
                              ("postgresql", postgres_url)):
            if url is None:
                continue
            profiles = {} if profiling else None
            started = datetime.now(timezone.utc)
            for name, (wall, cpu) in measure(url, profiles).items():
                rows.append((database, name, f"{wall:.2f}", f"{cpu:.2f}"))
            print(f"{database}: measured in {(datetime.now(timezone.utc) - started).seconds} s",
                  file=sys.stderr)
            for name, profile in (profiles or {}).items():
                print_profile(f"{database} {name}", profile)
    print(table("One request in process (test client, median ms; CPU: this process's alone)",
                ("database", "request", "wall ms", "CPU ms"), rows))


if __name__ == "__main__":
    main()
