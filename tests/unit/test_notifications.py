"""Emails: each transition tells the right person once, with working links; a failing mail
server never touches the purchase."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import tasks
from models import Ticket
from services import events, purchases, queue, queue_reads
from tests.support.factories import make_event, make_user
from tests.support.mailbox import mailbox, text_of
from tests.support.ports import free_port

NOW = datetime.now(timezone.utc)


def buy(entry):
    return queue.complete_purchase(entry_id=entry.id, user_id=entry.user_id,
                                   payment_reference=f"pay-{entry.id}", amount_pence=1250, now=NOW)


def test_an_offer_emails_the_buyer_with_its_deadline_and_a_link(app):
    event = make_event(total_tickets=1, name="Jazz Night")
    ann = make_user(name="Ann", email="ann@example.com")
    entry = queue.join_queue(event_id=event.id, user_id=ann.id, now=NOW)
    mails = mailbox(app)
    assert list(mails) == [f"offer_made-{entry.id}"]
    message = mails[f"offer_made-{entry.id}"]
    assert message["To"] == "Ann <ann@example.com>"
    assert message["Subject"] == "A ticket is held for you: Jazz Night"
    body = text_of(message)
    assert "held for you until" in body
    assert f"{app.config['BASE_URL']}/events/{event.id}" in body
    assert message.get_body(("html",)) is not None


def test_expiry_purchase_refund_and_cancellation_each_email_once(app):
    organizer = make_user()
    event = make_event(organizer, total_tickets=1, name="Gig")
    ann, bob, cat = make_user(name="Ann"), make_user(name="Bob"), make_user(name="Cat")
    first = queue.join_queue(event_id=event.id, user_id=ann.id, now=NOW)
    queue.join_queue(event_id=event.id, user_id=bob.id, now=NOW)
    queue.expire_offers(now=NOW + timedelta(minutes=31))  # Ann's lapses, Bob is offered
    bob_entry = queue_reads.latest_entry(event_id=event.id, user_id=bob.id)
    ticket = buy(bob_entry)
    queue.join_queue(event_id=event.id, user_id=cat.id, now=NOW + timedelta(minutes=32))
    purchases.refund_ticket(ticket_id=ticket.id, organizer_id=organizer.id,
                            now=NOW + timedelta(minutes=33))  # Cat is offered Bob's seat
    cat_entry = queue_reads.latest_entry(event_id=event.id, user_id=cat.id)
    cat_ticket = buy(cat_entry)
    events.cancel_event(event_id=event.id, organizer_id=organizer.id,
                        now=NOW + timedelta(minutes=34))
    mails = mailbox(app)
    assert sorted(mails) == sorted([
        f"offer_made-{first.id}", f"offer_expired-{first.id}",
        f"offer_made-{bob_entry.id}", f"ticket_purchased-{ticket.id}",
        f"refund_issued-{ticket.id}", f"offer_made-{cat_entry.id}",
        f"ticket_purchased-{cat_ticket.id}", f"event_cancelled_ticket-{cat_ticket.id}",
        # The organizer: the first sale, selling out (once: Cat's ticket sold it out again),
        # and the cancellation.
        f"first_sale-{ticket.id}", f"sold_out-{event.id}", f"cancellation_done-{event.id}",
    ])
    assert all(mails[f"{kind}-{object_id}"]["To"] == f"{organizer.name} <{organizer.email}>"
               for kind, object_id in (("first_sale", ticket.id), ("sold_out", event.id),
                                       ("cancellation_done", event.id)))
    assert "Bob" in mails[f"ticket_purchased-{ticket.id}"]["To"]
    assert f"/tickets/{ticket.id}" in text_of(mails[f"ticket_purchased-{ticket.id}"])
    assert "refunded in full" in text_of(mails[f"event_cancelled_ticket-{cat_ticket.id}"])


def test_waiters_of_a_cancelled_event_are_told(app):
    organizer = make_user()
    event = make_event(organizer, total_tickets=1)
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    waiter = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    events.cancel_event(event_id=event.id, organizer_id=organizer.id, now=NOW)
    assert "was cancelled" in text_of(mailbox(app)[f"event_cancelled-{waiter.id}"])


def test_sending_the_same_notification_again_does_not_duplicate_it(app):
    entry = queue.join_queue(event_id=make_event().id, user_id=make_user().id, now=NOW)
    tasks.send_notification.call_local("offer_made", entry.id)
    assert list(mailbox(app)) == [f"offer_made-{entry.id}"]


@pytest.mark.app_config(MAIL_SERVER="127.0.0.1", MAIL_USE_TLS=False)
def test_a_failing_mail_server_is_retried_and_never_undoes_the_purchase(app):
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    event = make_event(total_tickets=1)
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    ticket = buy(entry)  # its email fails to send
    assert Ticket.query.one().id == ticket.id and ticket.status == "valid"
    with pytest.raises(OSError):
        tasks.send_notification.call_local("ticket_purchased", ticket.id)
    assert tasks.send_notification.retries >= 3
