"""``flask`` commands: ``flask seed-demo`` fills the database with a living demo site."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click
from flask import Flask
from sqlalchemy import select

from extensions import db
from models import User
from services import accounts, events, queue
from services.events import EventDetails

DEMO_PASSWORD = "demo-password"

ORGANIZERS = [
    ("Ada Organiser", "ada@example.com"),
    ("Brixton Live", "brixton@example.com"),
]
BUYERS = [
    ("Sam Buyer", "sam@example.com"),
    ("Priya Buyer", "priya@example.com"),
    ("Tom Buyer", "tom@example.com"),
]
EVENTS = [
    # organizer index, name, location, days ahead, price in pence, capacity, description
    (0, "Jazz in the Crypt", "St Martin-in-the-Fields, London", 9, 1800, 120,
     "An evening of modern jazz by candlelight."),
    (0, "Python Meetup: Async Without Tears", "Shoreditch, London", 16, 0, 60,
     "Talks and pizza. Free, but places are limited."),
    (1, "Indie Night", "Brixton, London", 23, 1250, 2,
     "Three bands, one tiny room. Very few tickets."),
    (1, "Sunday Folk Session", "Hackney, London", 30, 900, 40,
     "Bring an instrument or just listen."),
]


def _user(name: str, email: str) -> User:
    existing = db.session.scalar(select(User).where(User.email == email))
    return existing or accounts.register_user(name=name, email=email, password=DEMO_PASSWORD)


def seed_demo() -> list[str]:
    """Create demo organizers, buyers, events and a queue; safe to run twice."""
    now = datetime.now(timezone.utc)
    organizers = [_user(*row) for row in ORGANIZERS]
    buyers = [_user(*row) for row in BUYERS]
    lines = []
    for org, name, location, days, price, capacity, description in EVENTS:
        organizer = organizers[org]
        if any(e.name == name for e in events.events_of(organizer.id)):
            continue
        starts_at = (now + timedelta(days=days)).replace(hour=19, minute=30, second=0, microsecond=0)
        event = events.create_event(
            organizer_id=organizer.id,
            details=EventDetails(name, description, location, starts_at, price, capacity),
            now=now,
        )
        lines.append(f"event {event.id}: {name}")
        if capacity <= 2:
            # A small event with a queue: every buyer joins, the first ones get offers.
            for buyer in buyers:
                queue.join_queue(event_id=event.id, user_id=buyer.id, now=now)
    for name, email in ORGANIZERS + BUYERS:
        lines.append(f"user {email} / {DEMO_PASSWORD} ({name})")
    return lines


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Fill the database with demo organizers, buyers and events."""
        for line in seed_demo():
            click.echo(line)
