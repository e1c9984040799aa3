"""The door: a ticket's signed QR token, or its short door code, admits its holder once, and
only to its own event.

Every test runs on SQLite and on PostgreSQL (``any_db_app``).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from extensions import db
from models import DOOR_CODE_ALPHABET, AuditEntry, Ticket
from services import queue, queue_reads, tickets
from services.tickets import CheckInOutcome, check_in, door_tally, token_for
from tests.support.factories import make_event, make_user, utc
from tests.support.invariants import assert_queue_invariants

T0 = utc(2030, 1, 1, 12, 0)
DOORS = T0 + timedelta(days=7, hours=-1)  # an hour before the show


@pytest.fixture
def app_db(any_db_app):
    return any_db_app


def gig(capacity: int = 10, name: str = "Test gig"):
    return make_event(now=T0, name=name, total_tickets=capacity, starts_at=T0 + timedelta(days=7))


def buy_ticket(event, buyer=None, at=T0) -> Ticket:
    """A buyer joins (offered at once) and pays: a valid ticket."""
    buyer = buyer or make_user()
    entry = queue.join_queue(event_id=event.id, user_id=buyer.id, now=at)
    return queue.complete_purchase(entry_id=entry.id, user_id=buyer.id,
                                   payment_reference=f"pay-{entry.id}", amount_pence=1250, now=at)


def check_ins_recorded() -> list[tuple]:
    """(ticket, holder, who checked it in, when) for every check-in in the audit trail."""
    db.session.rollback()
    return [(a.ticket_id, a.subject_id, a.actor_id, a.created_at) for a in db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "checked_in").order_by(AuditEntry.id))]


def stored(ticket: Ticket) -> Ticket:
    db.session.rollback()
    return db.session.get(Ticket, ticket.id)


def test_a_valid_ticket_admits_once_then_reads_already_used(app_db):
    event = gig()
    ticket = buy_ticket(event, make_user(name="Ann"))
    token = token_for(ticket)

    first = check_in(event_id=event.id, token=token, now=DOORS)
    assert first.outcome == CheckInOutcome.ADMITTED and first.admitted
    assert first.ticket.user.name == "Ann"
    assert (first.tally.checked_in, first.tally.live) == (1, 1)
    assert stored(ticket).status == "used"
    assert stored(ticket).checked_in_at == DOORS

    again = check_in(event_id=event.id, token=token, now=DOORS + timedelta(minutes=5))
    assert again.outcome == CheckInOutcome.ALREADY_USED and not again.admitted
    assert again.ticket.checked_in_at == DOORS  # when it was used, not now
    assert (again.tally.checked_in, again.tally.live) == (1, 1)
    assert check_ins_recorded() == [(ticket.id, ticket.user_id, None, DOORS)]


def test_the_audit_trail_says_who_checked_the_ticket_in_and_when(app_db):
    organizer = make_user(name="Olive")
    event = make_event(organizer, now=T0, starts_at=T0 + timedelta(days=7))
    ticket = buy_ticket(event)
    check_in(event_id=event.id, token=token_for(ticket), now=DOORS, actor_id=organizer.id)
    check_in(event_id=event.id, token=token_for(ticket), now=DOORS, actor_id=organizer.id)
    assert check_ins_recorded() == [(ticket.id, ticket.user_id, organizer.id, DOORS)]


def test_checking_in_changes_no_availability_a_used_ticket_is_still_sold(app_db):
    event = gig(capacity=2)
    ticket = buy_ticket(event)
    check_in(event_id=event.id, token=token_for(ticket), now=DOORS)
    counts = assert_queue_invariants(event.id)
    assert counts["sold"] == 1
    assert queue_reads.availability(db.session.get(type(event), event.id), now=DOORS).remaining == 1


def test_a_pasted_token_with_spaces_around_it_still_admits(app_db):
    event = gig()
    ticket = buy_ticket(event)
    result = check_in(event_id=event.id, token=f"  {token_for(ticket)}\n", now=DOORS)
    assert result.outcome == CheckInOutcome.ADMITTED


def tampered(token: str) -> str:
    """Change one character of the signed payload."""
    i = 3
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


@pytest.mark.parametrize("mangle", [
    pytest.param(tampered, id="tampered"),
    pytest.param(lambda token: token[: len(token) // 2], id="truncated"),
    pytest.param(lambda token: token.rsplit(".", 1)[0], id="signature-cut-off"),
    pytest.param(lambda token: "not a ticket at all", id="garbage"),
])
def test_a_forged_or_unreadable_token_is_refused_and_admits_nobody(app_db, mangle):
    event = gig()
    ticket = buy_ticket(event)
    result = check_in(event_id=event.id, token=mangle(token_for(ticket)), now=DOORS)
    assert result.outcome == CheckInOutcome.INVALID
    assert "forged or unreadable" in result.message
    assert result.ticket is None
    assert stored(ticket).status == "valid"
    assert (result.tally.checked_in, result.tally.live) == (0, 1)
    assert check_ins_recorded() == []


def test_a_token_signed_with_another_key_is_refused(app_db):
    event = gig()
    ticket = buy_ticket(event)
    token = token_for(ticket)
    app_db.config["SECRET_KEY"] = "someone-elses-key"
    try:
        forged = token_for(ticket)
    finally:
        app_db.config["SECRET_KEY"] = "test-secret"
    assert forged != token
    assert check_in(event_id=event.id, token=forged, now=DOORS).outcome == CheckInOutcome.INVALID
    assert stored(ticket).status == "valid"


def test_a_ticket_for_another_event_is_refused_and_stays_valid(app_db):
    tonight, other_night = gig(name="Tonight"), gig(name="Another night")
    ticket = buy_ticket(other_night)
    result = check_in(event_id=tonight.id, token=token_for(ticket), now=DOORS)
    assert result.outcome == CheckInOutcome.WRONG_EVENT
    assert stored(ticket).status == "valid"
    # …and it still gets its holder into the right event.
    right = check_in(event_id=other_night.id, token=token_for(ticket), now=DOORS)
    assert right.outcome == CheckInOutcome.ADMITTED


def test_a_refunded_ticket_is_refused(app_db):
    event = gig()
    ticket = buy_ticket(event)
    token = token_for(ticket)
    queue.refund_ticket_seat(ticket_id=ticket.id, now=T0 + timedelta(days=1))
    result = check_in(event_id=event.id, token=token, now=DOORS)
    assert result.outcome == CheckInOutcome.REFUNDED
    assert "refunded" in result.message
    assert stored(ticket).status == "refunded" and stored(ticket).checked_in_at is None
    assert (result.tally.checked_in, result.tally.live) == (0, 0)


def test_a_cancelled_ticket_is_refused(app_db):
    event = gig()
    ticket = buy_ticket(event)
    queue.void_ticket(ticket_id=ticket.id, now=T0 + timedelta(minutes=1))
    result = check_in(event_id=event.id, token=token_for(ticket), now=DOORS)
    assert result.outcome == CheckInOutcome.REFUNDED
    assert "cancelled" in result.message


def test_a_signed_token_for_a_ticket_that_does_not_exist_is_refused(app_db):
    event = gig()
    ghost = Ticket(id=999_999, event_id=event.id)
    result = check_in(event_id=event.id, token=token_for(ghost), now=DOORS)
    assert result.outcome == CheckInOutcome.INVALID


def test_the_tally_counts_live_tickets_and_those_checked_in(app_db):
    event = gig()
    bought = [buy_ticket(event) for _ in range(4)]
    queue.refund_ticket_seat(ticket_id=bought[3].id, now=T0 + timedelta(hours=1))
    for ticket in bought[:2]:
        check_in(event_id=event.id, token=token_for(ticket), now=DOORS)
    tally = door_tally(event.id)
    assert (tally.checked_in, tally.live) == (2, 3)


@pytest.mark.concurrency
def test_two_phones_checking_one_ticket_in_at_once_admit_it_exactly_once(app_db):
    event = gig()
    ticket = buy_ticket(event)
    token = token_for(ticket)
    phones = 8
    barrier = threading.Barrier(phones)

    def phone(_):
        with app_db.app_context():
            try:
                barrier.wait(timeout=30)
                return tickets.check_in(event_id=event.id, token=token, now=DOORS).outcome
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=phones) as pool:
        outcomes = Counter(pool.map(phone, range(phones)))

    assert outcomes == {CheckInOutcome.ADMITTED: 1, CheckInOutcome.ALREADY_USED: phones - 1}
    assert stored(ticket).status == "used"
    assert door_tally(event.id).checked_in == 1
    assert len(check_ins_recorded()) == 1


# ------------------------------------------------------------------ door codes


def test_every_ticket_gets_a_short_code_of_its_own_in_an_unambiguous_alphabet(app_db):
    event = gig()
    codes = [buy_ticket(event).door_code for _ in range(5)]
    assert len(set(codes)) == 5
    for code in codes:
        assert len(code) == 10 and set(code) <= set(DOOR_CODE_ALPHABET)
        assert not set(code) & set("ILOU")


@pytest.mark.parametrize("typed", [
    pytest.param(lambda code: code, id="as-stored"),
    pytest.param(lambda code: f"{code[:5]}-{code[5:]}".lower(), id="grouped-lowercase"),
    pytest.param(lambda code: f"  {code[:5]} {code[5:]}\n", id="spaces"),
])
def test_a_typed_door_code_admits_once_then_reads_already_used(app_db, typed):
    event = gig()
    ticket = buy_ticket(event)

    admitted = check_in(event_id=event.id, token=typed(ticket.door_code), now=DOORS)
    again = check_in(event_id=event.id, token=typed(ticket.door_code), now=DOORS)

    assert admitted.outcome == CheckInOutcome.ADMITTED and admitted.ticket.id == ticket.id
    assert again.outcome == CheckInOutcome.ALREADY_USED
    assert stored(ticket).status == "used" and stored(ticket).checked_in_at == DOORS
    assert [row[0] for row in check_ins_recorded()] == [ticket.id]


def test_letters_that_look_like_digits_are_read_as_the_digits(app_db):
    event = gig()
    ticket = buy_ticket(event)
    ticket.door_code = "10A0B1C0D1"  # a code with the digits people mistype as letters
    db.session.commit()
    result = check_in(event_id=event.id, token="IOa0-bLcOdl", now=DOORS)
    assert result.outcome == CheckInOutcome.ADMITTED


def test_a_wrong_door_code_is_refused_and_admits_nobody(app_db):
    event = gig()
    ticket = buy_ticket(event)
    wrong = ("0" if ticket.door_code[0] != "0" else "1") + ticket.door_code[1:]
    result = check_in(event_id=event.id, token=wrong, now=DOORS)
    assert result.outcome == CheckInOutcome.INVALID
    assert result.message == "No ticket has this code. Check it with the holder and type it again."
    assert result.ticket is None and stored(ticket).status == "valid"
    assert check_ins_recorded() == []


def test_a_door_code_of_another_event_is_refused_and_stays_valid(app_db):
    tonight, other_night = gig(name="Tonight"), gig(name="Another night")
    ticket = buy_ticket(other_night)
    result = check_in(event_id=tonight.id, token=ticket.door_code, now=DOORS)
    assert result.outcome == CheckInOutcome.WRONG_EVENT
    assert stored(ticket).status == "valid"


def test_a_refunded_tickets_door_code_admits_nobody(app_db):
    event = gig()
    ticket = buy_ticket(event)
    queue.refund_ticket_seat(ticket_id=ticket.id, now=T0 + timedelta(days=1))
    result = check_in(event_id=event.id, token=ticket.door_code, now=DOORS)
    assert result.outcome == CheckInOutcome.REFUNDED
    assert stored(ticket).checked_in_at is None
