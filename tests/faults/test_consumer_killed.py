"""The task consumer is killed (SIGKILL, as a crash or the OOM killer would) while it is
sending an email, stays down while buyers pay, and is started again: every follow-up is
acted on, and every email arrives exactly once."""

from __future__ import annotations

import pytest

from tests.faults.checks import (
    OFFER_MADE,
    TICKET_PURCHASED,
    assert_emailed_once_each,
    assert_nothing_lost,
    emails_to,
)
from tests.support.live_server import wait_for
from tests.support.seeding import publish_event
from tests.support.web_user import Answers, assert_no_server_errors, in_parallel, signed_in

pytestmark = pytest.mark.faults

BUYERS = 4
# A killed worker's claim on its row lapses after this; then the relay hands the row over
# again. Longer than any send here takes (a held one included), so no send is doubled.
LEASE_SECONDS = "4"


def test_a_consumer_killed_mid_send_loses_and_doubles_nothing(start_server, smtp):
    server = start_server(
        TICKET_OFFER_SECONDS="600", OUTBOX_RELAY_SECONDS="0.5",
        OUTBOX_LEASE_SECONDS=LEASE_SECONDS, LOGIN_LIMIT_PER_IP="1000 per minute", **smtp.env())
    event_id, buyers = publish_event(server, *["buyer"] * BUYERS, capacity=BUYERS)
    answers = Answers()
    users = signed_in(server.url, buyers, answers)
    emails = [user.email for user in users]

    # One click each to the payment page (no "offer made" email: the buyers are looking).
    payment_pages = in_parallel(lambda user: user.reach_payment_page(event_id), users)
    (first, first_page), *rest = zip(users, payment_pages)

    smtp.hold_seconds = 2  # the first buyer's ticket email is held in flight at end of DATA
    assert first.pay(first_page).status_code == 303
    smtp.wait_for_held()
    server.stop_consumer(kill=True)
    wait_for(lambda: smtp.abandoned, timeout=10, what="the cut-off send noticed")
    smtp.hold_seconds = 0

    # While no consumer runs, the others pay: their ticket emails wait in the outbox.
    paid = in_parallel(lambda pair: pair[0].pay(pair[1]), rest)
    assert [response.status_code for response in paid] == [303] * len(rest)
    assert sum(emails_to(smtp, TICKET_PURCHASED).values()) < BUYERS, \
        "no consumer, yet every ticket email was sent"

    server.start_consumer()
    assert_emailed_once_each(server, smtp, emails, TICKET_PURCHASED)
    assert emails_to(smtp, OFFER_MADE) == {}
    assert_nothing_lost(server, event_id)
    assert_no_server_errors(answers)
