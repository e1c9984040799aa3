"""The outbox: a transition's follow-ups commit with it, survive a broker outage, a lost task
and a killed worker, and are acted on once however often they are delivered."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

import tasks
from extensions import db
from models import OutboxItem
from services import mail, outbox, queue
from tests.support.factories import make_event, make_user

NOW = datetime.now(timezone.utc)


def rows() -> list[OutboxItem]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The keys of the emails actually delivered, in order (duplicates included)."""
    delivered: list[str] = []
    real = mail.deliver

    def deliver(message, *, key):
        delivered.append(key)
        real(message, key=key)

    monkeypatch.setattr(mail, "deliver", deliver)
    return delivered


@pytest.fixture
def broker_down(monkeypatch):
    """A dispatcher that fails as Huey does when Redis is unreachable."""

    def refuse(handover):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(outbox, "_dispatcher", refuse)


def lease() -> timedelta:
    return outbox.lease()


def test_a_transition_writes_its_follow_ups_in_its_own_transaction(any_db_app, sent):
    event = make_event(total_tickets=1)
    ann = make_user()
    entry = queue.join_queue(event_id=event.id, user_id=ann.id, now=NOW)
    kinds = [(row.kind, row.args) for row in rows()]
    assert kinds == [("expire_offer", [entry.id]), ("send_notification", ["offer_made", entry.id])]
    deadline, email = rows()
    assert deadline.run_at == entry.offer_expires_at and deadline.done_at is None  # not yet due
    assert email.done_at is not None and email.attempts == 1
    assert sent == [f"offer_made-{entry.id}"]


def test_a_refused_transition_leaves_no_follow_up(any_db_app, sent):
    event = make_event(total_tickets=1)
    ann = make_user()
    queue.join_queue(event_id=event.id, user_id=ann.id, now=NOW)
    before = len(rows())
    with pytest.raises(queue.QueueError):
        queue.join_queue(event_id=event.id, user_id=ann.id, now=NOW)
    assert len(rows()) == before
    assert len(sent) == 1


def test_with_the_broker_down_the_transition_commits_and_the_relay_delivers_later(
        any_db_app, sent, broker_down, monkeypatch):
    event = make_event(total_tickets=1)
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    assert entry.status == "offered"  # the user's action succeeded
    assert sent == []
    assert [row.handed_at for row in rows()] == [None, None]  # marked for the relay
    monkeypatch.setattr(outbox, "_dispatcher", tasks.dispatch)  # the broker is back
    assert outbox.relay_due(now=NOW) == 2
    assert sent == [f"offer_made-{entry.id}"]
    email = rows()[1]
    assert email.done_at is not None
    # Handed over already: the next passes leave both rows alone (the deadline is not due).
    assert outbox.relay_due(now=NOW + timedelta(seconds=5)) == 0
    assert sent == [f"offer_made-{entry.id}"]


def test_a_row_delivered_twice_is_acted_on_once(any_db_app, sent):
    event = make_event(total_tickets=1)
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    email = rows()[1]
    assert tasks.send_notification.call_local("offer_made", entry.id, outbox_id=email.id) is None
    assert sent == [f"offer_made-{entry.id}"]
    assert rows()[1].attempts == 1


def test_a_lost_task_is_handed_over_again_after_the_lease(any_db_app, sent, monkeypatch):
    handed: list[outbox.Handover] = []
    monkeypatch.setattr(outbox, "_dispatcher", handed.append)  # the broker loses them
    event = make_event(total_tickets=1)
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    assert len(handed) == 2 and sent == []
    assert outbox.relay_due(now=NOW + lease() / 2) == 0  # still trusted to the queue
    monkeypatch.setattr(outbox, "_dispatcher", tasks.dispatch)
    assert outbox.relay_due(now=NOW + lease() + timedelta(seconds=1)) == 1  # the email
    assert sent == [f"offer_made-{entry.id}"]
    # The deadline row is handed over again only a lease after the deadline itself.
    later = entry.offer_expires_at + lease() + timedelta(seconds=1)
    assert outbox.relay_due(now=later) == 1
    assert all(row.done_at is not None for row in rows()[:2])


def test_a_failed_action_releases_its_row_for_the_next_delivery(any_db_app, sent, monkeypatch):
    monkeypatch.setattr(outbox, "_dispatcher", lambda handover: None)
    event = make_event(total_tickets=1)
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    email = rows()[1]

    def smtp_down(message, *, key):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(mail, "deliver", smtp_down)
    with pytest.raises(ConnectionRefusedError):
        tasks.send_notification.call_local("offer_made", entry.id, outbox_id=email.id)
    email = rows()[1]
    assert email.done_at is None and email.claimed_until is None
    assert email.last_error == "ConnectionRefusedError: mail server down"
    monkeypatch.undo()
    tasks.send_notification.call_local("offer_made", entry.id, outbox_id=email.id)
    assert rows()[1].done_at is not None and rows()[1].attempts == 2


def test_a_worker_killed_mid_task_leaves_a_claim_that_lapses(any_db_app, sent, monkeypatch):
    monkeypatch.setattr(outbox, "_dispatcher", lambda handover: None)
    then = NOW - 3 * lease()  # workers claim on the real clock: start the story back then
    event = make_event(total_tickets=1, now=then)
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=then)
    email = rows()[1]
    assert outbox.claim(email.id, now=then)  # the worker took it, then died
    assert not outbox.claim(email.id, now=then + lease() / 2)  # nobody else acts meanwhile
    monkeypatch.setattr(outbox, "_dispatcher", tasks.dispatch)
    assert outbox.relay_due(now=then + lease() / 2) == 0
    assert outbox.relay_due(now=NOW) >= 1
    assert sent == [f"offer_made-{entry.id}"]
    assert rows()[1].done_at is not None


def test_the_backlog_counts_what_is_due_and_not_done(any_db_app, broker_down):
    event = make_event(total_tickets=1)
    entry = queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    backlog = outbox.backlog(now=NOW + timedelta(seconds=40))
    assert backlog.due == 1  # the email; the deadline is not due yet
    assert backlog.lag_seconds(NOW + timedelta(seconds=40)) == pytest.approx(40, abs=1)
    assert outbox.backlog(now=entry.offer_expires_at).due == 2


def test_rows_done_a_week_ago_are_pruned(any_db_app, sent):
    event = make_event(total_tickets=1)
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=NOW)
    assert outbox.prune(now=NOW + timedelta(days=8)) == 1  # the email; the deadline is pending
    assert [row.kind for row in rows()] == ["expire_offer"]
