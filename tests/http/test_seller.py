"""Organizers: the dashboard and the event form (/seller, /seller/events/new, …/edit)."""

from __future__ import annotations

import html
import io
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from extensions import db
from models import Event
from services.events import cancel_event
from tests.support.factories import event_form, image_bytes, in_days, make_event


def with_image(data: bytes, filename: str = "poster.png", **changes) -> dict:
    return {**event_form(**changes), "image": FileStorage(io.BytesIO(data), filename)}


def submit(client, url: str, form: dict):
    """POST ``form`` as the browser does (multipart), encoded in memory.

    The test client spools big bodies to a temporary file it never closes, which the
    warnings-are-errors setting turns into a failure of whichever test runs next.
    """
    boundary, body = encode_multipart(form)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def field_error(response, field: str) -> str | None:
    """The message shown under ``field``, or None."""
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page(response), re.S)
    return match.group(1) if match else None


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Event))


def uploaded_files() -> list[str]:
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def stored_event(event_id: int) -> Event:
    db.session.expire_all()
    return db.session.get(Event, event_id)


def event_id_from(response) -> int:
    match = re.fullmatch(r"/events/(\d+)", response.location)
    assert match, response.location
    return int(match.group(1))


# --------------------------------------------------------------------- creating


def test_an_organizer_publishes_an_event_through_the_form(client, organizer):
    assert client.get("/seller/events/new").status_code == 200

    response = submit(client, "/seller/events/new", with_image(image_bytes("JPEG"), "gig.jpg"))

    assert response.status_code == 303
    event_page = page(client.get(response.location))
    assert "Indie Night" in event_page
    assert "Brixton, London" in event_page
    assert "£12.50" in event_page
    event = stored_event(event_id_from(response))
    assert event.organizer_id == organizer.id
    assert event.price_pence == 1250 and event.total_tickets == 100
    assert uploaded_files() == [event.image_filename]
    assert f"/uploads/{event.image_filename}" in event_page


def test_an_event_without_an_image_is_fine(client, organizer):
    response = submit(client, "/seller/events/new", event_form(price="0"))

    assert response.status_code == 303
    assert stored_event(event_id_from(response)).image_filename is None
    assert "Free" in page(client.get(response.location))


def test_the_new_event_shows_on_the_organizers_dashboard_and_nobody_elses(client, auth, organizer):
    make_event(name="Somebody else's gig")
    submit(client, "/seller/events/new", event_form(name="My own gig"))

    dashboard = page(client.get("/seller"))

    assert "My own gig" in dashboard
    assert "Somebody else's gig" not in dashboard


BAD_FIELDS = [
    pytest.param("name", "", "Give the event a name.", id="empty name"),
    pytest.param("name", "   ", "Give the event a name.", id="blank name"),
    pytest.param("name", "x" * 121, "120 characters", id="name too long"),
    pytest.param("location", "", "Say where the event takes place.", id="empty location"),
    pytest.param("location", "x" * 201, "200 characters", id="location too long"),
    pytest.param("description", "x" * 5001, "5000 characters", id="description too long"),
    pytest.param("event_date", "", "Choose when the event starts.", id="no date"),
    pytest.param("event_date", "next friday", "YYYY-MM-DDTHH:MM", id="date not a date"),
    pytest.param("event_date", in_days(-1), "must be in the future", id="past date"),
    pytest.param("price", "", "Enter a price in pounds", id="no price"),
    pytest.param("price", "abc", "Enter the price as a number of pounds", id="price abc"),
    pytest.param("price", "1.234", "fractions of a penny", id="price 1.234"),
    pytest.param("price", "-5", "can't be negative", id="negative price"),
    pytest.param("price", "NaN", "Enter the price as a number of pounds", id="price NaN"),
    pytest.param("total_tickets", "0", "between 1 and 100,000", id="capacity 0"),
    pytest.param("total_tickets", "100001", "between 1 and 100,000", id="capacity 100001"),
    pytest.param("total_tickets", "ten", "whole number", id="capacity ten"),
    pytest.param("total_tickets", "-3", "whole number", id="negative capacity"),
    pytest.param("total_tickets", "2.5", "whole number", id="fractional capacity"),
]


@pytest.mark.parametrize("field, value, message", BAD_FIELDS)
def test_a_bad_field_is_pointed_out_and_nothing_is_published(
    client, organizer, field, value, message
):
    response = submit(
        client, "/seller/events/new", with_image(image_bytes("PNG"), **{field: value})
    )

    assert response.status_code == 422
    assert message in (field_error(response, field) or "")
    assert event_count() == 0
    assert uploaded_files() == []


