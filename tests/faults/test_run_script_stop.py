"""``make run``'s app (``scripts/run.sh`` on the embedded defaults) is stopped while its
consumer is sending an email, as an operator or a service manager stops it, then started
again: the email arrives exactly once, no follow-up is left undone, and the stop leaves no
process behind."""

from __future__ import annotations

import signal

import pytest

from tests.faults.checks import OFFER_MADE, assert_emailed_once_each, assert_nothing_lost
from tests.support.live_server import alive, launch_server, wait_for
from tests.support.seeding import publish_event
from tests.support.web_user import Answers, assert_no_server_errors, signed_in

pytestmark = pytest.mark.faults


# TERM: systemd, docker stop, kill. INT: Ctrl-C in the terminal running make run.
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_stopping_make_run_with_a_send_in_flight_delivers_it_once(tmp_path, smtp, stop_signal):
    # The embedded defaults: SQLite and Huey's SQLite queue under INSTANCE_PATH, no Redis.
    # The outbox lease is left at its default (minutes), so a send dropped by the stop would
    # not be retried within this test: it must finish before the consumer exits.
    server = launch_server(tmp_path / "app", start=False, DATABASE_URL=None,
                           TICKET_OFFER_SECONDS="600", **smtp.env())
    try:
        server.start_run_script()
        event_id, people = publish_event(server, "holder", "buyer")  # one ticket
        answers = Answers()
        holder, user = signed_in(server.url, people, answers)
        holder.join(event_id)  # held at once (no email: the holder is looking at it)
        user.join(event_id)  # waits

        smtp.hold_seconds = 3
        assert holder.post(f"/events/{event_id}/release").status_code == 303
        smtp.wait_for_held()  # the ticket passed on: an offer email to the buyer sets off
        processes = server.process_tree("run.sh")
        assert len(processes) >= 3, "run.sh, the consumer and gunicorn"
        server.signal_run_script(stop_signal)
        wait_for(lambda: alive(processes), until=lambda left: left == [], timeout=60,
                 what="run.sh and everything it started stopped")
        smtp.hold_seconds = 0

        server.start_run_script()
        assert_emailed_once_each(server, smtp, [user.email], OFFER_MADE)
        assert_nothing_lost(server, event_id)
        assert_no_server_errors(answers)
    finally:
        server.stop()
