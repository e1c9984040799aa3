"""What organizers read: figures from the tickets actually sold, sales by UTC day, the export.

A seeded story: tickets sold over several days at £12.50, one refunded, the price raised
to £20.00 after sales, one more sold at the new price, one holder checked in, and a queue
of offers and waiters. Runs on SQLite and on PostgreSQL (``any_db_app``).
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from blueprints.charts import sales_chart
from extensions import db
from models import Ticket, TicketStatus
from services import events, queue, reports
from services.events import EventDetails
from services.fees import platform_fee
from services.tickets import check_in, token_for
from tests.support.factories import make_event, make_user, utc

T0 = utc(2030, 1, 1, 9, 0)


@pytest.fixture
def app_db(any_db_app):
    return any_db_app


def buy(event, buyer, at):
    """Join (offered at once) and pay today's price, as the checkout does."""
    entry = queue.join_queue(event_id=event.id, user_id=buyer.id, now=at)
    price = db.session.get(type(event), event.id).price_pence
    return queue.complete_purchase(entry_id=entry.id, user_id=buyer.id,
                                   payment_reference=f"pay-{entry.id}", amount_pence=price, now=at)


def raise_price(event, organizer, price_pence, at):
    details = EventDetails(name=event.name, description=event.description,
                           location=event.location, starts_at=event.starts_at,
                           price_pence=price_pence, total_tickets=event.total_tickets)
    events.update_event(event_id=event.id, organizer_id=organizer.id, details=details, now=at)


@pytest.fixture
def story(app_db):
    organizer = make_user(name="Olive")
    event = make_event(organizer, now=T0, name="Indie Night", price_pence=1250, total_tickets=6,
                       starts_at=T0 + timedelta(days=30))
    people = {name: make_user(name=name) for name in
              ("Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal")}
    sold = {
        "Ann": buy(event, people["Ann"], T0),  # 1 Jan, 09:00
        "Bob": buy(event, people["Bob"], utc(2030, 1, 1, 23, 59)),  # still 1 Jan (UTC)
        "Cat": buy(event, people["Cat"], utc(2030, 1, 3, 0, 0, 1)),  # 3 Jan, just after midnight
    }
    queue.refund_ticket_seat(ticket_id=sold["Bob"].id, now=utc(2030, 1, 3, 10, 0))
    raise_price(event, organizer, 2000, at=utc(2030, 1, 3, 12, 0))
    sold["Dan"] = buy(event, people["Dan"], utc(2030, 1, 4, 15, 0))  # at the new price
    check_in(event_id=event.id, token=token_for(sold["Ann"]), now=utc(2030, 1, 5, 19, 0))
    # Capacity 6 with 3 live tickets: at noon on the 5th Eve, Fay and Gus are offered the
    # rest and Hal waits.
    offers_at = utc(2030, 1, 5, 12, 0)
    for name in ("Eve", "Fay", "Gus", "Hal"):
        queue.join_queue(event_id=event.id, user_id=people[name].id, now=offers_at)
    db.session.rollback()
    return {"event": db.session.get(type(event), event.id), "organizer": organizer,
            "sold": sold, "people": people, "now": offers_at + timedelta(minutes=1)}


def live_tickets(event_id):
    db.session.rollback()
    return list(db.session.scalars(
        select(Ticket).where(Ticket.event_id == event_id, Ticket.status.in_(TicketStatus.LIVE))))


def test_the_figures_are_the_sums_over_the_tickets_actually_sold(story):
    figures = reports.event_figures(story["event"], now=story["now"])
    live = live_tickets(story["event"].id)
    bob = story["sold"]["Bob"]

    assert figures.capacity == 6
    assert figures.sold == 4  # Ann, Bob, Cat, Dan: a refunded ticket was still sold
    assert figures.refunded == 1 and figures.valid == len(live) == 3
    assert figures.sales_pence == 1250 + 1250 + 1250 + 2000
    assert figures.refunded_pence == bob.amount_pence == 1250
    assert figures.kept_pence == sum(t.amount_pence for t in live) == 4500
    # 1% of £12.50 is 12.5p, rounded up to 13p per ticket kept: 13 + 13 + 20, not 1% of £45.
    assert figures.fee_pence == sum(platform_fee(t.amount_pence) for t in live) == 46
    assert figures.net_pence == 4500 - 46
    assert figures.checked_in == 1
    assert (figures.live_offers, figures.waiting) == (3, 1)
    assert figures.remaining == 0


def test_a_cancelled_event_keeps_what_it_sold_and_who_was_checked_in(story):
    events.cancel_event(event_id=story["event"].id, organizer_id=story["organizer"].id,
                        now=story["now"])
    figures = reports.event_figures(story["event"], now=story["now"])
    assert (figures.sold, figures.refunded, figures.valid, figures.checked_in) == (4, 4, 0, 1)
    assert (figures.sales_pence, figures.refunded_pence, figures.net_pence) == (5750, 5750, 0)
    assert [d.cumulative for d in reports.daily_sales(story["event"].id)] == [2, 3, 4]


def test_todays_price_is_not_what_was_sold(story):
    figures = reports.event_figures(story["event"], now=story["now"])
    assert story["event"].price_pence == 2000
    assert figures.sales_pence != figures.sold * story["event"].price_pence


def test_offers_past_their_deadline_do_not_count_as_held(story):
    later = story["now"] + timedelta(hours=2)  # the 30-minute offers have lapsed
    figures = reports.event_figures(story["event"], now=later)
    assert figures.live_offers == 0
    assert figures.sold == 4


