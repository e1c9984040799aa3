"""Email headers are built, never formatted: whatever a person or an event is called, a
message goes to its one recipient and can still be sent (``services/mail.py``)."""

from __future__ import annotations

import email
from datetime import datetime, timezone
from email import policy
from email.utils import getaddresses
from pathlib import Path

import pytest

from extensions import db
from services import notifications, queue
from tests.support.factories import make_event, make_user

NOW = datetime.now(timezone.utc)


@pytest.fixture
def app(any_db_app):
    """Every test here on SQLite and on PostgreSQL."""
    return any_db_app


def offer_email(app, *, buyer, event) -> tuple[email.message.EmailMessage, bytes]:
    """``buyer`` is offered a ticket to ``event``; the offer email as written to
    ``instance/mail/`` (parsed, and its raw bytes)."""
    entry = queue.join_queue(event_id=event.id, user_id=buyer.id, now=NOW)
    key = notifications.send("offer_made", entry.id)  # what the worker runs
    raw = (Path(app.config["INSTANCE_PATH"]) / "mail" / f"{key}.eml").read_bytes()
    return email.message_from_bytes(raw, policy=policy.default), raw


def recipients(message) -> list[tuple[str, str]]:
    """Everyone an SMTP server would deliver ``message`` to."""
    return getaddresses([str(value) for header in ("To", "Cc", "Bcc")
                         for value in message.get_all(header, [])])


def assert_sendable(message, raw: bytes) -> None:
    """The message parses without defects and serialises as SMTP would send it."""
    assert message.defects == []
    for header in ("To", "Subject"):
        assert message[header].defects == (), header
    assert b"\r" not in raw
    message.as_bytes(policy=policy.SMTP)


def test_a_name_with_a_comma_and_an_address_adds_no_recipient(app):
    mallory = make_user(name="Mallory, victim@evil.example", email="mallory@example.com")

    message, raw = offer_email(app, buyer=mallory, event=make_event(name="Jazz Night"))

    assert recipients(message) == [("Mallory, victim@evil.example", "mallory@example.com")]
    assert_sendable(message, raw)


def test_a_name_with_line_breaks_cannot_add_a_header(app):
    mallory = make_user(name="Mallory\r\nBcc: victim@evil.example", email="mallory@example.com")

    message, raw = offer_email(app, buyer=mallory, event=make_event())

    assert recipients(message) == [("Mallory Bcc: victim@evil.example", "mallory@example.com")]
    assert message.get_all("Bcc") is None
    assert_sendable(message, raw)


def test_an_event_name_with_line_breaks_still_makes_a_sendable_email(app):
    event = make_event(name="Jazz Night")
    # Saved before names were checked, or by a path that does not check them.
    event.name = "Jazz\r\nNight\nBcc: victim@evil.example"
    db.session.commit()
    ann = make_user(name="Ann", email="ann@example.com")

    message, raw = offer_email(app, buyer=ann, event=event)

    assert message["Subject"] == "A ticket is held for you: Jazz Night Bcc: victim@evil.example"
    assert message.get_all("Bcc") is None
    assert recipients(message) == [("Ann", "ann@example.com")]
    assert_sendable(message, raw)


def test_an_international_address_is_written_as_mail_servers_expect(app):
    zoe = make_user(name="Zoë", email="zoe@straße.example")

    message, raw = offer_email(app, buyer=zoe, event=make_event())

    assert recipients(message) == [("Zoë", "zoe@xn--strae-oqa.example")]
    assert raw.isascii()
    assert_sendable(message, raw)


def test_links_in_emails_use_the_configured_address(app):
    app.config["BASE_URL"] = "https://tickets.example/hub/"
    event = make_event()

    message, _ = offer_email(app, buyer=make_user(), event=event)

    assert f"https://tickets.example/hub/events/{event.id}" in message.get_body(
        ("plain",)).get_content()
