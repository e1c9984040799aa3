"""The serving-stack comparison's own parts (``bench/stacks.py``): every candidate line really
serves both the yardstick and the app with the processes it claims (several only with a
shared Redis), and its figures are shares of the hello run on the same line, in rounds whose
order alternates, with a line that cannot serve reported instead of stopping the others."""

from __future__ import annotations

import urllib.request
from collections import Counter

import pytest

from bench.stacks import ENDPOINTS, STACKS, compare, serving, stacks_table
from bench.wrk import WrkResult
from tests.support.live_server import launch_server
from tests.support.postgres import create_database, drop_database
from tests.support.required import not_installed


@pytest.fixture(params=["sqlite", "postgresql"])
def app_env(request):
    """The app's environment on each database (gevent and psycopg must get along)."""
    if request.param == "sqlite":
        yield {"PAYMENTS": "local"}
        return
    server = request.getfixturevalue("postgres_url")
    if server is None:
        not_installed("PostgreSQL")
    url = create_database(server)
    yield {"PAYMENTS": "local", "DATABASE_URL": url}
    drop_database(url)


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.name)
def test_each_line_serves_hello_and_the_app_in_its_processes(stack, app_env, tmp_path):
    if not stack.installed():
        pytest.skip(f"{stack.module} is not installed (bench/stacks.py reports it skipped)")
    launch_server(tmp_path / "app", start=False, **app_env).flask("db", "upgrade")

    with serving(stack, tmp_path, app_env) as (hello, app):
        with urllib.request.urlopen(hello.url + "/") as answer:
            assert answer.read() == b"hello"
        with urllib.request.urlopen(app.url + "/") as answer:
            assert answer.status == 200 and b"<html" in answer.read()
        status, health = app.health()
        assert (status, health["db"]) == (200, "ok")
        # The server's own process and one per worker, for the yardstick and the app alike.
        assert len(hello.process_tree(stack.kind)) == stack.workers + 1
        assert len(app.process_tree(stack.kind)) == stack.workers + 1
        assert ("REDIS_URL" in app.env) == (stack.workers > 1)


def _wrk(statuses: dict, cpu_ms: float, seconds: float = 2.0) -> WrkResult:
    answered = sum(statuses.values())
    return WrkResult(statuses=Counter(statuses), seconds=seconds, received=answered,
                     server_cpu_s=answered * cpu_ms / 1e3, p99_ms=10.0, load_before=1.0)


def test_figures_are_shares_of_the_hello_run_just_before_on_the_same_line():
    fast, slow, broken = STACKS[0], STACKS[1], STACKS[2]
    calls = []
    hello_rounds = {fast: iter([1000, 2000]), slow: iter([500, 500])}

    def run_round(stack):
        calls.append(stack)
        if stack is broken:
            raise RuntimeError("gevent exited with 3 while starting\nits log…")
        hello = next(hello_rounds[stack])
        # The endpoint serves half of hello's rate in each round, plus a few 429s; on the
        # slow line each request costs twice the CPU.
        cpu = 4.0 if stack is slow else 2.0
        return {endpoint: (_wrk({200: hello * 2}, cpu / 4),
                           _wrk({304 if "304" in endpoint else 200: hello, 429: 4}, cpu))
                for endpoint in ENDPOINTS}

    results = compare([fast, slow, broken], run_round, rounds=2)

    # Round two runs in reverse order; a line that failed is not tried again.
    assert calls == [fast, slow, broken, slow, fast]
    poll = results[fast][ENDPOINTS[0]]
    assert poll.hellos == [1000, 2000] and poll.rates == [500, 1000]
    assert poll.shares == [0.5, 0.5] and poll.rate == 750 and poll.unexpected == 8
    assert results[slow][ENDPOINTS[2]].share == 0.5
    assert (results[fast][ENDPOINTS[1]].cpu, results[slow][ENDPOINTS[1]].cpu) == (2.0, 4.0)
    assert results[broken] == "RuntimeError: gevent exited with 3 while starting"

    printed = stacks_table("sqlite", results, skipped=[STACKS[4]])
    rows = [[cell.strip() for cell in line.strip("| ").split("|")]
            for line in printed.splitlines() if line.startswith("| ")]
    rates, cpus = ([row for row in rows if row[0] == slow.name][k] for k in (0, 1))
    assert rates[1:4] == ["500 / 500", "250 / 250", "50%"]  # hello, 304 poll, its share
    assert cpus[1:] == ["1.00", "4.00", "4.00", "4.00", "0.50x / 0.50x / 0.50x"]
    assert [row[1:3] for row in rows if row[0] == broken.name] == [
        ["failed", "RuntimeError: gevent exited with 3 while starting"], ["failed"]]
    assert [row[1:3] for row in rows if row[0] == STACKS[4].name] == [
        ["skipped", "granian not installed"]]