def test_a_waiting_list_is_counted(app_db):
    event = make_event(now=T0, total_tickets=1, starts_at=T0 + timedelta(days=3))
    for _ in range(3):
        queue.join_queue(event_id=event.id, user_id=make_user().id, now=T0)
    figures = reports.event_figures(event, now=T0)
    assert (figures.sold, figures.live_offers, figures.waiting) == (0, 1, 2)
    assert (figures.sales_pence, figures.fee_pence, figures.net_pence) == (0, 0, 0)


def test_the_dashboard_lists_only_the_organizers_own_events_latest_first(story):
    rival = make_user()
    make_event(rival, now=T0, name="Rival's gig")
    sooner = make_event(story["organizer"], now=T0, name="Sooner",
                        starts_at=T0 + timedelta(days=2))
    rows = reports.organizer_figures(story["organizer"].id, now=story["now"])
    assert [f.event.name for f in rows] == ["Indie Night", "Sooner"]
    assert rows[0].kept_pence == 4500 and rows[1].kept_pence == 0
    assert rows[1].event.id == sooner.id


def test_sales_by_utc_day_count_every_ticket_sold_cumulatively(story):
    days = reports.daily_sales(story["event"].id)
    # Bob's 23:59 ticket on 1 Jan counts (refunded on the 3rd, it was sold on the 1st); Cat's
    # 00:00:01 belongs to 3 Jan.
    assert [(d.day, d.sold, d.cumulative) for d in days] == [
        (date(2030, 1, 1), 2, 2),
        (date(2030, 1, 3), 1, 3),
        (date(2030, 1, 4), 1, 4),
    ]


def test_the_chart_rises_in_steps_from_nothing_on_the_day_sales_opened(story):
    chart = sales_chart(reports.daily_sales(story["event"].id), since=date(2029, 12, 31),
                        until=date(2030, 1, 5))
    assert [p.day for p in chart.points] == [date(2030, 1, 1), date(2030, 1, 3), date(2030, 1, 4)]
    xs = [p.x for p in chart.points]
    ys = [p.y for p in chart.points]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert ys == sorted(ys, reverse=True)  # more sold: higher up (smaller y)
    # Days are placed by date over the whole time on sale (31 Dec to 5 Jan: 5 days).
    day = (chart.right - chart.left) / 5
    assert xs[0] - chart.left == pytest.approx(day)
    assert (xs[1] - xs[0]) == pytest.approx(2 * (xs[2] - xs[1])) == pytest.approx(2 * day)
    assert chart.left <= min(xs) and max(xs) <= chart.right
    assert chart.top <= min(ys) and max(ys) <= chart.bottom
    assert [t.label for t in chart.x_ticks] == ["31 Dec 2029", "5 Jan 2030"]
    assert chart.y_ticks[0].label == "0" and int(chart.y_ticks[-1].label) >= 4
    # The line: flat at 0 from the first day, up at each sale day, flat to the last day.
    assert chart.steps[0] == (chart.left, chart.bottom)
    assert chart.steps[-1] == (chart.right, ys[-1])
    assert all(a[0] <= b[0] for a, b in zip(chart.steps, chart.steps[1:]))
    assert all(a[1] >= b[1] for a, b in zip(chart.steps, chart.steps[1:]))
    assert chart.labelled == chart.points  # few points: each is labelled with its total


def test_no_sales_no_chart_and_one_day_of_sales_rises_from_the_day_before(app_db):
    event = make_event(now=T0, starts_at=T0 + timedelta(days=3))
    assert reports.daily_sales(event.id) == [] and sales_chart([]) is None
    buy(event, make_user(), T0)
    chart = sales_chart(reports.daily_sales(event.id), since=T0.date(), until=T0.date())
    assert len(chart.points) == 1
    assert [t.label for t in chart.x_ticks] == ["31 Dec 2029", "1 Jan 2030"]
    assert chart.points[0].x == pytest.approx(chart.right)
    assert chart.steps[0] == (chart.left, chart.bottom)  # from 0 the day before
    assert chart.anchor_of(chart.points[0]) == "end"  # its label stays inside


def test_many_points_label_only_the_last():
    days = [reports.DaySales(date(2030, 1, n), 1, n) for n in range(1, 21)]
    chart = sales_chart(days)
    assert chart.labelled == chart.points[-1:]


def test_the_attendee_export_has_one_row_per_ticket_in_utc_and_pounds(story):
    rows = list(csv.reader(io.StringIO(reports.attendee_csv(story["event"].id))))
    assert rows[0] == list(reports.ATTENDEE_COLUMNS)
    by_name = {row[1]: row for row in rows[1:]}
    assert sorted(by_name) == ["Ann", "Bob", "Cat", "Dan"]  # the refunded ticket is listed too
    ann, bob, dan = by_name["Ann"], by_name["Bob"], by_name["Dan"]
    assert ann[3:] == ["used", "2030-01-01T09:00:00Z", "12.50", "2030-01-05T19:00:00Z"]
    assert bob[3:] == ["refunded", "2030-01-01T23:59:00Z", "12.50", ""]
    assert dan[3:] == ["valid", "2030-01-04T15:00:00Z", "20.00", ""]
    assert ann[0] == str(story["sold"]["Ann"].id)


@pytest.mark.parametrize("value, safe", [
    ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
    ("+1", "'+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"),
    ("\rcmd", "'\rcmd"),
    ("Ann O'Neil", "Ann O'Neil"),
    ("a=b", "a=b"),
    ("", ""),
])
def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(value, safe):
    assert reports.spreadsheet_safe(value) == safe
