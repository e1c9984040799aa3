"""Payments raced: Stripe delivers one payment several times at once, and buyers press Pay
several times at once. Either way: one ticket, one payment, one capture, no 5xx."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import requests
from werkzeug.serving import make_server

from extensions import db
from models import CheckoutSession, LocalPayment, Ticket
from services import payments, webhooks
from tests.support.buying import open_checkout
from tests.support.factories import PASSWORD, make_event, make_user
from tests.support.invariants import assert_queue_invariants

pytestmark = pytest.mark.concurrency


def test_parallel_deliveries_of_one_payment_issue_one_ticket(any_db_app):
    now = datetime.now(timezone.utc)
    event = make_event(total_tickets=1, price_pence=1250)
    session = open_checkout(event, make_user(), at=now)
    delivery = payments.LocalGateway().authorize(session)
    db.session.commit()
    barrier = threading.Barrier(8)

    def deliver(n: int) -> str:
        with any_db_app.app_context():
            barrier.wait(timeout=30)
            try:
                # Each retry of one Stripe event arrives as a new event id.
                return webhooks.handle_event(dict(delivery, id=f"evt_{n}"), now=now)
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


# ------------------------------------------------------------ double-submitted pay forms


@contextmanager
def serving(app):
    """The app behind a real threaded HTTP server (one thread per request), as a base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def signed_in_with_an_open_payment_page(base: str, event, buyer) -> tuple[dict, str]:
    """Sign in over HTTP, join (offered at once) and press "Buy now": (cookies, page path)."""
    http = requests.Session()
    assert http.post(f"{base}/login", data={"email": buyer.email, "password": PASSWORD},
                     allow_redirects=False).status_code == 303
    assert http.post(f"{base}/events/{event.id}/join", allow_redirects=False).status_code == 303
    checkout = http.post(f"{base}/events/{event.id}/checkout", allow_redirects=False)
    assert checkout.status_code == 303 and checkout.headers["Location"].startswith("/pay/local/")
    return http.cookies.get_dict(), checkout.headers["Location"]


BUYERS, POSTS_EACH = 4, 8


def test_parallel_pay_posts_give_one_payment_and_a_normal_page_to_every_poster(any_db_app):
    event = make_event(total_tickets=BUYERS, price_pence=1250)
    buyers = [make_user() for _ in range(BUYERS)]
    with serving(any_db_app) as base:
        pages = [signed_in_with_an_open_payment_page(base, event, buyer) for buyer in buyers]
        posts = [page for page in pages for _ in range(POSTS_EACH)]
        barrier = threading.Barrier(len(posts))

        def press_pay(page):
            cookies, path = page
            barrier.wait(timeout=30)
            response = requests.post(f"{base}{path}", data={"action": "pay"}, cookies=cookies,
                                     allow_redirects=False, timeout=60)
            return response.status_code, response.headers.get("Location", "")

        with ThreadPoolExecutor(len(posts)) as pool:
            answers = list(pool.map(press_pay, posts))
        for (_, path), (status, location) in zip(posts, answers):
            session_id = path.rsplit("/", 1)[1]
            assert (status, location) == (303, f"/checkout/success?session_id={session_id}")
        cookies, path = pages[0]
        shown = requests.get(f"{base}/checkout/success?session_id={path.rsplit('/', 1)[1]}",
                             cookies=cookies, timeout=30).text
        assert "Payment complete" in shown

    db.session.expire_all()
    for buyer in buyers:
        ticket = Ticket.query.filter_by(user_id=buyer.id).one()
        session = CheckoutSession.query.filter_by(user_id=buyer.id).one()
        payment = LocalPayment.query.filter_by(checkout_session_id=session.id).one()
        assert (ticket.status, session.status, session.ticket_id) == ("valid", "paid", ticket.id)
        assert (payment.id, payment.status) == (ticket.payment_reference, "succeeded")
    assert LocalPayment.query.count() == BUYERS
    assert assert_queue_invariants(event.id)["sold"] == BUYERS
