"""``flask`` commands: ``flask seed-demo`` fills the database with a living demo site;
``flask seed ...`` makes exactly the accounts, events and tickets a test or a demo asks for.

``seed`` chains its commands, so one app start-up makes several things, each printing one
line (the new id first)::

    flask seed user --name Ann --email ann@example.com --password "correct horse battery" \
               event --organizer-email ann@example.com --capacity 1 --price-pence 1250
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from extensions import db
from models import EntryStatus, Event, User
from services import ServiceError, accounts, draws, events, queue, tickets
from services.events import EventDetails
from services.queue_reads import active_entry

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


DEMO_TIMEZONE = "Europe/London"


def _user(name: str, email: str) -> User:
    """A demo account, its address taken as confirmed (nothing is sent to it)."""
    existing = db.session.scalar(select(User).where(User.email == email))
    if existing is not None:
        if not existing.email_verified:  # made before addresses were confirmed
            accounts.mark_verified(user_id=existing.id, now=_now())
        return existing
    return accounts.register_user(name=name, email=email, password=DEMO_PASSWORD, now=_now(),
                                  verified=True)


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
        starts_at = (now + timedelta(days=days)).replace(
            hour=19, minute=30, second=0, microsecond=0)
        event = events.create_event(
            organizer_id=organizer.id,
            details=EventDetails(name, description, location, starts_at, price, capacity,
                                 DEMO_TIMEZONE),
            now=now,
        )
        lines.append(f"event {event.id}: {name}")
        if capacity <= 2:
            # A small event with a queue: every buyer joins, the first ones get offers.
            for buyer in buyers:
                queue.join_queue(event_id=event.id, user_id=buyer.id, now=now)
    lines += _fair_start_demo(organizers[1], now=now)
    for name, email in ORGANIZERS + BUYERS:
        lines.append(f"user {email} / {DEMO_PASSWORD} ({name})")
    return lines


FAIR_START_EVENT = "Summer Rooftop Sessions"


def _fair_start_demo(organizer: User, *, now: datetime) -> list[str]:
    """An event whose on-sale is 15 minutes away: join its lobby, watch the countdown, and see
    the draw give everyone a random place at the on-sale (and check it on the draw page)."""
    if any(e.name == FAIR_START_EVENT for e in events.events_of(organizer.id)):
        return []
    starts_at = (now + timedelta(days=45)).replace(hour=18, minute=0, second=0, microsecond=0)
    event = events.create_event(
        organizer_id=organizer.id, now=now,
        details=EventDetails(FAIR_START_EVENT, "A big night with few tickets: sales open "
                             "with a fair draw.", "Peckham, London", starts_at, 2500, 3,
                             DEMO_TIMEZONE, now + timedelta(minutes=15)))
    return [f"event {event.id}: {FAIR_START_EVENT} (on sale in 15 minutes: join its lobby)"]


seed = AppGroup("seed", chain=True, help="Make accounts, events and tickets (chainable).")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _existing_user(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == accounts.normalize_email(email)))
    if user is None:
        raise click.ClickException(f"No account has the email {email}.")
    return user


def _service_errors_as_messages(command):
    """A service's refusal ends the command with its message (exit status 1), no traceback."""
    def run(**options):
        try:
            command(**options)
        except ServiceError as error:
            raise click.ClickException(str(error)) from error
    run.__name__, run.__doc__ = command.__name__, command.__doc__
    return run


@seed.command("user")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--unverified", is_flag=True,
              help="Leave the address unconfirmed and send the link to confirm it, as a "
                   "sign-up does.")
@_service_errors_as_messages
def seed_user(name: str, email: str, password: str, unverified: bool) -> None:
    """An account whose address is taken as confirmed (unless --unverified); prints its id."""
    click.echo(accounts.register_user(name=name, email=email, password=password, now=_now(),
                                      verified=not unverified).id)


@seed.command("event")
@click.option("--organizer-email", required=True, help="An existing account's email.")
@click.option("--name", default="Seeded gig")
@click.option("--description", default="A night out.")
@click.option("--location", default="Hackney, London")
@click.option("--capacity", type=int, default=10, show_default=True)
@click.option("--price-pence", type=int, default=1250, show_default=True)
@click.option("--starts-in-hours", type=float, default=24, show_default=True,
              help="Negative: an event already under way.")
