"""Getting tickets in tests: through the site as a buyer does, or straight through the queue."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

from flask import current_app

from blueprints.payments import checkout_urls
from models import CheckoutSession, Ticket
from services import purchases, queue


def buy_through_the_site(client, event) -> tuple[int, str]:
    """The signed-in buyer presses "Buy ticket" (a free ticket: one click to the payment
    page), pays on the local payment page and opens their ticket. Returns the ticket's id
    and the door code shown on its page, as the holder would read it out (``K7QM4-XPR2D``)."""
    joined = client.post(f"/events/{event.id}/join")
    assert joined.status_code == 303
    payment_page = joined.headers["Location"]
    assert payment_page.startswith("/pay/local/")
    assert client.post(payment_page, data={"action": "pay"}).status_code == 303
    ticket_page = client.get("/tickets").get_data(as_text=True)
    ticket_id = int(re.search(r'href="/tickets/(\d+)"', ticket_page).group(1))
    shown = client.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    code = html.unescape(re.search(r'<code class="door-code">([^<]+)</code>', shown).group(1))
    return ticket_id, code


def buy_directly(event, buyer, *, at: datetime | None = None,
                 amount_pence: int | None = None) -> Ticket:
    """Join (offered at once) and pay, through the queue service: a valid ticket."""
    at = at or datetime.now(timezone.utc)
    entry = queue.join_queue(event_id=event.id, user_id=buyer.id, now=at)
    return queue.complete_purchase(
        entry_id=entry.id, user_id=buyer.id, payment_reference=f"pay-{entry.id}",
        amount_pence=event.price_pence if amount_pence is None else amount_pence, now=at,
    )


def open_checkout(event, buyer, *, at: datetime | None = None) -> CheckoutSession:
    """Join (offered at once) and press "Buy now", through the services: the open session."""
    at = at or datetime.now(timezone.utc)
    queue.join_queue(event_id=event.id, user_id=buyer.id, now=at)
    with current_app.test_request_context():
        purchases.start_checkout(event_id=event.id, user_id=buyer.id, now=at, urls=checkout_urls())
    return CheckoutSession.query.filter_by(user_id=buyer.id, event_id=event.id).one()
