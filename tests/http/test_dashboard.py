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


def text_of(markup: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def cells(markup: str) -> list[str]:
    """The text of each cell of a table row, tags stripped and spaces squeezed."""
    return [text_of(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", markup, re.S)]


def event_card(body: str, event) -> str:
    match = re.search(rf'<li class="event-card" id="event-{event.id}".*?</li>\s*</ul>\s*</li>',
                      body, re.S)
    assert match, f"event {event.id} is not on the dashboard"
    return match.group(0)


def figures_on(card: str) -> dict[str, str]:
    """The card's figures, label → value."""
    pairs = re.findall(r"<div><dt>(.*?)</dt><dd>(.*?)</dd></div>", card, re.S)
    return {label: text_of(value) for label, value in pairs}


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
    card = event_card(page(client.get("/seller")), sold_event)
    assert "Indie Night" in card and "Fri 1 Feb 2030, 19:00 UTC" in card
    assert figures_on(card) == {
        "Sold": "3 of 5",  # Ann, Bob and Cat: Bob's ticket still counts as sold
        "Refunded": "1",  # Bob's
        "Checked in": "1",  # Ann
        "Offers held": "1",  # Dan's (it runs until 12:30 on 4 Jan 2030)
        "Waiting": "0",
        "Sales": "£45.00",  # what each paid: £12.50 + £12.50 + £20.00, not 3 × today's £20
        "Refunds": "−£12.50",
        "Platform fee": "−£0.33",  # 1% per ticket kept, rounded half up: 13p + 20p
        "Net": "£32.17",
    }
    assert ('data-sales-pence="4500" data-refunded-pence="1250" data-fee-pence="33" '
            'data-net-pence="3217"') in card


def test_each_event_card_opens_the_door_first_then_the_rest(client, sold_event):
    card = event_card(page(client.get("/seller")), sold_event)
    links = re.findall(r'href="([^"]+)"', card)
    # The door is the first action on the card, a big button.
    assert links[1] == f"/seller/events/{sold_event.id}/checkin"
    assert re.search(r'<a class="button primary" href="/seller/events/\d+/checkin">Check in'
                     r'<span class="visually-hidden"> to Indie Night</span></a>', card)
    for href in (f"/seller/events/{sold_event.id}/edit",
                 f"/seller/events/{sold_event.id}/attendees.csv",
                 f"/seller/events/{sold_event.id}/cancel", f"/seller/events/{sold_event.id}"):
        assert href in links
    # "Cancel" asks first, on a page whose form does it.
    confirm = page(client.get(f"/seller/events/{sold_event.id}/cancel"))
    assert f'action="/seller/events/{sold_event.id}/cancel"' in confirm


def test_a_cancelled_event_still_shows_what_it_sold_and_who_came(client, organizer, sold_event):
    """After a cancel the figures still say a ticket was sold and scanned: it was."""
    client.post(f"/seller/events/{sold_event.id}/cancel")
    card = event_card(page(client.get("/seller")), sold_event)
    assert "cancelled" in card
    figures = figures_on(card)
    assert (figures["Sold"], figures["Refunded"], figures["Checked in"]) == ("3 of 5", "3", "1")
    assert (figures["Sales"], figures["Refunds"], figures["Net"]) == (
        "£45.00", "−£45.00", "£0.00")
    assert "/edit" not in card and "/cancel" not in card and "/checkin" not in card
    assert "/attendees.csv" in card

    detail = page(client.get(f"/seller/events/{sold_event.id}"))
    assert "No tickets sold yet" not in detail
    assert "You cancelled this event" in detail and "all 3 tickets were refunded" in detail
    figures = re.search(r'<dl class="facts" id="figures">.*?</dl>', detail, re.S).group(0)
    pairs = dict(zip(re.findall(r"<dt>(.*?)</dt>", figures),
                     re.findall(r"<dd>(.*?)</dd>", figures)))
    assert (pairs["Sold"], pairs["Checked in"], pairs["Refunded"]) == ("3", "1", "3")
    assert re.search(r'<circle class="chart-point"', detail)


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
    assert pairs == {"Capacity": "5", "Sold": "3", "Refunded": "1", "Held in offers": "1",
                     "Waiting": "0", "Checked in": "1", "Sales": "£45.00", "Refunds": "−£12.50",
                     "Platform fee": "−£0.33", "Net": "£32.17"}


def test_the_sales_chart_has_a_point_per_day_with_sales_and_a_table_to_read(client, sold_event):
    body = page(client.get(f"/seller/events/{sold_event.id}"))
    svg = re.search(r'<svg class="chart" id="sales-chart".*?</svg>', body, re.S).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="sales-chart-title"' in svg
    assert '<title id="sales-chart-title">Tickets sold over time</title>' in svg
    points = re.findall(r'<circle class="chart-point"[^>]*data-day="([\d-]+)" '
                        r'data-cumulative="(\d+)"', svg)
    # Ann and Bob on 1 Jan (Bob's refund later doesn't unsell it), Cat on 3 Jan.
    assert points == [("2030-01-01", "2"), ("2030-01-03", "3")]
    table = re.search(r'<table class="sales-table".*?</table>', body, re.S).group(0)
    assert [cells(row) for row in re.findall(r"<tr data-day.*?</tr>", table, re.S)] == [
        ["1 Jan 2030", "2", "2"], ["3 Jan 2030", "1", "3"]]
    # Few points: each carries its total, and the line starts from nothing.
    assert re.findall(r'<text class="chart-value"[^>]*>(\d+)</text>', svg) == ["2", "3"]
    assert "<script" not in svg


def test_before_the_first_sale_there_is_no_chart(client, organizer):
    event = make_event(organizer, name="Quiet night")
    body = page(client.get(f"/seller/events/{event.id}"))
    assert "No tickets sold yet: the chart appears with the first sale." in body
    assert "<svg" not in body
