"""The purchase email is the ticket: its QR code inside the message (no sign-in, no fetching),
the short door code, a calendar link and the receipt. On SQLite and PostgreSQL."""

from __future__ import annotations

import email
import io
import re
from datetime import datetime, timezone

import pytest
import segno
from PIL import Image

from extensions import db
from models import Ticket
from services import notifications, queue, tickets, webhooks
from tests.support.buying import buy_directly, open_checkout
from tests.support.factories import make_event, make_user
from tests.support.mailbox import mailbox, text_of

NOW = datetime.now(timezone.utc)
QR_SCALE, QR_BORDER = 6, 2  # as tickets.qr_png draws it


@pytest.fixture
def app(any_db_app):
    return any_db_app


def purchase_email(app, ticket: Ticket) -> email.message.EmailMessage:
    return mailbox(app)[notifications.send("ticket_purchased", ticket.id)]  # as the worker runs


def modules_of(png: bytes) -> list[list[bool]]:
    """The dark and light modules of a QR code drawn as ``tickets.qr_png`` draws it."""
    image = Image.open(io.BytesIO(png)).convert("L")
    size = image.width // QR_SCALE - 2 * QR_BORDER
    middle = QR_SCALE // 2
    return [[image.getpixel(((col + QR_BORDER) * QR_SCALE + middle,
                             (row + QR_BORDER) * QR_SCALE + middle)) < 128
             for col in range(size)] for row in range(size)]


def encodes(png: bytes, text: str) -> bool:
    expected = segno.make(text, error="m").matrix
    return modules_of(png) == [[bool(bit) for bit in row] for row in expected]


def test_the_email_carries_the_qr_code_inline_and_the_door_code(app):
    event = make_event(name="Jazz Night", total_tickets=5)
    ann = make_user(name="Ann", email="ann@example.com")
    ticket = buy_directly(event, ann, at=NOW)

    message = purchase_email(app, ticket)

    html_part = message.get_body(("html",))
    cids = re.findall(r'<img src="cid:([^"]+)" alt="QR code for ticket #(\d+)"',
                      html_part.get_content())
    assert len(cids) == 1 and cids[0][1] == str(ticket.id)
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1
    qr = images[0]
    assert qr["Content-ID"] == f"<{cids[0][0]}>"
    assert qr.get_content_disposition() == "inline"
    # The picture is the ticket's own signed token, which the door accepts.
    token = tickets.token_for(ticket)
    assert encodes(qr.get_content(), token)
    assert not encodes(qr.get_content(), tickets.token_for(buy_directly(event, make_user())))
    assert tickets.read_token(token) == (ticket.id, event.id)

    grouped = f"{ticket.door_code[:5]}-{ticket.door_code[5:]}"
    plain = text_of(message)
    assert grouped in plain and grouped in html_part.get_content()
    # …and that code, typed at the door, lets Ann in.
    assert tickets.check_in(event_id=event.id, token=grouped, now=NOW).admitted


def test_the_email_has_the_receipt_and_a_calendar_link(app):
    event = make_event(name="Jazz Night", price_pence=1250, total_tickets=5)
    ann = make_user(name="Ann")
    session = open_checkout(event, ann, at=NOW)
    webhooks.pay_locally(session_id=session.id, user_id=ann.id, now=NOW)
    db.session.rollback()
    ticket = db.session.scalars(db.select(Ticket).filter_by(user_id=ann.id)).one()

    plain = text_of(purchase_email(app, ticket))

    assert f"Receipt TH-{ticket.id:06d}" in plain
    assert "Paid: £12.50" in plain
    assert ("Platform fee: £0.13, included in the price (the organizer receives £12.37)"
            in plain)
    assert f"Reference: {ticket.payment_reference}" in plain
    assert ticket.payment_reference.startswith("pi_local_")
    assert re.search(r"Date: \w{3} \d+ \w{3} \d{4}, \d\d:\d\d UTC", plain)
    assert f"{app.config['BASE_URL']}/events/{event.id}/calendar.ics" in plain
    assert f"{app.config['BASE_URL']}/tickets/{ticket.id}" in plain


def test_a_free_tickets_receipt_says_nothing_was_paid(app):
    event = make_event(price_pence=0, total_tickets=5)
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    ticket = queue.complete_purchase(entry_id=entry.id, user_id=entry.user_id, now=NOW,
                                     payment_reference=f"free-{entry.id}", amount_pence=0)
    plain = text_of(purchase_email(app, ticket))
    assert "Paid: nothing (a free ticket)" in plain and "Platform fee" not in plain
