"""Redis (the task broker and the shared rate-limit store) stops just before buyers pay, and
comes back empty: the purchases still complete, and every purchase email goes out once."""

from __future__ import annotations

import pytest

from tests.faults.checks import (
    OFFER_MADE,
    TICKET_PURCHASED,
    assert_emailed_once_each,
    assert_nothing_lost,
    emails_to,
)
from tests.support.seeding import publish_event
from tests.support.web_user import Answers, assert_no_server_errors, in_parallel, signed_in

pytestmark = pytest.mark.faults

BUYERS = 8


def test_purchases_while_redis_is_down_complete_and_are_emailed_once_it_is_back(
        start_server, database_url, redis, smtp):
    server = start_server(
        DATABASE_URL=database_url, REDIS_URL=redis.url, WEB_CONCURRENCY="2",
        TICKET_OFFER_SECONDS="600", OUTBOX_RELAY_SECONDS="0.5",
        LOGIN_LIMIT_PER_IP="1000 per minute", **smtp.env())
    event_id, buyers = publish_event(server, *["buyer"] * BUYERS, capacity=BUYERS)
    answers = Answers()
    users = signed_in(server.url, buyers, answers)
    emails = [user.email for user in users]
    # One click each to the payment page; a ticket held on joining sends no "offer made"
    # email (the buyer is looking at it), so the only emails are the purchases'.
    payment_pages = in_parallel(lambda user: user.reach_payment_page(event_id), users)

    redis.stop()
    paid = in_parallel(lambda pair: pair[0].pay(pair[1]), zip(users, payment_pages))
    assert [response.status_code for response in paid] == [303] * BUYERS
    assert all(len(user.ticket_ids()) == 1 for user in users), "every buyer holds a ticket"
    # Proof that the outage was real: with the broker away, no purchase email could leave.
    assert emails_to(smtp, TICKET_PURCHASED) == {}

    redis.start()  # empty: nothing queued before the outage survived it
    assert_emailed_once_each(server, smtp, emails, TICKET_PURCHASED)
    assert emails_to(smtp, OFFER_MADE) == {}
    assert_nothing_lost(server, event_id)
    assert_no_server_errors(answers)
