"""Events: organizers create and edit them, everybody searches them (services/events.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from itertools import count

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Event
from services import Forbidden, queue, queue_reads
from services.events import (
    EventDetails,
    EventError,
    cancel_event,
    create_event,
    search_upcoming,
    update_event,
)
from tests.support.factories import make_event, make_user

NOW = datetime.now(timezone.utc).replace(microsecond=0)
_payments = count(1)


def details(**changes) -> EventDetails:
    base = EventDetails(
        name="Jazz in the Crypt",
        description="Modern jazz by candlelight.",
        location="St Martin-in-the-Fields, London",
        starts_at=NOW + timedelta(days=10),
        price_pence=1800,
        total_tickets=120,
    )
    return replace(base, **changes)


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Event))


def sell_tickets(event: Event, how_many: int) -> None:
    """Buyers join the queue and pay for the ticket they are offered."""
    for _ in range(how_many):
        buyer = make_user()
        entry = queue.join_queue(event_id=event.id, user_id=buyer.id, now=NOW)
        queue.complete_purchase(
            entry_id=entry.id, user_id=buyer.id, payment_reference=f"pay-{next(_payments)}",
            amount_pence=event.price_pence, now=NOW,
        )


def cancel(event: Event) -> None:
    cancel_event(event_id=event.id, organizer_id=event.organizer_id, now=NOW)


# --------------------------------------------------------------------- creating


def test_an_organizer_publishes_an_event_with_tidied_details(app):
    organizer = make_user()

    event = create_event(
        organizer_id=organizer.id,
        details=details(name="  Jazz night ", location=" Soho ", description=" Bring friends. "),
        now=NOW,
    )

    stored = db.session.get(Event, event.id)
    assert stored.name == "Jazz night"
    assert stored.location == "Soho"
    assert stored.description == "Bring friends."
    assert stored.organizer_id == organizer.id
    assert stored.price_pence == 1800 and stored.total_tickets == 120
    assert stored.starts_at == NOW + timedelta(days=10)
    assert stored.image_filename is None



def bad(changes: dict, field: str, message: str, id: str):
    return pytest.param(changes, field, message, id=id)


BAD_DETAILS = [
    bad({"name": ""}, "name", "Give the event a name", "empty name"),
    bad({"name": "   "}, "name", "Give the event a name", "blank name"),
    bad({"name": "x" * 121}, "name", "at most 120", "name too long"),
    bad({"location": ""}, "location", "where the event takes place", "empty location"),
    bad({"location": "x" * 201}, "location", "at most 200", "location too long"),
    bad({"description": "x" * 5001}, "description", "at most 5000", "description too long"),
    bad({"starts_at": NOW - timedelta(minutes=1)}, "event_date", "in the future", "past date"),
    bad({"starts_at": NOW}, "event_date", "in the future", "starts right now"),
    bad({"price_pence": -1}, "price", "can't be negative", "negative price"),
    bad({"total_tickets": 0}, "total_tickets", "between 1 and 100,000", "capacity 0"),
    bad({"total_tickets": 100_001}, "total_tickets", "between 1 and 100,000", "capacity 100001"),
]


@pytest.mark.parametrize("changes, field, message", BAD_DETAILS)
def test_an_event_with_bad_details_is_refused_and_nothing_is_stored(app, changes, field, message):
    organizer = make_user()

    with pytest.raises(EventError) as caught:
        create_event(organizer_id=organizer.id, details=details(**changes), now=NOW)

    assert caught.value.field == field
    assert message in str(caught.value)
    assert event_count() == 0


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"total_tickets": 1}, id="capacity 1"),
        pytest.param({"total_tickets": 100_000}, id="capacity 100000"),
        pytest.param({"price_pence": 0}, id="free"),
        pytest.param(
            {"name": "x" * 120, "location": "y" * 200, "description": "z" * 5000},
            id="longest texts",
        ),
    ],
)
def test_details_at_the_limits_are_accepted(app, changes):
    event = create_event(organizer_id=make_user().id, details=details(**changes), now=NOW)
    assert event.id is not None


# --------------------------------------------------------------------- editing


def test_the_organizer_changes_an_events_details(app):
    event = make_event(now=NOW)

    update_event(
        event_id=event.id, organizer_id=event.organizer_id,
        details=details(name="Moved gig", location="Brixton", price_pence=999, total_tickets=5),
        now=NOW,
    )

    stored = db.session.get(Event, event.id)
    assert (stored.name, stored.location, stored.price_pence, stored.total_tickets) == (
        "Moved gig", "Brixton", 999, 5,
    )


@pytest.mark.parametrize("changes, field, message", BAD_DETAILS)
def test_an_edit_with_bad_details_is_refused_and_changes_nothing(app, changes, field, message):
    event = make_event(now=NOW, name="Original")

    with pytest.raises(EventError) as caught:
        update_event(event_id=event.id, organizer_id=event.organizer_id,
                     details=details(**changes), now=NOW)

    assert caught.value.field == field
    db.session.expire_all()
    assert db.session.get(Event, event.id).name == "Original"


def test_capacity_cannot_drop_below_the_tickets_already_sold(app):
    event = make_event(now=NOW, total_tickets=5)
    sell_tickets(event, 3)

    with pytest.raises(EventError) as caught:
        update_event(event_id=event.id, organizer_id=event.organizer_id,
                     details=details(total_tickets=2), now=NOW)

    assert caught.value.field == "total_tickets"
    assert "3 sold" in str(caught.value)
    db.session.expire_all()
    assert db.session.get(Event, event.id).total_tickets == 5


def test_capacity_can_drop_to_exactly_the_tickets_sold(app):
    event = make_event(now=NOW, total_tickets=5)
    sell_tickets(event, 3)

    update_event(event_id=event.id, organizer_id=event.organizer_id,
                 details=details(total_tickets=3), now=NOW)

    availability = queue_reads.availability(db.session.get(Event, event.id), now=NOW)
    assert (availability.total, availability.sold, availability.remaining) == (3, 3, 0)


def test_only_the_organizer_may_edit_an_event(app):
    event = make_event(now=NOW, name="Original")
    stranger = make_user()

    with pytest.raises(Forbidden):
        update_event(event_id=event.id, organizer_id=stranger.id,
                     details=details(name="Hijacked"), now=NOW)

    db.session.expire_all()
    assert db.session.get(Event, event.id).name == "Original"


def test_a_cancelled_event_cannot_be_edited(app):
    event = make_event(now=NOW, name="Original")
    cancel(event)

    with pytest.raises(EventError, match="cancelled"):
        update_event(event_id=event.id, organizer_id=event.organizer_id,
                     details=details(name="Revived"), now=NOW)

    db.session.expire_all()
    assert db.session.get(Event, event.id).name == "Original"


# --------------------------------------------------------------------- searching


def upcoming(q: str = "", *, page: int = 1, per_page: int = 12) -> list[str]:
    results = search_upcoming(q=q, page=page, per_page=per_page, now=NOW)
    return [event.name for event in results.items]


def event_in(days: float, name: str, **fields):
    return make_event(now=NOW, name=name, starts_at=NOW + timedelta(days=days),
                      description=fields.pop("description", ""), **fields)


def test_upcoming_events_are_listed_soonest_first(app):
    event_in(20, "Later")
    event_in(1, "Tomorrow")
    event_in(7, "Next week")

    assert upcoming() == ["Tomorrow", "Next week", "Later"]


def test_past_and_cancelled_events_are_not_listed(app):
    event_in(3, "Still to come")
    cancel(event_in(2, "Called off"))
    make_event(now=NOW - timedelta(days=10), name="Last week",
               starts_at=NOW - timedelta(days=3))

    assert upcoming() == ["Still to come"]


@pytest.mark.parametrize(
    "q", ["jazz", "JAZZ", "candle", "CRYPT", "london", " jazz "],
)
def test_search_matches_name_description_and_location_ignoring_case(app, q):
    event_in(1, "Jazz Night", description="By candlelight", location="The Crypt, London")
    event_in(2, "Folk Session", description="Bring a fiddle", location="Hackney")

    assert upcoming(q) == ["Jazz Night"]


def test_search_finds_nothing_when_nothing_matches(app):
    event_in(1, "Jazz Night")

    assert upcoming("opera") == []


def test_search_skips_past_and_cancelled_matches(app):
    event_in(4, "Jazz to come")
    cancel(event_in(2, "Jazz called off"))
    make_event(now=NOW - timedelta(days=10), name="Jazz of old", starts_at=NOW - timedelta(days=3))

    assert upcoming("jazz") == ["Jazz to come"]


@pytest.mark.parametrize(
    "q, expected",
    [
        ("%", ["100% fun"]),
        ("100%", ["100% fun"]),
        ("_", ["snake_case meetup"]),
        ("snake_case", ["snake_case meetup"]),
    ],
)
def test_percent_and_underscore_in_a_search_are_taken_literally(app, q, expected):
    event_in(1, "100% fun")
    event_in(2, "1000 fans")
    event_in(3, "snake_case meetup")
    event_in(4, "snakeXcase meetup")

    assert upcoming(q) == expected


def test_results_come_a_page_at_a_time(app):
    for day in range(1, 6):
        event_in(day, f"Day {day}")

    first = search_upcoming(page=1, per_page=2, now=NOW)
    assert [e.name for e in first.items] == ["Day 1", "Day 2"]
    assert (first.total, first.pages, first.has_next) == (5, 3, True)
    assert upcoming(page=2, per_page=2) == ["Day 3", "Day 4"]
    assert upcoming(page=3, per_page=2) == ["Day 5"]
    assert upcoming(page=4, per_page=2) == []
