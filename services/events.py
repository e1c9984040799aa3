"""Events: organizers create and edit them; everybody browses them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import or_, select

from extensions import db
from models import AuditEntry, Event, Ticket, User
from services import (
    Forbidden,
    NotFound,
    ServiceError,
    draws,
    images,
    outbox,
    queue,
    queue_reads,
    timezones,
)
from services.locking import UnitOfWork
from services.text import text_problem

MAX_NAME = 120
MAX_LOCATION = 200
MAX_DESCRIPTION = 5000
MAX_CAPACITY = 100_000
MAX_PRICE_PENCE = 1_000_000  # £10,000


class EventError(ServiceError):
    pass


@dataclass(frozen=True)
class EventDetails:
    """What an organizer types into the event form, parsed."""

    name: str
    description: str
    location: str
    starts_at: datetime
    price_pence: int
    total_tickets: int
    timezone: str = timezones.UTC  # an IANA name: where the event's times are wall-clock
    sale_starts_at: datetime | None = None  # the on-sale: joins before it wait in the lobby


def detail_problems(*, name: str, description: str, location: str, starts_at: datetime | None,
                    price_pence: int | None, total_tickets: int | None, now: datetime,
                    timezone: str | None = timezones.UTC, sale_starts_at: datetime | None = None,
                    current_sale_starts_at: datetime | None = None) -> dict[str, str]:
    """Every rule an event's details break, as {form field: message}; ``None`` skips a check.

    Returning them all lets the form show every problem at once.
    """
    problems: dict[str, str] = {}
    name, location, description = name.strip(), location.strip(), description.strip()
    if not name:
        problems["name"] = "Give the event a name."
    elif len(name) > MAX_NAME:
        problems["name"] = f"Names can be at most {MAX_NAME} characters."
    if not location:
        problems["location"] = "Say where the event takes place."
    elif len(location) > MAX_LOCATION:
        problems["location"] = f"Locations can be at most {MAX_LOCATION} characters."
    if len(description) > MAX_DESCRIPTION:
        problems["description"] = f"Descriptions can be at most {MAX_DESCRIPTION} characters."
    for field, text, multiline in (("name", name, False), ("location", location, False),
                                   ("description", description, True)):
        problem = text_problem(text, multiline=multiline)
        if problem:
            problems.setdefault(field, problem)
    if starts_at is not None and starts_at <= now:
        problems["event_date"] = "The event date must be in the future."
    if price_pence is not None and price_pence < 0:
        problems["price"] = "The price can't be negative."
    elif price_pence is not None and price_pence > MAX_PRICE_PENCE:
        problems["price"] = "The price can be at most £10,000.00."
    if total_tickets is not None and not 1 <= total_tickets <= MAX_CAPACITY:
        problems["total_tickets"] = f"Capacity must be between 1 and {MAX_CAPACITY:,} tickets."
    if timezone is not None and not timezones.is_zone(timezone):
        problems["timezone"] = "Choose the time zone from the list, like Europe/London."
    if sale_starts_at is not None and sale_starts_at != current_sale_starts_at:
        if sale_starts_at <= now:
            problems["sale_starts_at"] = ("The on-sale time must be in the future (leave it "
                                          "empty to open sales on saving).")
    if sale_starts_at is not None and starts_at is not None and sale_starts_at >= starts_at:
        problems.setdefault("sale_starts_at", "Sales must open before the event starts.")
    return problems


def _check(details: EventDetails, *, now: datetime,
           current_sale_starts_at: datetime | None = None) -> EventDetails:
    problems = detail_problems(**details.__dict__, now=now,
                               current_sale_starts_at=current_sale_starts_at)
    if problems:
        field, message = next(iter(problems.items()))
        raise EventError(message, field=field)
    return EventDetails(details.name.strip(), details.description.strip(),
                        details.location.strip(), details.starts_at,
                        details.price_pence, details.total_tickets, details.timezone,
                        details.sale_starts_at)


def _schedule_on_sale(event: Event, *, now: datetime) -> None:
    """An on-sale time set or moved: commit the draw's seed (once) and have a worker draw the
    lobby at that time (a read or write after it draws too, should no worker be running)."""
    if event.sale_starts_at is None or event.drawn_at is not None:
        return
    draws.commit_seed(event)
    outbox.add("draw_lobby", event.id, now=now, run_at=event.sale_starts_at)


def _check_on_sale_change(event: Event, details: EventDetails) -> None:
    """What an on-sale time may become once people have joined."""
    if details.sale_starts_at == event.sale_starts_at:
        return
    if event.drawn_at is not None:
        raise EventError("The on-sale has happened and its lobby was drawn: its time can't "
                         "change any more.", field="sale_starts_at")
    if details.sale_starts_at is None and event.lobby_count:
        who = "1 person is" if event.lobby_count == 1 else f"{event.lobby_count} people are"
        raise EventError(f"{who} waiting in the lobby for the on-sale: move its time instead "
                         "of removing it.", field="sale_starts_at")
    if event.sale_starts_at is None and event.last_seq:
        raise EventError("Sales are already open (people have joined): an on-sale time can "
                         "only be set before anyone joins.", field="sale_starts_at")


def _check_can_sell(organizer_id: int, price_pence: int) -> None:
    """With real payments, paid tickets need the organizer's Stripe account to take charges."""
    if price_pence and current_app.config["PAYMENTS"] == "stripe":
        organizer = db.session.get(User, organizer_id)
        if not organizer.stripe_charges_enabled:
            raise EventError("Set up payouts with Stripe (Sell → Payouts) before selling paid "
                             "tickets. Free events can be published now.", field="price")


