"""The organizer's dashboard (/seller) and an event's own page (/seller/events/<id>): the
figures from the tickets actually sold, the links to act on each event, and the sales chart."""

from __future__ import annotations

import html
import re

import pytest

from services import events, queue
from services.events import EventDetails
from services.tickets import check_in, token_for
from tests.support.buying import buy_directly
from tests.support.factories import make_event, make_user, utc

T0 = utc(2030, 1, 1, 12, 0)
SHOW = utc(2030, 2, 1, 19, 0)


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def cells(markup: str) -> list[str]:
    """The text of each cell of a table row, tags stripped and spaces squeezed."""
    found = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", markup, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in found]


def dashboard_row(body: str, event) -> str:
    match = re.search(rf'<tr id="event-{event.id}".*?</tr>', body, re.S)
    assert match, f"event {event.id} is not on the dashboard"
    return match.group(0)


def raise_price(event, organizer, price_pence, at):
    events.update_event(event_id=event.id, organizer_id=organizer.id, now=at, details=EventDetails(
        name=event.name, description=event.description, location=event.location,
        starts_at=event.starts_at, price_pence=price_pence, total_tickets=event.total_tickets))


@pytest.fixture
def sold_event(organizer):
    """Indie Night, 5 places at £12.50: Ann buys on 1 Jan, Bob on 1 Jan (refunded later),
    the price goes up to £20.00, Cat buys on 3 Jan, Ann is checked in, Dan holds an offer."""
    event = make_event(organizer, now=T0, name="Indie Night", price_pence=1250,
                       total_tickets=5, starts_at=SHOW)
    ann = buy_directly(event, make_user(name="Ann"), at=T0)
    bob = buy_directly(event, make_user(name="Bob"), at=utc(2030, 1, 1, 18, 0))
    queue.refund_ticket_seat(ticket_id=bob.id, now=utc(2030, 1, 2, 9, 0))
    raise_price(event, organizer, 2000, at=utc(2030, 1, 2, 10, 0))
    buy_directly(event, make_user(name="Cat"), at=utc(2030, 1, 3, 12, 0))
    check_in(event_id=event.id, token=token_for(ann), now=utc(2030, 2, 1, 18, 30))
    queue.join_queue(event_id=event.id, user_id=make_user(name="Dan").id,
                     now=utc(2030, 1, 4, 12, 0))
    return event


def test_the_dashboard_shows_what_the_sold_tickets_earned(client, sold_event):
    row = dashboard_row(page(client.get("/seller")), sold_event)
    assert cells(row) == [
        "Indie Night", "Fri 1 Feb 2030, 19:00 UTC",
        "5",  # capacity
        "2",  # sold: Ann and Cat (Bob was refunded)
        "1",  # offers held: Dan's (it runs until 12:30 on 4 Jan 2030)
        "0",  # waiting
        "1",  # checked in: Ann
        "£32.50",  # gross: £12.50 + £20.00, what each paid, not 2 × today's £20.00
        "£0.33",  # platform fee: 1% per ticket rounded half up: 13p + 20p
        "£32.17",  # net
        "Edit Indie Night Check in to Indie Night Attendees (CSV) of Indie Night "
        "Cancel Indie Night",
    ]
    assert 'data-gross-pence="3250" data-fee-pence="33" data-net-pence="3217"' in row


def test_each_event_links_to_edit_check_in_attendees_and_cancel(client, sold_event):
    row = dashboard_row(page(client.get("/seller")), sold_event)
    for href in (f"/seller/events/{sold_event.id}/edit", f"/seller/events/{sold_event.id}/checkin",
                 f"/seller/events/{sold_event.id}/attendees.csv",
                 f"/seller/events/{sold_event.id}/cancel"):
        assert f'href="{href}"' in row
    # "Cancel" asks first, on a page whose form does it.
    confirm = page(client.get(f"/seller/events/{sold_event.id}/cancel"))
    assert f'action="/seller/events/{sold_event.id}/cancel"' in confirm


def test_a_cancelled_event_shows_no_money_and_no_edit_or_cancel(client, organizer, sold_event):
    client.post(f"/seller/events/{sold_event.id}/cancel")
    row = dashboard_row(page(client.get("/seller")), sold_event)
    assert "cancelled" in row
    assert cells(row)[3:10] == ["0", "0", "0", "0", "£0.00", "£0.00", "£0.00"]
    assert "/edit" not in row and "/cancel" not in row
    assert "/checkin" in row and "/attendees.csv" in row


def test_organizers_see_only_their_own_events(client, auth, sold_event):
    rival = make_user(name="Rival")
    rivals_gig = make_event(rival, name="Rival's gig")
    mine = page(client.get("/seller"))
    assert "Indie Night" in mine and "Rival's gig" not in mine
    auth.logout()
    auth.login(rival)
    theirs = page(client.get("/seller"))
    assert "Rival's gig" in theirs and "Indie Night" not in theirs
    assert f'id="event-{rivals_gig.id}"' in theirs


def test_the_events_page_shows_the_same_figures(client, sold_event):
    body = page(client.get(f"/seller/events/{sold_event.id}"))
    figures = re.search(r'<dl class="facts" id="figures">.*?</dl>', body, re.S).group(0)
    terms, values = re.findall(r"<dt>(.*?)</dt>", figures), re.findall(r"<dd>(.*?)</dd>", figures)
    pairs = dict(zip(terms, values))
    assert pairs == {"Capacity": "5", "Sold": "2", "Held in offers": "1", "Waiting": "0",
                     "Checked in": "1", "Gross revenue": "£32.50", "Platform fee": "£0.33",
                     "Net": "£32.17"}


def test_the_sales_chart_has_a_point_per_day_with_sales_and_a_table_to_read(client, sold_event):
    body = page(client.get(f"/seller/events/{sold_event.id}"))
    svg = re.search(r'<svg class="chart" id="sales-chart".*?</svg>', body, re.S).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="sales-chart-title"' in svg
    assert '<title id="sales-chart-title">Tickets sold over time</title>' in svg
    points = re.findall(r'<circle class="chart-point"[^>]*data-day="([\d-]+)" '
                        r'data-cumulative="(\d+)"', svg)
    # Bob's refunded ticket doesn't count: Ann on 1 Jan, Cat on 3 Jan.
    assert points == [("2030-01-01", "1"), ("2030-01-03", "2")]
    table = re.search(r'<table class="sales-table".*?</table>', body, re.S).group(0)
    assert [cells(row) for row in re.findall(r"<tr data-day.*?</tr>", table, re.S)] == [
        ["1 Jan 2030", "1", "1"], ["3 Jan 2030", "1", "2"]]
    assert "<script" not in svg


def test_before_the_first_sale_there_is_no_chart(client, organizer):
    event = make_event(organizer, name="Quiet night")
    body = page(client.get(f"/seller/events/{event.id}"))
    assert "No tickets sold yet: the chart appears with the first sale." in body
    assert "<svg" not in body
