"""Every gunicorn worker is killed (SIGKILL) while buyers' Pay presses are being handled, so
some payments are authorised and never fulfilled by the request that authorised them. The
periodic sweep finishes each of them as the webhook would: captured with a valid ticket, or
cancelled with none. No authorisation is left hanging."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from extensions import db
from models import CheckoutSession, CheckoutStatus, LocalPayment, Ticket, TicketStatus, User
from tests.faults.checks import assert_nothing_lost, wait_until_outbox_done
from tests.support.live_server import wait_for
from tests.support.seeding import publish_event
from tests.support.web_user import Answers, assert_no_server_errors, in_parallel, signed_in

pytestmark = pytest.mark.faults

BUYERS = 16


def authorised_unsettled(server) -> list[tuple[str, str, str]]:
    """(session, its status, the payment's status) for every authorised payment whose
    session is not settled (open, or closed unpaid)."""
    with server.app_context():
        rows = db.session.execute(
            select(CheckoutSession.id, CheckoutSession.status, LocalPayment.status)
            .join(LocalPayment, LocalPayment.checkout_session_id == CheckoutSession.id)
            .where(CheckoutSession.status.in_((CheckoutStatus.OPEN, CheckoutStatus.EXPIRED))))
        return [tuple(row) for row in rows]


def payments_authorised() -> int:
    db.session.rollback()  # a fresh snapshot each time
    return db.session.scalar(select(func.count()).select_from(LocalPayment))


def test_payments_cut_short_by_a_killed_worker_are_settled_by_the_sweep(
        start_server, database_url, redis):
    server = start_server(
        DATABASE_URL=database_url, REDIS_URL=redis.url, WEB_CONCURRENCY="2",
        TICKET_OFFER_SECONDS="600", PAYMENT_SETTLE_AFTER_SECONDS="2",
        LOGIN_LIMIT_PER_IP="1000 per minute")
    # One event of one ticket per buyer: each Pay is the sale that sells its event out, the
    # case the local page pays the way Stripe's payments go (authorise, then the webhook),
    # which a kill can cut short. (A plain sale is paid in one transaction: nothing is left
    # half done when its worker dies.)
    seeded = [publish_event(server, "buyer", capacity=1) for _ in range(BUYERS)]
    event_ids = [event_id for event_id, _ in seeded]
    buyers = [buyer for _, (buyer,) in seeded]
    answers = Answers()
    users = signed_in(server.url, buyers, answers)
    payment_pages = in_parallel(lambda pair: pair[0].reach_payment_page(pair[1]),
                                list(zip(users, event_ids)))

    # Everyone presses Pay at once; as soon as the first payment is authorised, every worker
    # is killed mid-request. A buyer whose request is cut off gets no answer, and waits.
    workers = server.web_workers()
    assert len(workers) == 2
    presses = threading.Thread(target=in_parallel, args=(
        lambda pair: pair[0].pay(pair[1], retries_503=0), list(zip(users, payment_pages))))
    with server.app_context():
        presses.start()
        wait_for(payments_authorised, timeout=30, every=0.005, what="a payment authorised")
        for pid in workers:
            server.kill_web_worker(pid)
    presses.join(timeout=120)
    assert authorised_unsettled(server), "the kill left no payment half done: nothing tested"

    # The sweep (every minute, and at the consumer's start) finishes what the workers could not.
    wait_for(lambda: authorised_unsettled(server), until=lambda rows: rows == [], timeout=90,
             every=1, what="every authorised payment settled")
    with server.app_context():
        payments = db.session.execute(
            select(LocalPayment.id, LocalPayment.status, CheckoutSession.status, User.email)
            .join(CheckoutSession, CheckoutSession.id == LocalPayment.checkout_session_id)
            .join(User, User.id == CheckoutSession.user_id)).all()
        live = dict(db.session.execute(
            select(Ticket.payment_reference, User.email).join(User, User.id == Ticket.user_id)
            .where(Ticket.event_id.in_(event_ids), Ticket.status.in_(TicketStatus.LIVE))).all())
    assert payments, "no payment was authorised"
    for payment_id, payment_status, session_status, email in payments:
        if payment_status == "succeeded":
            assert session_status == CheckoutStatus.PAID
            assert live.get(payment_id) == email, f"{payment_id} captured without a ticket"
        else:
            assert (payment_status, session_status) == ("canceled", CheckoutStatus.NOT_CHARGED)
            assert payment_id not in live, f"{payment_id} cancelled yet its ticket is valid"
    assert len(live) == sum(status == "succeeded" for _, status, _, _ in payments)
    # What the buyers see: a ticket on "My tickets" exactly when their money was taken.
    paid = {email for _, status, _, email in payments if status == "succeeded"}
    assert {user.email for user in users if user.ticket_ids()} == paid
    # The sweep's purchases set off emails: three per event (the buyer's, the organizer's
    # first sale and sold out), 48 for the consumer to send.
    wait_until_outbox_done(server, timeout=90)
    for event_id in event_ids:
        assert_nothing_lost(server, event_id)
    assert_no_server_errors(answers)