def _store_image(image: bytes | None) -> str | None:
    if image is None:
        return None
    return images.store_event_image(
        image, folder=_upload_folder(), max_bytes=current_app.config["MAX_IMAGE_BYTES"]
    )


def _upload_folder() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"])


def create_event(*, organizer_id: int, details: EventDetails, image: bytes | None = None,
                 now: datetime, draft: bool = False) -> Event:
    """Save a new event, published at once unless ``draft``. Raises EventError (or
    ImageError) and stores nothing on bad input."""
    details = _check(details, now=now)
    _check_can_sell(organizer_id, details.price_pence)
    image_name = _store_image(image)
    event = Event(organizer_id=organizer_id, image_filename=image_name,
                  published_at=None if draft else now, **details.__dict__)
    try:
        with UnitOfWork(now=now):
            db.session.add(event)
            db.session.flush()
            _schedule_on_sale(event, now=now)
    except Exception:
        images.delete_event_image(image_name, folder=_upload_folder())
        raise
    return event


def update_event(*, event_id: int, organizer_id: int, details: EventDetails,
                 image: bytes | None = None, now: datetime) -> Event:
    """Change an event its organizer owns.

    Capacity may not drop below the tickets sold plus the offers currently held; raising it
    offers the new tickets to the people waiting, in the same transaction.
    """
    current = get_owned_event(event_id=event_id, user_id=organizer_id)
    details = _check(details, now=now, current_sale_starts_at=current.sale_starts_at)
    _check_can_sell(organizer_id, details.price_pence)
    image_name = _store_image(image)
    try:
        with queue.transition(event_id, now=now) as event:
            if event.is_cancelled:
                raise EventError("This event was cancelled and can't be edited.")
            held = event.sold_count + event.offered_count
            if details.total_tickets < held:
                raise EventError(
                    f"Capacity can't be below {held}: {event.sold_count} sold and "
                    f"{event.offered_count} held in offers right now.",
                    field="total_tickets",
                )
            _check_on_sale_change(event, details)
            moved = details.sale_starts_at != event.sale_starts_at
            old_image = event.image_filename
            for key, value in details.__dict__.items():
                setattr(event, key, value)
            if moved:
                _schedule_on_sale(event, now=now)
            if image_name:
                event.image_filename = image_name
            event.queue_version += 1  # the status fragment shows price and capacity
            queue.offer_next(event, now=now)
    except Exception:
        images.delete_event_image(image_name, folder=_upload_folder())
        raise
    if image_name:
        images.delete_event_image(old_image, folder=_upload_folder())
    return event


