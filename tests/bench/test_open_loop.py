"""The open-loop harness of bench/open_loop.py, small: 50 waiters, 5 offer holders and 10
joiners for 8 seconds against a real gunicorn and Huey consumer. What it counts must be what
the server did: every poll due answered or counted as failed, every payment it saw accepted
a ticket, every release it saw accepted an offer released and passed on, every join an entry.
No timing is asserted: the figures are the benchmark's to report."""

from __future__ import annotations

import asyncio

import pytest

from bench.open_loop import Client, Settings, run_once, verdict
from models import CheckoutStatus
from tests.support.ports import free_port
from tests.support.postgres import create_database
from tests.support.required import not_installed

SMALL = Settings(waiters=50, seconds=8, joiners=10, capacity=10, live_offers=5,
                 ended_offers=6, connections=8, act_after=(0.2, 0.6), offer_seconds=60,
                 choices=(("pay", 0.6), ("release", 0.4)), drain_timeout=60)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_harness_counts_what_the_server_did(database, tmp_path, request):
    url = None
    if database == "postgresql":
        server = request.getfixturevalue("postgres_url")
        if server is None:
            not_installed("PostgreSQL")
        url = create_database(server)

    result = run_once(tmp_path, SMALL, database=database, postgres_url=url)

    run, counts = result["run"], result["counts"]
    polls = run.polls
    assert polls.sent > 0 and run.offers_seen >= SMALL.live_offers
    assert polls.sent == polls.answered + sum(polls.failures.values())
    assert len(polls.latencies) == polls.answered
    assert not polls.failures and set(polls.statuses) <= {200, 304}
    assert run.joins.statuses == {303: SMALL.joiners} and counts["joined"] == SMALL.joiners
    assert run.checkouts.sent == run.payments.sent + run.checkout_refused
    assert counts["sold_in_run"] == run.payments.statuses[303] == counts["paid_sessions"] > 0
    assert counts["sessions"][CheckoutStatus.PAID] == counts["paid_sessions"]
    assert set(counts["sessions"]) == {CheckoutStatus.PAID}  # nobody pays too late here
    assert counts["released"] == run.releases.statuses[303] > 0
    # Nobody lets an offer lapse here (and none could in a minute), so every offer made
    # during the run is a released ticket passed on to the next in line.
    assert counts["lapsed"] == 0
    assert counts["offers_made"] == counts["released"]
    assert counts["oversold"] == 0 and counts["invariants"] == "hold"
    assert result["drained_s"] is not None
    assert verdict(result)["invariants held"]


def test_a_request_nobody_answers_is_counted_as_failed_not_lost():
    async def ask() -> object:
        client = Client("127.0.0.1", free_port(), connections=2, timeout=5)
        try:
            # A worker that died on the error would leave this unanswered: a failure here too.
            return await asyncio.wait_for(
                client.request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 10)
        finally:
            await client.close()

    assert isinstance(asyncio.run(ask()), ConnectionRefusedError)
