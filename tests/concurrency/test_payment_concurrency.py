"""Stripe delivers the same payment several times at once: one ticket, one capture."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from extensions import db
from models import CheckoutSession, LocalPayment, Ticket
from services import payments, purchases, queue
from tests.conftest import make_event, make_user
from tests.support.invariants import assert_queue_invariants

pytestmark = pytest.mark.concurrency


def test_parallel_deliveries_of_one_payment_issue_one_ticket(any_db_app):
    now = datetime.now(timezone.utc)
    event = make_event(total_tickets=1, price_pence=1250)
    buyer = make_user()
    queue.join_queue(event_id=event.id, user_id=buyer.id, now=now)
    with any_db_app.test_request_context():
        purchases.start_checkout(event_id=event.id, user_id=buyer.id, now=now)
    session = CheckoutSession.query.one()
    delivery = payments.LocalGateway().authorize(session)
    db.session.commit()
    barrier = threading.Barrier(8)

    def deliver(n: int) -> str:
        with any_db_app.app_context():
            barrier.wait(timeout=30)
            try:
                # Each retry of one Stripe event arrives as a new event id.
                return purchases.handle_event(dict(delivery, id=f"evt_{n}"), now=now)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(deliver, range(8)))
    assert set(outcomes) <= {"handled", "duplicate"}
    db.session.expire_all()
    assert Ticket.query.count() == 1
    assert CheckoutSession.query.one().status == "paid"
    assert LocalPayment.query.one().status == "succeeded"
    assert assert_queue_invariants(event.id)["sold"] == 1