def get_event(event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None:
        raise NotFound("We couldn't find that event.")
    return event


def get_visible_event(event_id: int, *, viewer_id: Callable[[], int | None]) -> Event:
    """The event as a public page shows it: a draft only to its organizer (NotFound to
    everyone else, as if it did not exist). ``viewer_id`` is asked only for a draft (it
    may cost loading the signed-in user)."""
    event = get_event(event_id)
    if not event.is_published and event.organizer_id != viewer_id():
        raise NotFound("We couldn't find that event.")
    return event


def get_published_event(event_id: int) -> Event:
    """The event, if published (shared fragments are the same for everyone: no drafts)."""
    return get_visible_event(event_id, viewer_id=lambda: None)


def publish_event(*, event_id: int, organizer_id: int, now: datetime) -> Event:
    """Publish a draft: it appears in the listings and people can join."""
    get_owned_event(event_id=event_id, user_id=organizer_id)
    with queue.transition(event_id, now=now) as event:
        if event.is_cancelled:
            raise EventError("This event was cancelled and can't be published.")
        if event.is_published:
            raise EventError("This event is already published.")
        if event.sale_starts_at is not None and event.sale_starts_at <= now:
            raise EventError("Its on-sale time has passed: set a new one (or none) first.",
                             field="sale_starts_at")
        event.published_at = now
        event.queue_version += 1
    return event


def get_owned_event(*, event_id: int, user_id: int) -> Event:
    """The event, if ``user_id`` organizes it: NotFound if none, Forbidden if another's."""
    event = get_event(event_id)
    if event.organizer_id != user_id:
        raise Forbidden("Only the event's organizer can do that.")
    return event


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class ListingState:
    """What an event's card in the listings says about getting a ticket."""

    kind: str  # one of ListingState.KINDS
    remaining: int
    sale_starts_at: datetime | None = None

    NOT_YET, ON_SALE, FEW_LEFT, SOLD_OUT = "not-yet", "on-sale", "few-left", "sold-out"
    KINDS = (NOT_YET, ON_SALE, FEW_LEFT, SOLD_OUT)


def few_left(total: int) -> int:
    """How few remaining tickets count as "few": a tenth of the capacity, at least 2 and at
    most 10."""
    return min(10, max(2, total // 10))


def listing_state(event: Event, *, now: datetime) -> ListingState:
    """On sale, few left, sold out (the waiting list is open), or on sale later."""
    remaining = queue_reads.availability(event, now=now).remaining
    if event.sale_starts_at is not None and event.sale_starts_at > now:
        return ListingState(ListingState.NOT_YET, remaining, event.sale_starts_at)
    if remaining == 0:
        return ListingState(ListingState.SOLD_OUT, 0)
    if remaining <= few_left(event.total_tickets):
        return ListingState(ListingState.FEW_LEFT, remaining)
    return ListingState(ListingState.ON_SALE, remaining)


def search_upcoming(*, q: str = "", page: int = 1, per_page: int = 12, now: datetime):
    """Upcoming, not-cancelled events, soonest first, optionally matching ``q``."""
    query = select(Event).where(Event.starts_at > now, Event.cancelled_at.is_(None),
                                Event.published_at.is_not(None))
    q = q.strip()[:100]
    if q:
        pattern = _like(q)
        query = query.where(or_(
            Event.name.ilike(pattern, escape="\\"),
            Event.description.ilike(pattern, escape="\\"),
            Event.location.ilike(pattern, escape="\\"),
        ))
    query = query.order_by(Event.starts_at, Event.id)
    return db.paginate(query, page=page, per_page=per_page, error_out=False, count=True)


def events_of(organizer_id: int) -> list[Event]:
    """An organizer's events, the next ones first and past ones last."""
    return list(db.session.scalars(
        select(Event).where(Event.organizer_id == organizer_id).order_by(Event.starts_at.desc())
    ))


def cancel_event(*, event_id: int, organizer_id: int, now: datetime) -> Event:
    """Cancel an event its organizer owns: it leaves the listings, its queue closes, open
    payments close, and every ticket is refunded (the money by outbox tasks). The organizer
    is emailed once it is done, with what it did."""
    get_owned_event(event_id=event_id, user_id=organizer_id)
    with queue.transition(event_id, now=now) as event:
        if event.is_cancelled:
            raise EventError("This event is already cancelled.")
        event.cancelled_at = now
        queue.close_queue(event, now=now, actor_id=organizer_id)
        outbox.add("send_notification", "cancellation_done", event.id, now=now)
    return event


def tickets_of_event(event_id: int) -> list[Ticket]:
    """Every ticket of an event, newest first (for its organizer)."""
    return list(db.session.scalars(
        select(Ticket).where(Ticket.event_id == event_id).order_by(Ticket.id.desc())
    ))


def audit_trail(event_id: int, *, limit: int = 200) -> list[AuditEntry]:
    """The event's latest queue and ticket transitions, newest first."""
    return list(db.session.scalars(
        select(AuditEntry).where(AuditEntry.event_id == event_id)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
    ))