def test_every_bad_field_is_pointed_out_at_once(client, organizer):
    response = submit(
        client, "/seller/events/new", event_form(name="", price="abc", total_tickets="0")
    )

    assert response.status_code == 422
    assert all(field_error(response, field) for field in ("name", "price", "total_tickets"))
    assert field_error(response, "location") is None


def test_a_refused_form_keeps_what_the_organizer_typed(client, organizer):
    response = submit(client, "/seller/events/new", event_form(name="Keep me", price="abc"))

    assert 'value="Keep me"' in page(response)
    assert 'value="abc"' in page(response)


@pytest.mark.parametrize(
    "data, filename",
    [
        pytest.param(b"hello, I am plain text\n" * 20, "poster.png", id="text renamed .png"),
        pytest.param(image_bytes("GIF"), "poster.gif", id="gif"),
        pytest.param(image_bytes("PNG") + b"\0" * (5 * 1024 * 1024), "huge.png", id="over 5 MB"),
    ],
)
def test_a_bad_image_is_refused_and_nothing_is_published(client, organizer, data, filename):
    response = submit(client, "/seller/events/new", with_image(data, filename))

    assert response.status_code == 422
    assert field_error(response, "image")
    assert event_count() == 0
    assert uploaded_files() == []


def test_an_upload_far_over_the_limit_gets_a_clear_answer(client, organizer):
    response = submit(
        client, "/seller/events/new", with_image(b"\0" * (6 * 1024 * 1024), "huge.png")
    )

    assert response.status_code == 413
    assert "at most 5 MB" in page(response)
    assert event_count() == 0
    assert uploaded_files() == []


# --------------------------------------------------------------------- editing


def test_the_edit_form_starts_from_the_events_details(client, organizer):
    event = make_event(organizer, name="Old name", price_pence=1250, total_tickets=40)

    form_page = page(client.get(f"/seller/events/{event.id}/edit"))

    assert 'value="Old name"' in form_page
    assert 'value="12.50"' in form_page
    assert 'value="40"' in form_page


def test_an_organizer_edits_their_event(client, organizer):
    event = make_event(organizer, name="Old name")

    response = submit(
        client, f"/seller/events/{event.id}/edit",
        event_form(name="New name", location="Hackney", price="7.05", total_tickets="25"),
    )

    assert response.status_code == 303
    assert response.location == f"/events/{event.id}"
    event_page = page(client.get(response.location))
    assert "New name" in event_page and "Hackney" in event_page and "£7.05" in event_page
    assert 'data-total="25"' in event_page


def test_a_new_image_replaces_the_old_one_and_its_file(client, organizer):
    response = submit(client, "/seller/events/new", with_image(image_bytes("PNG")))
    event_id = event_id_from(response)
    [old_file] = uploaded_files()

    submit(client, f"/seller/events/{event_id}/edit", with_image(image_bytes("JPEG"), "new.jpg"))

    new_file = stored_event(event_id).image_filename
    assert new_file != old_file
    assert uploaded_files() == [new_file]


def test_editing_without_an_image_keeps_the_current_one(client, organizer):
    response = submit(client, "/seller/events/new", with_image(image_bytes("PNG")))
    event_id = event_id_from(response)
    [image] = uploaded_files()

    submit(client, f"/seller/events/{event_id}/edit", event_form(name="Renamed"))

    assert stored_event(event_id).image_filename == image
    assert uploaded_files() == [image]


@pytest.mark.parametrize("field, value, message", BAD_FIELDS)
def test_a_bad_edit_is_pointed_out_and_changes_nothing(client, organizer, field, value, message):
    event = make_event(organizer, name="Original")

    response = submit(
        client, f"/seller/events/{event.id}/edit", with_image(image_bytes("PNG"), **{field: value})
    )

    assert response.status_code == 422
    assert message in (field_error(response, field) or "")
    assert stored_event(event.id).name == "Original"
    assert uploaded_files() == []


def test_a_cancelled_event_cannot_be_edited(client, organizer):
    event = make_event(organizer, name="Original")
    cancel_event(event_id=event.id, organizer_id=organizer.id, now=datetime.now(timezone.utc))

    for response in (client.get(f"/seller/events/{event.id}/edit"),
                     submit(client, f"/seller/events/{event.id}/edit", event_form(name="Revived"))):
        assert response.status_code == 303
        assert response.headers["Location"].endswith(f"/events/{event.id}")
    shown = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "This event was cancelled and can&#39;t be edited." in shown
    assert stored_event(event.id).name == "Original"
