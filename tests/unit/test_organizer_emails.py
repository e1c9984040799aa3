"""Organizers hear about their events: the first sale, selling out (once), the cancellation
done, and, when they ask for it, a daily sales summary written through the outbox so it is
sent exactly once a day however the hourly task runs. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

import tasks
from extensions import db
from models import OutboxItem, SalesSummary
from services import events, notifications, queue, summaries
from tests.support.buying import buy_directly
from tests.support.factories import make_event, make_user, utc
from tests.support.mailbox import mailbox, text_of

T0 = utc(2030, 1, 1, 12, 0)


@pytest.fixture
def app(any_db_app):
    return any_db_app


def organizer_mail(app) -> dict[str, str]:
    """Kind → plain text of the organizer emails sent so far."""
    kinds = ("first_sale", "sold_out", "cancellation_done", "daily_summary")
    return {key: text_of(message) for key, message in mailbox(app).items()
            if key.startswith(kinds)}


@pytest.fixture
def olive():
    return make_user(name="Olive", email="olive@example.com")


def test_the_first_sale_and_selling_out_are_each_told_once(app, olive):
    event = make_event(olive, now=T0, name="Indie Night", total_tickets=2, price_pence=1250,
                       starts_at=T0 + timedelta(days=30))
    ann = buy_directly(event, make_user(name="Ann"), at=T0)
    assert list(organizer_mail(app)) == [f"first_sale-{ann.id}"]
    first = mailbox(app)[f"first_sale-{ann.id}"]
    assert first["To"] == "Olive <olive@example.com>"
    assert first["Subject"] == "Your first ticket sold: Indie Night"
    assert "Ann bought it for £12.50" in text_of(first)
    assert "So far: 1 ticket sold of 2." in text_of(first)

    bob = buy_directly(event, make_user(name="Bob"), at=T0 + timedelta(hours=1))
    sold_out = organizer_mail(app)[f"sold_out-{event.id}"]
    assert "Indie Night" in sold_out and "all 2 tickets are sold, for £25.00 in all" in sold_out

    # A ticket comes back and sells again: sold out again, but Olive is not told twice.
    queue.refund_ticket_seat(ticket_id=bob.id, now=T0 + timedelta(hours=2))
    buy_directly(event, make_user(name="Cat"), at=T0 + timedelta(hours=3))
    assert sorted(organizer_mail(app)) == sorted([f"first_sale-{ann.id}",
                                                  f"sold_out-{event.id}"])
    kinds = [row.args[0] for row in db.session.scalars(
        select(OutboxItem).where(OutboxItem.kind == "send_notification"))]
    assert kinds.count("sold_out") == 1 and kinds.count("first_sale") == 1


def test_a_one_ticket_event_sells_out_in_words_that_fit(app, olive):
    event = make_event(olive, now=T0, total_tickets=1, starts_at=T0 + timedelta(days=30))
    buy_directly(event, make_user(), at=T0)
    assert "is sold out: its one ticket is sold" in organizer_mail(app)[f"sold_out-{event.id}"]


@pytest.mark.parametrize("sold, words", [
    (0, "No tickets had been sold, so nobody needed a refund."),
    (1, "1 ticket is refunded in full (£12.50); each buyer has been emailed."),
    (2, "2 tickets are refunded in full (£25.00); each buyer has been emailed."),
])
def test_the_organizer_is_told_when_the_cancellation_is_done(app, olive, sold, words):
    event = make_event(olive, now=T0, name="Indie Night", starts_at=T0 + timedelta(days=30))
    for n in range(sold):
        buy_directly(event, make_user(), at=T0 + timedelta(minutes=n))
    events.cancel_event(event_id=event.id, organizer_id=olive.id, now=T0 + timedelta(hours=1))
    done = mailbox(app)[f"cancellation_done-{event.id}"]
    assert done["Subject"] == "You cancelled Indie Night"
    assert words in text_of(done)
    assert "It is off the listings and its waiting list is closed." in text_of(done)


# ------------------------------------------------------------------ the daily summary


def test_the_summary_due_is_yesterdays_from_seven_in_the_morning_utc():
    assert summaries.day_due(utc(2030, 1, 5, 7, 0)) == date(2030, 1, 4)
    assert summaries.day_due(utc(2030, 1, 5, 6, 59)) == date(2030, 1, 3)
    assert summaries.day_due(utc(2030, 1, 5, 23, 59)) == date(2030, 1, 4)


def test_a_daily_summary_goes_once_to_those_who_asked_and_have_something_to_say(app, olive):
    event = make_event(olive, now=T0, name="Indie Night", total_tickets=10, price_pence=1250,
                       starts_at=T0 + timedelta(days=30))
    buy_directly(event, make_user(), at=utc(2030, 1, 2, 10, 0))
    buy_directly(event, make_user(), at=utc(2030, 1, 2, 23, 59))
    buy_directly(event, make_user(), at=utc(2030, 1, 3, 0, 1))  # the next day
    quiet = make_user(name="Quiet")  # asked, but has no events at all
    not_asked = make_user(name="Not asked")
    make_event(not_asked, now=T0, starts_at=T0 + timedelta(days=30))
    for person in (olive, quiet):
        summaries.set_daily_sales_email(user_id=person.id, enabled=True)

    morning = utc(2030, 1, 3, 7, 7)
    assert summaries.queue_daily_summaries(now=morning) == 1
    # The hourly task again, and a second consumer running it at the same time: nothing new.
    assert summaries.queue_daily_summaries(now=morning + timedelta(hours=1)) == 0
    assert summaries.queue_daily_summaries(now=morning + timedelta(hours=1)) == 0

    written = list(db.session.scalars(select(SalesSummary)))
    assert [(s.organizer_id, s.day) for s in written] == [(olive.id, date(2030, 1, 2))]
    message = mailbox(app)[f"daily_summary-{written[0].id}"]
    assert message["To"] == "Olive <olive@example.com>"
    assert message["Subject"] == "Your sales on Wed 2 Jan 2030"
    body = text_of(message)
    assert "Your sales on 2 Jan 2030 (UTC)" in body
    assert "That day: 2 tickets sold, £25.00" in body
    assert "In all: 3 of 10 sold, 7 left" in body
    assert [key for key in mailbox(app) if key.startswith("daily_summary")] == [
        f"daily_summary-{written[0].id}"]


def test_the_hourly_task_writes_the_summary_due_now_once(app, olive):
    make_event(olive, starts_at=utc(2099, 1, 1, 19, 0))
    summaries.set_daily_sales_email(user_id=olive.id, enabled=True)
    assert tasks.queue_daily_sales_summaries.call_local() == 1
    assert tasks.queue_daily_sales_summaries.call_local() == 0
    (summary,) = db.session.scalars(select(SalesSummary))
    assert f"daily_summary-{summary.id}" in mailbox(app)


def test_a_summary_missed_while_no_consumer_ran_is_sent_by_the_next_run(app, olive):
    make_event(olive, now=T0, starts_at=T0 + timedelta(days=30))
    summaries.set_daily_sales_email(user_id=olive.id, enabled=True)
    # Nothing ran at 07:00 on 3 Jan; the consumer is back at 15:07.
    assert summaries.queue_daily_summaries(now=utc(2030, 1, 3, 15, 7)) == 1
    (summary,) = db.session.scalars(select(SalesSummary))
    assert summary.day == date(2030, 1, 2)
    assert "That day: 0 tickets sold" in text_of(mailbox(app)[f"daily_summary-{summary.id}"])


def test_turning_the_summary_off_stops_it(app, olive):
    make_event(olive, now=T0, starts_at=T0 + timedelta(days=30))
    summaries.set_daily_sales_email(user_id=olive.id, enabled=True)
    summaries.set_daily_sales_email(user_id=olive.id, enabled=False)
    assert summaries.queue_daily_summaries(now=utc(2030, 1, 3, 8, 0)) == 0
    assert not any(key.startswith("daily_summary") for key in mailbox(app))


def test_sending_a_summary_again_does_not_duplicate_it(app, olive):
    make_event(olive, now=T0, starts_at=T0 + timedelta(days=30))
    summaries.set_daily_sales_email(user_id=olive.id, enabled=True)
    summaries.queue_daily_summaries(now=utc(2030, 1, 3, 8, 0))
    (summary,) = db.session.scalars(select(SalesSummary))
    notifications.send("daily_summary", summary.id)  # a retried task
    assert [key for key in mailbox(app) if key.startswith("daily_summary")] == [
        f"daily_summary-{summary.id}"]
