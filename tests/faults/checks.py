"""What every fault test checks at the end, on the server's own database and mailbox."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from sqlalchemy import select

from extensions import db
from models import OutboxItem
from tests.support.invariants import assert_queue_invariants
from tests.support.live_server import LiveServer, wait_for
from tests.support.smtp_server import SMTPServer

# The subjects of the emails the tests count (services/notifications.py), up to the event name.
OFFER_MADE = "A ticket is held for you: "
TICKET_PURCHASED = "Your ticket: "


def undone_outbox_rows(server: LiveServer) -> list[str]:
    """The outbox rows due by now and not acted on yet, described for an assertion message.
    (An offer's deadline row waits for that deadline: it is not due yet.)"""
    with server.app_context():
        rows = db.session.scalars(select(OutboxItem).where(
            OutboxItem.done_at.is_(None), OutboxItem.run_at <= datetime.now(timezone.utc)))
        return [f"{row!r} attempts={row.attempts} error={row.last_error}" for row in rows]


def wait_until_outbox_done(server: LiveServer, *, timeout: float) -> None:
    wait_for(lambda: undone_outbox_rows(server), until=lambda rows: rows == [],
             timeout=timeout, what="every outbox row due acted on")


def emails_to(smtp: SMTPServer, subject: str) -> Counter:
    """How many emails whose subject starts with ``subject`` each address received."""
    return Counter(m.to for m in smtp.messages if m.subject.startswith(subject))


def wait_for_one_each(smtp: SMTPServer, subject: str, emails: list[str], *,
                      timeout: float) -> None:
    """Wait until every address in ``emails`` has received an email with ``subject``."""
    smtp.wait_until(lambda messages: set(emails) <= {m.to for m in messages
                                                     if m.subject.startswith(subject)},
                    timeout=timeout, what=f"{subject!r} to each of {len(emails)} people")


def assert_emailed_once_each(server: LiveServer, smtp: SMTPServer, emails: list[str],
                             *subjects: str, timeout: float = 30) -> None:
    """Wait until every address has an email with each subject and every follow-up due is
    done (nothing more can be sent then); then each arrived exactly once."""
    for subject in subjects:
        wait_for_one_each(smtp, subject, emails, timeout=timeout)
    wait_until_outbox_done(server, timeout=timeout)
    for subject in subjects:
        received = emails_to(smtp, subject)
        assert received == {email: 1 for email in emails}, f"{subject!r}: {received}"


def assert_nothing_lost(server: LiveServer, event_id: int) -> None:
    """Every follow-up acted on, and the queue's invariants hold on the server's database."""
    undone = undone_outbox_rows(server)
    assert undone == [], f"outbox rows left undone: {undone}"
    with server.app_context():
        assert_queue_invariants(event_id)
