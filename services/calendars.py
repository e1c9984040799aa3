"""An event as an iCalendar file (RFC 5545), for "Add to calendar".

The start is written in UTC (``…Z``), which every calendar reads the same way, and the
event's own zone is named beside it (``X-WR-TIMEZONE``, and in the description), so the
calendar shows the right moment wherever its owner is and says where the time is local.
Events have no end time here: the entry has none either (RFC 5545 then makes it end when it
starts) rather than an invented one.
"""

from __future__ import annotations

from datetime import datetime, timezone

from models import Event
from services import timezones

PRODUCT_ID = "-//Ticket Hub//Events//EN"
_LINE_OCTETS = 75


def _text(value: str) -> str:
    """A TEXT value escaped as RFC 5545 §3.3.11 says: backslash, semicolon, comma, newline."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def _fold(line: str) -> str:
    """One content line folded at 75 octets (§3.1), never inside a UTF-8 character."""
    parts, current, size = [], "", 0
    for ch in line:
        width = len(ch.encode())
        limit = _LINE_OCTETS if not parts else _LINE_OCTETS - 1  # continuation lines: " " + …
        if size + width > limit:
            parts.append(current)
            current, size = "", 0
        current += ch
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def event_ics(event: Event, *, url: str, host: str, now: datetime) -> str:
    """The VCALENDAR with ``event`` as its one VEVENT; ``url`` is its public page, ``host``
    the site's name (it makes the entry's UID unique worldwide)."""
    starts = timezones.when(event.starts_at, event.timezone)
    description = (f"Starts {starts} ({event.timezone} time).\n"
                   f"{event.description.strip()}\n\nTickets and details: {url}").strip()
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODUCT_ID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-TIMEZONE:{event.timezone}",
        "BEGIN:VEVENT",
        f"UID:event-{event.id}@{host}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(event.starts_at)}",
        f"SUMMARY:{_text(event.name)}",
        f"LOCATION:{_text(event.location)}",
        f"DESCRIPTION:{_text(description)}",
        f"URL:{url}",
        f"STATUS:{'CANCELLED' if event.is_cancelled else 'CONFIRMED'}",
        # A change (a new time, a cancellation) replaces the entry a calendar already has.
        f"SEQUENCE:{int(event.updated_at.timestamp()) if event.updated_at else 0}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
