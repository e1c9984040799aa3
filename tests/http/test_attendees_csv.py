"""The attendee export (/seller/events/<id>/attendees.csv): what an organizer downloads and
opens in a spreadsheet, safe from formulas hidden in buyers' names."""

from __future__ import annotations

import csv
import io

import pytest

from services import queue
from services.tickets import check_in, token_for
from tests.support.buying import buy_directly
from tests.support.factories import make_event, make_user, utc

T0 = utc(2030, 1, 1, 12, 0)
HEADER = ["ticket_id", "name", "email", "status", "purchased_at", "amount_gbp", "checked_in_at"]


def export_url(event) -> str:
    return f"/seller/events/{event.id}/attendees.csv"


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))


@pytest.fixture
def event(organizer):
    return make_event(organizer, now=T0, name="Indie Night", price_pence=1250,
                      starts_at=utc(2030, 2, 1, 19, 0))


def test_the_export_is_a_csv_download_with_one_row_per_ticket(client, organizer, event):
    ann = buy_directly(event, make_user(name="Ann Lee", email="ann@example.com"), at=T0)
    bob = buy_directly(event, make_user(name="Bob", email="bob@example.com"),
                       at=utc(2030, 1, 2, 8, 30, 15))
    queue.refund_ticket_seat(ticket_id=bob.id, now=utc(2030, 1, 3, 9, 0))
    check_in(event_id=event.id, token=token_for(ann), now=utc(2030, 2, 1, 18, 45))

    response = client.get(export_url(event))

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="event-{event.id}-indie-night-attendees.csv"'
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.get_data(as_text=True).startswith(",".join(HEADER) + "\r\n")
    assert rows_of(response) == [
        HEADER,
        [str(ann.id), "Ann Lee", "ann@example.com", "used", "2030-01-01T12:00:00Z", "12.50",
         "2030-02-01T18:45:00Z"],
        [str(bob.id), "Bob", "bob@example.com", "refunded", "2030-01-02T08:30:15Z", "12.50", ""],
    ]


def test_an_event_without_tickets_exports_just_the_header(client, organizer, event):
    assert rows_of(client.get(export_url(event))) == [HEADER]


def test_a_formula_in_a_name_comes_out_neutralised(client, organizer, event):
    buy_directly(event, make_user(name='=HYPERLINK("http://evil.example","Click")'), at=T0)
    buy_directly(event, make_user(name="@SUM(1+1)*cmd|' /C calc'!A0"), at=T0)
    buy_directly(event, make_user(name="-2+3"), at=T0)
    buy_directly(event, make_user(name="+44 Fan"), at=T0)
    names = [row[1] for row in rows_of(client.get(export_url(event)))[1:]]
    assert names == [
        '\'=HYPERLINK("http://evil.example","Click")',
        "'@SUM(1+1)*cmd|' /C calc'!A0",
        "'-2+3",
        "'+44 Fan",
    ]
    assert not any(name[0] in "=+-@\t\r" for name in names)


def test_quotes_commas_and_line_breaks_round_trip_through_a_csv_reader(client, organizer, event):
    awkward = 'O\'Neil, "Danny"\nthe second'
    ticket = buy_directly(event, make_user(name=awkward), at=T0)
    body = client.get(export_url(event)).get_data(as_text=True)
    assert '"O\'Neil, ""Danny""\nthe second"' in body  # quoted as RFC 4180 says
    rows = rows_of(client.get(export_url(event)))
    assert rows[1][:2] == [str(ticket.id), awkward]
    assert len(rows) == 2


def test_free_tickets_are_worth_nothing(client, organizer):
    free = make_event(organizer, now=T0, price_pence=0, starts_at=utc(2030, 2, 1, 19, 0))
    buy_directly(free, make_user(), at=T0)
    assert rows_of(client.get(export_url(free)))[1][5] == "0.00"
