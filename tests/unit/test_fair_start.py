"""Fair start: the lobby before a scheduled on-sale, and the draw that turns it into a line,
with a moving clock on SQLite and PostgreSQL. The draw's order is recomputed here from the
contract's rule alone (HMAC-SHA256 of "{event_id}:{entry_ref}" under the seed), not from
services/draws.py."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from extensions import db
from models import AuditAction, AuditEntry, EntryStatus, Event, OutboxItem
from services import NotFound, draws, events, queue, queue_reads
from services.events import EventDetails, EventError
from services.queue import QueueError
from services.queue_reads import ViewerStatus
from tests.support.factories import make_event, make_user, utc
from tests.support.invariants import assert_queue_invariants

T0 = utc(2030, 6, 1, 8, 0)
ON_SALE = T0 + timedelta(hours=1)


@pytest.fixture
def app_db(any_db_app):
    return any_db_app


def on_sale_event(capacity: int = 2, **fields) -> Event:
    return make_event(now=T0, total_tickets=capacity, starts_at=T0 + timedelta(days=7),
                      sale_starts_at=ON_SALE, timezone="Europe/London", **fields)


def join(event, user, at):
    return queue.join_queue(event_id=event.id, user_id=user.id, now=at)


def status_of(event, user, at):
    return queue_reads.queue_status(event_id=event.id, user_id=user.id, now=at)


def reload(event) -> Event:
    db.session.rollback()
    return db.session.get(Event, event.id)


def contract_order(seed: str, event_id: int, refs) -> list[str]:
    """The order ../shared/CONTRACT.md promises, written out independently."""
    def key(ref):
        return hmac.new(bytes.fromhex(seed), f"{event_id}:{ref}".encode(),
                        hashlib.sha256).hexdigest()
    return sorted(refs, key=key)


def test_scheduling_an_on_sale_commits_to_a_seed_before_anyone_joins(app_db):
    event = on_sale_event()
    assert len(event.draw_seed) == 64 and event.drawn_at is None
    assert event.draw_commitment == hashlib.sha256(bytes.fromhex(event.draw_seed)).hexdigest()
    task = db.session.scalar(select(OutboxItem).where(OutboxItem.kind == "draw_lobby"))
    assert task.args == [event.id] and task.run_at == ON_SALE


def test_joins_before_the_on_sale_wait_in_the_lobby_with_no_place_and_no_offer(app_db):
    event, ann, bob = on_sale_event(capacity=5), make_user(), make_user()
    for person, minutes in ((ann, 1), (bob, 2)):
        entry = join(event, person, T0 + timedelta(minutes=minutes))
        assert entry.in_lobby and entry.offered_at is None and len(entry.ref) == 16
    status = status_of(event, ann, T0 + timedelta(minutes=3))
    assert status.status == ViewerStatus.LOBBY and status.position is None
    assert status.lobby_size == 2 and status.sale_starts_at == ON_SALE
    event = reload(event)
    assert (event.lobby_count, event.waiting_count, event.offered_count) == (2, 0, 0)
    with pytest.raises(QueueError, match="already in the lobby"):
        join(event, ann, T0 + timedelta(minutes=4))
    assert_queue_invariants(event.id)


def test_leaving_the_lobby_is_allowed_and_frees_no_place(app_db):
    event, ann, bob = on_sale_event(), make_user(), make_user()
    join(event, ann, T0)
    join(event, bob, T0)
    left = queue.release(event_id=event.id, user_id=ann.id, now=T0 + timedelta(minutes=5))
    assert left.status == EntryStatus.EXPIRED
    assert reload(event).lobby_count == 1
    assert_queue_invariants(event.id)
    again = join(event, ann, T0 + timedelta(minutes=6))  # and rejoining, with a new reference
    assert again.in_lobby and again.ref != left.ref
    assert_queue_invariants(event.id)


def test_the_draw_orders_the_lobby_by_the_contracts_rule_and_offers_the_first(app_db):
    event = on_sale_event(capacity=3)
    people = [make_user() for _ in range(8)]
    for n, person in enumerate(people):
        join(event, person, T0 + timedelta(minutes=n))
    refs = {person.id: queue_reads.latest_entry(event_id=event.id, user_id=person.id).ref
            for person in people}

    assert queue.draw_lobby(event_id=event.id, now=ON_SALE - timedelta(seconds=1)) is False
    assert queue.draw_lobby(event_id=event.id, now=ON_SALE) is True
    assert queue.draw_lobby(event_id=event.id, now=ON_SALE + timedelta(seconds=1)) is False

    event = reload(event)
    expected = contract_order(event.draw_seed, event.id, refs.values())
    record = draws.draw_record(event)
    assert record.drawn and record.seed == event.draw_seed
    assert [ref for _, ref in record.places] == expected
    assert [place for place, _ in record.places] == list(range(1, 9))
    owner_of = {ref: person for person in people for ref in [refs[person.id]]}
    for place, ref in enumerate(expected, start=1):
        status = status_of(event, owner_of[ref], ON_SALE)
        if place <= 3:
            assert status.status == ViewerStatus.OFFERED
        else:
            assert (status.status, status.position) == (ViewerStatus.WAITING, place)
    assert (event.lobby_count, event.offered_count, event.waiting_count) == (0, 3, 5)
    assert draws.verify(seed=record.seed, commitment=record.commitment, event_id=event.id,
                        places=record.places) == []
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.DRAWN))
    assert "8 in the lobby" in audit.reason and event.draw_commitment in audit.reason
    emails = db.session.scalars(select(OutboxItem.args).where(
        OutboxItem.kind == "send_notification")).all()
    assert sum(args[0] == "place_drawn" for args in emails) == 5
    assert sum(args[0] == "offer_made" for args in emails) == 3
    assert_queue_invariants(event.id)


def test_a_tampered_record_does_not_verify(app_db):
    event = on_sale_event()
    for n in range(3):
        join(event, make_user(), T0 + timedelta(minutes=n))
    queue.draw_lobby(event_id=event.id, now=ON_SALE)
    record = draws.draw_record(reload(event))
    swapped = [(1, record.places[1][1]), (2, record.places[0][1]), record.places[2]]
    assert "the places are not in the order the seed gives" in draws.verify(
        seed=record.seed, commitment=record.commitment, event_id=event.id, places=swapped)
    assert draws.verify(seed="00" * 32, commitment=record.commitment, event_id=event.id,
                        places=record.places)[0].startswith("the seed does not match")


def test_joins_after_the_on_sale_line_up_behind_the_lobby_and_the_first_read_draws(app_db):
    event, early, late = on_sale_event(capacity=1), make_user(), make_user()
    join(event, early, T0)
    # No worker ran: the late join's own transition draws the lobby first.
    entry = join(event, late, ON_SALE + timedelta(seconds=3))
    assert (entry.seq, entry.status) == (2, EntryStatus.WAITING)
    event = reload(event)
    assert event.drawn_at == ON_SALE + timedelta(seconds=3)
    assert status_of(event, early, ON_SALE + timedelta(seconds=4)).status == ViewerStatus.OFFERED
    assert status_of(event, late, ON_SALE + timedelta(seconds=4)).position == 2
    assert_queue_invariants(event.id)


def test_a_reader_after_the_on_sale_draws_with_the_worker_down(app_db):
    event = on_sale_event()
    join(event, make_user(), T0)
    clock = queue_reads.event_clock(event.id)
    assert not clock.needs_refresh(ON_SALE - timedelta(seconds=1))
    assert clock.needs_refresh(ON_SALE)
    assert queue.refresh_event(event_id=event.id, now=ON_SALE) == 0  # no offer expired...
    assert reload(event).drawn_at == ON_SALE  # ...but the lobby was drawn
    assert not queue_reads.event_clock(event.id).needs_refresh(ON_SALE)


def test_the_minute_sweep_draws_lobbies_whose_task_never_ran(app_db):
    event = on_sale_event()
    join(event, make_user(), T0)
    assert queue.draw_due_lobbies(now=ON_SALE - timedelta(seconds=1)) == 0
    assert queue.draw_due_lobbies(now=ON_SALE + timedelta(seconds=30)) == 1
    assert queue.draw_due_lobbies(now=ON_SALE + timedelta(seconds=90)) == 0


def test_an_empty_lobby_is_drawn_and_sales_open_first_come_first_served(app_db):
    event, ann = on_sale_event(), make_user()
    entry = join(event, ann, ON_SALE + timedelta(minutes=1))
    assert entry.status == EntryStatus.OFFERED and entry.seq == 1
    assert reload(event).draw_size == 0
    assert draws.draw_record(reload(event)).places == []


def test_a_cancelled_event_closes_its_lobby_and_never_draws(app_db):
    event = on_sale_event()
    ann = make_user()
    join(event, ann, T0)
    events.cancel_event(event_id=event.id, organizer_id=event.organizer_id,
                        now=T0 + timedelta(minutes=5))
    assert queue.draw_lobby(event_id=event.id, now=ON_SALE) is False
    assert status_of(event, ann, ON_SALE).status == ViewerStatus.EXPIRED
    assert reload(event).lobby_count == 0
    assert_queue_invariants(event.id)


def details_of(event: Event, **changes) -> EventDetails:
    fields = {"name": event.name, "description": event.description,
              "location": event.location, "starts_at": event.starts_at,
              "price_pence": event.price_pence, "total_tickets": event.total_tickets,
              "timezone": event.timezone, "sale_starts_at": event.sale_starts_at}
    fields.update(changes)
    return EventDetails(**fields)


def test_moving_the_on_sale_keeps_the_commitment_and_the_lobby(app_db):
    event = on_sale_event()
    join(event, make_user(), T0)
    seed, commitment = event.draw_seed, event.draw_commitment
    later = ON_SALE + timedelta(hours=2)
    events.update_event(event_id=event.id, organizer_id=event.organizer_id,
                        details=details_of(event, sale_starts_at=later),
                        now=T0 + timedelta(minutes=10))
    event = reload(event)
    assert (event.draw_seed, event.draw_commitment, event.lobby_count) == (seed, commitment, 1)
    # The task scheduled for the old time runs and changes nothing; the new time draws.
    assert queue.draw_lobby(event_id=event.id, now=ON_SALE) is False
    assert queue.draw_lobby(event_id=event.id, now=later) is True


@pytest.mark.parametrize("change, message", [
    ("remove", "waiting in the lobby"),
    ("after_draw", "lobby was drawn"),
])
def test_on_sale_changes_that_would_break_the_promise_are_refused(app_db, change, message):
    event = on_sale_event()
    join(event, make_user(), T0)
    moment = T0 + timedelta(minutes=5)
    new_time = None
    if change == "after_draw":
        queue.draw_lobby(event_id=event.id, now=ON_SALE)
        moment, new_time = ON_SALE + timedelta(minutes=1), ON_SALE + timedelta(hours=3)
    with pytest.raises(EventError, match=message):
        events.update_event(event_id=event.id, organizer_id=event.organizer_id,
                            details=details_of(reload(event), sale_starts_at=new_time),
                            now=moment)


def test_an_on_sale_can_only_be_set_before_anyone_joins(app_db):
    event = make_event(now=T0, total_tickets=2, starts_at=T0 + timedelta(days=7))
    join(event, make_user(), T0)
    with pytest.raises(EventError, match="Sales are already open"):
        events.update_event(event_id=event.id, organizer_id=event.organizer_id,
                            details=details_of(event, sale_starts_at=ON_SALE), now=T0)


def test_drafts_cannot_be_joined_and_are_drawn_only_once_published(app_db):
    organizer = make_user()
    event = events.create_event(
        organizer_id=organizer.id, now=T0, draft=True,
        details=EventDetails("Draft gig", "", "Leeds", T0 + timedelta(days=7), 1000, 5,
                             "Europe/London", ON_SALE))
    with pytest.raises(NotFound):
        join(event, make_user(), T0)
    assert queue.draw_due_lobbies(now=ON_SALE) == 0
    with pytest.raises(EventError, match="on-sale time has passed"):
        events.publish_event(event_id=event.id, organizer_id=organizer.id, now=ON_SALE)
    events.publish_event(event_id=event.id, organizer_id=organizer.id, now=T0)
    assert join(event, make_user(), T0).in_lobby


def test_lobby_pages_ask_rarely_then_spread_their_first_ask_after_the_on_sale(app_db):
    import random

    rng = random.Random(7)
    lobby = queue_reads.QueueStatus(ViewerStatus.LOBBY, sale_starts_at=ON_SALE, lobby_size=5000)
    far = [queue_reads.poll_seconds(lobby, now=ON_SALE - timedelta(hours=1), rng=rng)
           for _ in range(200)]
    assert 48 <= min(far) and max(far) <= 72  # every ~minute, with jitter
    near = [queue_reads.poll_seconds(lobby, now=ON_SALE - timedelta(seconds=10), rng=rng)
            for _ in range(500)]
    spread = queue_reads.lobby_spread_seconds(5000)  # 100 s for 5,000 people, capped at 60
    assert spread == 60
    assert all(11 <= s <= 10 + 1 + spread + 1 for s in near)  # all after the on-sale...
    assert len(set(near)) > 40  # ...and spread out, not at one instant
    small = queue_reads.QueueStatus(ViewerStatus.LOBBY, sale_starts_at=ON_SALE, lobby_size=10)
    assert queue_reads.poll_seconds(small, now=ON_SALE - timedelta(seconds=10), rng=rng) <= 14
    assert queue_reads.poll_seconds(small, now=ON_SALE + timedelta(seconds=1), rng=rng) == 2


def test_a_london_on_sale_at_ten_bst_draws_500_people_into_a_checkable_line(app_db):
    """The issue's scenario: an organizer in London schedules the on-sale for 10:00 BST,
    500 buyers wait in the lobby, and at 10:00 they get random places, the first offers."""
    from services.timezones import to_utc

    ten_bst = to_utc(datetime(2030, 7, 5, 10, 0), "Europe/London").utc
    assert ten_bst == utc(2030, 7, 5, 9, 0)
    organizer = make_user()
    event = events.create_event(
        organizer_id=organizer.id, now=T0,
        details=EventDetails("Summer gig", "", "Camden", utc(2030, 8, 1, 19), 2500, 50,
                             "Europe/London", ten_bst))
    buyers = [make_user() for _ in range(500)]
    for n, buyer in enumerate(buyers):
        assert join(event, buyer, ten_bst - timedelta(hours=2, seconds=-n)).in_lobby
    assert queue.draw_lobby(event_id=event.id, now=ten_bst - timedelta(seconds=1)) is False
    assert queue.draw_due_lobbies(now=ten_bst) == 1

    event = reload(event)
    record = draws.draw_record(event)
    refs = [queue_reads.latest_entry(event_id=event.id, user_id=b.id).ref for b in buyers]
    assert [ref for _, ref in record.places] == contract_order(record.seed, event.id, refs)
    assert (event.offered_count, event.waiting_count, event.draw_size) == (50, 450, 500)
    assert event.drawn_at == ten_bst
    assert_queue_invariants(event.id)
