"""Tickets people can carry: the ticket page (door code, print layout, receipt), the
checkout's success page with the receipt, and the event as an iCalendar file."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar

from extensions import db
from models import Ticket
from services import events
from services.events import EventDetails
from services.tickets import check_in
from tests.support.buying import buy_directly
from tests.support.factories import make_event, make_user, utc

T0 = utc(2030, 1, 1, 12, 0)


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


# ------------------------------------------------------------------ the ticket page


def test_the_ticket_page_shows_the_door_code_for_the_door_and_the_print_layout(client, ann):
    event = make_event(name="Jazz Night")
    ticket = buy_directly(event, ann)
    body = page(client.get(f"/tickets/{ticket.id}"))

    hook = re.search(r'<article id="ticket" class="ticket" data-status="valid" '
                     r'data-code="([0-9A-Z]+)">', body)
    assert hook and hook.group(1) == ticket.door_code and len(hook.group(1)) <= 12
    assert (f'<code class="door-code">{ticket.door_code[:5]}-{ticket.door_code[5:]}</code>'
            in body)
    assert 'aria-label="QR code for ticket' in body
    # Printing: a button for it (shown by the script), and everything else marked no-print.
    assert ('<button type="button" class="button" data-print hidden>Print this ticket</button>'
            in body)
    assert f'href="/events/{event.id}/calendar.ics" download>Add to calendar</a>' in body
    stylesheet = client.get("/static/app.css")
    assert "@media print" in stylesheet.get_data(as_text=True)
    stylesheet.close()


def test_the_ticket_page_has_the_receipt(client, ann):
    ticket = buy_directly(make_event(now=T0, price_pence=1250), ann, at=T0)
    body = page(client.get(f"/tickets/{ticket.id}"))
    receipt = re.search(r'<section class="receipt".*?</section>', body, re.S).group(0)
    assert f"Receipt TH-{ticket.id:06d}" in receipt
    assert "<dt>Paid</dt><dd>£12.50</dd>" in receipt
    assert "£0.13, included in the price: the organizer receives £12.37" in receipt
    assert "Tue 1 Jan 2030, 12:00 UTC" in receipt
    assert f'<code class="reference">{ticket.payment_reference}</code>' in receipt


def test_a_used_ticket_keeps_its_code_but_shows_no_qr(client, ann):
    event = make_event()
    ticket = buy_directly(event, ann)
    check_in(event_id=event.id, token=ticket.door_code, now=event.starts_at - timedelta(hours=1))
    body = page(client.get(f"/tickets/{ticket.id}"))
    assert f'data-status="used" data-code="{ticket.door_code}"' in body
    assert "QR code for ticket" not in body and "Print this ticket" not in body


def test_a_cancelled_events_ticket_says_so_once(client, ann):
    event = make_event(name="Jazz Night")
    ticket = buy_directly(event, ann)
    events.cancel_event(event_id=event.id, organizer_id=event.organizer_id,
                        now=event.starts_at - timedelta(days=1))
    body = page(client.get(f"/tickets/{ticket.id}"))
    assert 'data-status="refunded"' in body
    assert body.count("cancelled") == 1 and body.count("refunded") == 2  # the notice, the hook
    assert "This event was cancelled: your ticket is refunded" in body


# ------------------------------------------------------------ the success page


def test_the_success_page_says_more_than_payment_complete(client, ann):
    event = make_event(name="Jazz Night", price_pence=1250, total_tickets=3)
    client.post(f"/events/{event.id}/join")
    pay_page = client.post(f"/events/{event.id}/checkout").headers["Location"]
    success = client.post(pay_page, data={"action": "pay"}).headers["Location"]
    db.session.rollback()
    ticket = db.session.scalars(db.select(Ticket).filter_by(user_id=ann.id)).one()

    body = page(client.get(success))

    assert "Payment complete — your ticket is ready." in body
    assert "We've emailed it to you with its QR code." in body
    assert f"{ticket.door_code[:5]}-{ticket.door_code[5:]}" in body
    receipt = re.search(r'<section class="receipt".*?</section>', body, re.S).group(0)
    assert "<dt>Paid</dt><dd>£12.50</dd>" in receipt and "£0.13" in receipt
    assert ticket.payment_reference in receipt
    assert f'href="/tickets/{ticket.id}"' in body
    assert f'href="/events/{event.id}/calendar.ics"' in body


# ------------------------------------------------------------------ calendar.ics


def parsed(response) -> icalendar.Calendar:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(response.get_data())
    assert all(not component.errors for component in calendar.walk())
    return calendar


def test_the_calendar_file_has_the_right_start_in_utc_and_names_the_events_zone(app, client):
    # 19:30 in New York on the day the clocks go forward there (EDT, UTC−4): 23:30 UTC.
    event = make_event(name="Jazz, Blues; and \\ more", location="Blue Note, New York",
                       description="Doors at 7.\nTwo sets.", timezone="America/New_York",
                       starts_at=utc(2030, 3, 10, 23, 30), now=T0)

    response = client.get(f"/events/{event.id}/calendar.ics")

    calendar = parsed(response)
    assert calendar["X-WR-TIMEZONE"] == "America/New_York"
    (vevent,) = calendar.walk("VEVENT")
    start = vevent.decoded("DTSTART")
    assert start == utc(2030, 3, 10, 23, 30) and start.utcoffset() == timedelta(0)
    assert start.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M %Z") == "19:30 EDT"
    assert str(vevent["SUMMARY"]) == "Jazz, Blues; and \\ more"
    assert str(vevent["LOCATION"]) == "Blue Note, New York"
    assert "America/New_York time" in str(vevent["DESCRIPTION"])
    assert "Doors at 7.\nTwo sets." in str(vevent["DESCRIPTION"])
    assert str(vevent["URL"]) == f"{app.config['BASE_URL']}/events/{event.id}"
    assert str(vevent["STATUS"]) == "CONFIRMED"
    assert str(vevent["UID"]) == f"event-{event.id}@{urlsplit(app.config['BASE_URL']).hostname}"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="event-{event.id}-jazz-blues-and-more.ics"')
    # Lines are folded at 75 octets, as RFC 5545 asks.
    assert all(len(line.encode()) <= 75 for line in response.get_data(as_text=True).split("\r\n"))


def test_a_cancelled_event_is_cancelled_in_the_calendar_too(client, organizer):
    event = make_event(organizer)
    client.post(f"/seller/events/{event.id}/cancel")
    (vevent,) = parsed(client.get(f"/events/{event.id}/calendar.ics")).walk("VEVENT")
    assert str(vevent["STATUS"]) == "CANCELLED"


def test_a_drafts_calendar_file_is_its_organizers_alone(client, auth):
    olive = make_user(name="Olive")
    draft = events.create_event(organizer_id=olive.id, draft=True, now=T0, details=EventDetails(
        "Secret gig", "", "Soho", T0 + timedelta(days=9), 1000, 10))

    assert client.get(f"/events/{draft.id}/calendar.ics").status_code == 404
    auth.login(make_user(name="Ann"))
    assert client.get(f"/events/{draft.id}/calendar.ics").status_code == 404
    auth.logout()
    auth.login(olive)
    assert parsed(client.get(f"/events/{draft.id}/calendar.ics"))["X-WR-TIMEZONE"] == "UTC"


def test_the_event_page_links_its_calendar_file(client):
    event = make_event(timezone="Europe/London")
    html = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert f'href="/events/{event.id}/calendar.ics">Add to calendar</a>' in html
    assert client.get(f"/events/{event.id}/calendar.ics").mimetype == "text/calendar"
