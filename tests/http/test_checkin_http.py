"""The door page (/seller/events/<id>/checkin): the organizer checks tickets in by their QR
token (pasted or scanned) or door code (typed), as a plain form or with HTMX."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest

import blueprints.seller
from extensions import db
from models import Ticket
from services import Busy, queue
from services.tickets import token_for
from tests.support.buying import buy_directly, buy_through_the_site
from tests.support.factories import PASSWORD, csrf_token_from, make_event, make_user

HX = {"HX-Request": "true"}


def checkin_url(event) -> str:
    return f"/seller/events/{event.id}/checkin"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def outcome_of(response) -> str | None:
    match = re.search(r'id="checkin-result"[^>]*data-outcome="([a-z_]+)"', text(response))
    return match.group(1) if match else None


def tally_of(response) -> str:
    return re.search(r"(\d+ of \d+ checked in)", text(response)).group(1)


@pytest.fixture
def event(organizer):
    return make_event(organizer, name="Indie Night", total_tickets=5)


def ticket_of(event, name: str = "Ann") -> Ticket:
    return buy_directly(event, make_user(name=name))


# --------------------------------------------------------------------- the story


def test_a_ticket_bought_on_the_site_gets_its_holder_in_once(client, auth):
    olive = make_user(name="Olive")
    event = make_event(olive, name="Indie Night", total_tickets=3)
    ann = make_user(name="Ann")
    auth.login(ann)
    ticket_id, token = buy_through_the_site(client, event)  # the door code on the ticket
    auth.logout()

    auth.login(olive)
    door = client.get(checkin_url(event))
    assert door.status_code == 200
    assert '<label for="token">Ticket code</label>' in text(door)
    assert tally_of(door) == "0 of 1 checked in"
    assert outcome_of(door) is None

    admitted = client.post(checkin_url(event), data={"token": token})
    assert admitted.status_code == 200
    assert outcome_of(admitted) == "admitted"
    page = text(admitted)
    assert "✔" in page and "Admitted" in page and f"Ann · ticket #{ticket_id}" in page
    assert tally_of(admitted) == "1 of 1 checked in"
    assert 'value="' + token not in page  # the field is empty, ready for the next ticket

    again = client.post(checkin_url(event), data={"token": token})
    assert again.status_code == 200
    assert outcome_of(again) == "already_used"
    assert "✘" in text(again) and "Already used" in text(again)
    assert re.search(r"Checked in <time datetime=\"[0-9T:.\-]+Z\">", text(again))
    assert tally_of(again) == "1 of 1 checked in"

    activity = text(client.get(f"/seller/events/{event.id}"))
    # The event's activity shows who was let in, and by whom.
    assert re.search(
        rf"<td>checked in \(ticket #{ticket_id}\)</td>\s*<td>Ann</td>\s*<td>Olive</td>", activity)

    auth.logout()
    auth.login(ann)
    assert 'data-status="used"' in text(client.get(f"/tickets/{ticket_id}"))


@pytest.mark.parametrize("case, outcome, headline", [
    ("forged", "invalid", "Not a valid ticket"),
    ("truncated", "invalid", "Not a valid ticket"),
    ("other event", "wrong_event", "Wrong event"),
    ("refunded", "refunded", "Refunded"),
])
def test_every_refusal_is_shown_big_and_admits_nobody(client, organizer, event, case, outcome,
                                                      headline):
    ticket = ticket_of(event)
    token = token_for(ticket)
    if case == "forged":
        token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    elif case == "truncated":
        token = token[:10]
    elif case == "other event":
        token = token_for(ticket_of(make_event(make_user(), name="Elsewhere")))
    elif case == "refunded":
        queue.refund_ticket_seat(ticket_id=ticket.id, now=datetime.now(timezone.utc))

    response = client.post(checkin_url(event), data={"token": token})

    assert response.status_code == 200
    assert outcome_of(response) == outcome
    assert "✘" in text(response) and headline in text(response)
    assert "checkin-no" in text(response)
    db.session.rollback()
    assert db.session.get(Ticket, ticket.id).checked_in_at is None


def test_a_door_code_typed_as_the_holder_reads_it_out_checks_in(client, organizer, event):
    ticket = ticket_of(event)
    typed = f"{ticket.door_code[:5]} - {ticket.door_code[5:]}".lower()

    admitted = client.post(checkin_url(event), data={"token": typed}, headers=HX)
    again = client.post(checkin_url(event), data={"token": ticket.door_code})

    assert outcome_of(admitted) == "admitted" and f"Ann · ticket #{ticket.id}" in text(admitted)
    assert outcome_of(again) == "already_used" and "Already used" in text(again)


@pytest.mark.parametrize("case, outcome, message", [
    ("mistyped", "invalid", "No ticket has this code. Check it with the holder and type it again."),
    ("other event", "wrong_event", "This ticket is for a different event."),
])
def test_a_wrong_door_code_is_refused_big_and_admits_nobody(client, organizer, event, case,
                                                          outcome, message):
    ticket = ticket_of(event)
    code = ticket.door_code
    if case == "mistyped":
        code = code[:-1] + ("Z" if code[-1] != "Z" else "Y")
    else:
        code = ticket_of(make_event(make_user(), name="Elsewhere"), "Bob").door_code

    response = client.post(checkin_url(event), data={"token": code})

    assert outcome_of(response) == outcome
    assert "✘" in text(response) and message in text(response)
    db.session.rollback()
    assert db.session.get(Ticket, ticket.id).checked_in_at is None


def test_an_empty_field_is_a_400_with_the_reason_under_the_field(client, organizer, event):
    response = client.post(checkin_url(event), data={"token": "   "})
    assert response.status_code == 400
    assert re.search(r'<p class="field-error" id="token-error">Enter or scan a ticket code.</p>',
                     text(response))
    assert outcome_of(response) is None


def test_the_count_is_of_live_tickets(client, organizer, event):
    tickets = [ticket_of(event, name) for name in ("Ann", "Bob", "Cat")]
    queue.refund_ticket_seat(ticket_id=tickets[2].id, now=datetime.now(timezone.utc))
    client.post(checkin_url(event), data={"token": token_for(tickets[0])})
    assert tally_of(client.get(checkin_url(event))) == "1 of 2 checked in"


def test_a_busy_database_says_try_again_and_keeps_the_code(client, organizer, event,
                                                           monkeypatch):
    ticket = ticket_of(event)

    def busy(**_):
        raise Busy()

    monkeypatch.setattr(blueprints.seller.tickets, "check_in", busy)
    response = client.post(checkin_url(event), data={"token": token_for(ticket)})
    assert response.status_code == 503
    assert "Please try again in a moment." in text(response)
    assert f'value="{token_for(ticket)}"' in response.get_data(as_text=True)
    assert outcome_of(response) is None
    fragment = client.post(checkin_url(event), data={"token": token_for(ticket)}, headers=HX)
    assert fragment.status_code == 503
    assert text(fragment).strip().startswith('<section id="checkin-result"')


# --------------------------------------------------------------------- HTMX


def test_with_htmx_a_check_in_answers_with_the_result_fragment(client, organizer, event):
    ticket = ticket_of(event)
    response = client.post(checkin_url(event), data={"token": token_for(ticket)}, headers=HX)
    assert response.status_code == 200
    body = text(response).strip()
    assert body.startswith('<section id="checkin-result"') and "<html" not in body
    assert outcome_of(response) == "admitted"
    assert 'role="alert"' in body
    assert tally_of(response) == "1 of 1 checked in"
    assert "HX-Request" in response.headers["Vary"]


def test_with_htmx_an_empty_field_answers_400_with_the_message_in_the_fragment(
        client, organizer, event):
    response = client.post(checkin_url(event), data={"token": ""}, headers=HX)
    assert response.status_code == 400
    body = text(response).strip()
    assert body.startswith('<section id="checkin-result"')
    assert "Enter or scan a ticket code." in body


def test_the_form_posts_plainly_and_with_htmx_to_the_same_url(client, organizer, event):
    page = text(client.get(checkin_url(event)))
    form = re.search(r'<form class="checkin-form"[^>]*>', page).group(0)
    assert f'action="{checkin_url(event)}"' in form and 'method="post"' in form
    assert f'hx-post="{checkin_url(event)}"' in form and 'hx-target="#checkin-result"' in form


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_the_form_carries_its_csrf_token(client):
    olive = make_user(name="Olive")
    event = make_event(olive)
    ticket = ticket_of(event)
    login_page = text(client.get("/login"))
    client.post("/login", data={"email": olive.email, "password": PASSWORD,
                                "csrf_token": csrf_token_from(login_page)})
    page = text(client.get(checkin_url(event)))
    refused = client.post(checkin_url(event), data={"token": token_for(ticket)})
    assert refused.status_code == 400
    admitted = client.post(checkin_url(event), data={
        "token": token_for(ticket), "csrf_token": csrf_token_from(page)}, headers=HX)
    assert outcome_of(admitted) == "admitted"


# --------------------------------------------------------------------- the camera


def test_the_camera_button_is_progressive_enhancement_from_a_same_origin_script(
        client, organizer, event):
    page = text(client.get(checkin_url(event)))
    assert re.search(r'<button type="button" class="button" id="scan-start" hidden>'
                     r'Scan with camera</button>', page)
    assert '<script src="/static/checkin.js" defer></script>' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "no inline scripts (CSP)"
    assert not re.search(r"\son[a-z]+=", page), "no inline event handlers (CSP)"
    script = client.get("/static/checkin.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
    source = script.get_data(as_text=True)
    assert '"BarcodeDetector" in window' in source and "getUserMedia" in source
    script.close()
    assert "script-src 'self'" in client.get(checkin_url(event)).headers[
        "Content-Security-Policy"]


def test_the_door_is_linked_from_the_events_page(client, organizer, event):
    assert checkin_url(event) in text(client.get(f"/seller/events/{event.id}"))
    assert checkin_url(event) in text(client.get("/seller"))


def test_an_event_at_the_door_today_still_checks_in(client, organizer):
    soon = make_event(organizer, starts_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    ticket = ticket_of(soon)
    assert outcome_of(client.post(checkin_url(soon), data={"token": token_for(ticket)})) == \
        "admitted"
