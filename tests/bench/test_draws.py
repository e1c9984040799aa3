"""The draw benchmark's own parts (``bench/draws.py``), small, on SQLite and PostgreSQL: the
lobby it builds is one the queue accepts, and a draw of it is reported as checked."""

from __future__ import annotations

from bench import draws as draw_bench
from services import queue_reads
from tests.support.invariants import assert_queue_invariants


def test_a_built_lobby_is_a_real_lobby_and_its_draw_checks_out(any_db_app, monkeypatch):
    event_id = draw_bench.build_lobby(30, capacity=5)
    counts = assert_queue_invariants(event_id)
    assert (counts["waiting"], counts["offered"]) == (0, 0)
    clock = queue_reads.event_clock(event_id)
    assert clock.draw_at == draw_bench.ON_SALE

    monkeypatch.setattr(draw_bench, "LOBBY_SIZES", (40,))
    rows = []
    draw_bench.bench_draw("sqlite", rows)
    (_, size, _, _, offered, checks), = rows
    assert (size, offered, checks) == ("40", "40", "hold")  # 500 tickets: everyone is offered