@click.option("--timezone", "zone", default="Europe/London", show_default=True,
              help="The IANA time zone its times are shown in.")
@click.option("--sale-starts-in-minutes", type=float, default=None,
              help="Schedule the on-sale this many minutes from now (joins before it wait in "
                   "the lobby and are drawn at that time).")
@_service_errors_as_messages
def seed_event(organizer_email: str, name: str, description: str, location: str,
               capacity: int, price_pence: int, starts_in_hours: float, zone: str,
               sale_starts_in_minutes: float | None) -> None:
    """A published event; prints its id."""
    organizer, now = _existing_user(organizer_email), _now()
    starts_at = now + timedelta(hours=starts_in_hours)
    sale_starts_at = (None if sale_starts_in_minutes is None
                      else now + timedelta(minutes=sale_starts_in_minutes))
    # The form (and the service) refuse a past start: one already under way is made as
    # tomorrow's and then moved back, as time would have moved it.
    details = EventDetails(name, description, location, max(starts_at, now + timedelta(days=1)),
                           price_pence, capacity, zone, sale_starts_at)
    event = events.create_event(organizer_id=organizer.id, details=details, now=now)
    if starts_at < now:
        event.starts_at = starts_at
        db.session.commit()
    click.echo(event.id)


@seed.command("join")
@click.option("--event", "event_id", type=int, required=True)
@click.option("--email", required=True)
@_service_errors_as_messages
def seed_join(event_id: int, email: str) -> None:
    """Join the event's waiting list as that account; prints the entry's id and status."""
    entry = queue.join_queue(event_id=event_id, user_id=_existing_user(email).id, now=_now())
    click.echo(f"{entry.id} {entry.status}")


@seed.command("release")
@click.option("--event", "event_id", type=int, required=True)
@click.option("--email", required=True)
@_service_errors_as_messages
def seed_release(event_id: int, email: str) -> None:
    """Decline that account's offer or leave the waiting list (its Release or Leave button);
    prints the entry's id and why it ended."""
    entry = queue.release(event_id=event_id, user_id=_existing_user(email).id, now=_now())
    click.echo(f"{entry.id} {entry.end_reason}")


@seed.command("ticket")
@click.option("--event", "event_id", type=int, required=True)
@click.option("--email", required=True)
@_service_errors_as_messages
def seed_ticket(event_id: int, email: str) -> None:
    """A paid ticket for that account: its live offer is bought (joining first, when a
    ticket is free, if it holds none). Prints the ticket's id, its QR token and its door
    code."""
    user, now = _existing_user(email), _now()
    entry = active_entry(event_id, user.id) or queue.join_queue(event_id=event_id,
                                                               user_id=user.id, now=now)
    if entry.status != EntryStatus.OFFERED:
        raise click.ClickException(f"{email} holds no offer for event {event_id} "
                                   f"({entry.status}).")
    ticket = queue.complete_purchase(entry_id=entry.id, user_id=user.id, now=now,
                                     payment_reference=f"seed-{entry.id}",
                                     amount_pence=db.session.get(Event, event_id).price_pence)
    click.echo(f"{ticket.id} {tickets.token_for(ticket)} {ticket.door_code}")


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Fill the database with demo organizers, buyers and events."""
        for line in seed_demo():
            click.echo(line)

    app.cli.add_command(seed)

    @app.cli.command("verify-draw")
    @click.argument("event_id", type=int)
    def verify_draw_command(event_id: int):
        """Recompute an event's fair-start draw from its seed and check every stored place."""
        event = db.session.get(Event, event_id)
        record = draws.draw_record(event) if event is not None else None
        if record is None:
            raise click.ClickException(f"Event {event_id} has no on-sale draw.")
        if not record.drawn:
            click.echo(f"Not drawn yet; commitment {record.commitment}.")
            return
        problems = draws.verify(seed=record.seed, commitment=record.commitment,
                                event_id=event_id, places=record.places)
        if problems:
            raise click.ClickException("The draw does not check out: " + "; ".join(problems))
        click.echo(f"The draw checks out: the seed matches the commitment and all "
                   f"{len(record.places)} places follow from it.")
