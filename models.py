"""SQLAlchemy models and the constraints the database itself enforces. Nothing else.

Rules the queue relies on are enforced here, not only in code:

* one active (waiting or offered) waiting-list entry per user per event
  (partial unique index ``uq_entry_active_user``);
* one live (valid or used) ticket per user per event (``uq_ticket_live_user``);
* ``sold_count + offered_count <= total_tickets`` on the event row, so even a bug in the
  queue service cannot commit an oversold event.

Money is integer pence. Times are stored as naive UTC and read back as aware UTC.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timezone

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """An aware UTC ``datetime`` in Python, a naive UTC timestamp in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def _partial(where: str) -> dict:
    """Dialect options for a partial index, on both SQLite and PostgreSQL."""
    return {"sqlite_where": text(where), "postgresql_where": text(where)}


class EntryStatus:
    WAITING = "waiting"
    OFFERED = "offered"
    PURCHASED = "purchased"
    EXPIRED = "expired"
    ALL = (WAITING, OFFERED, PURCHASED, EXPIRED)
    ACTIVE = (WAITING, OFFERED)


class EndReason:
    """Why an entry stopped being active; shown to the buyer and kept for the audit."""

    PURCHASED = "purchased"
    OFFER_EXPIRED = "offer_expired"
    DECLINED = "declined"  # released an offer
    LEFT = "left"  # left the queue while waiting
    EVENT_CANCELLED = "event_cancelled"
    ALL = (PURCHASED, OFFER_EXPIRED, DECLINED, LEFT, EVENT_CANCELLED)


class TicketStatus:
    VALID = "valid"
    USED = "used"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    ALL = (VALID, USED, REFUNDED, CANCELLED)
    LIVE = (VALID, USED)


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# A ticket's door code: Crockford's base32 (no I, L, O or U: the door reads a typed I or L
# as 1 and O as 0), random per ticket. 10 characters are 50 bits: nobody guesses one, yet
# it is typed in seconds. The door looks it up (services/tickets.py): it proves nothing by
# itself, unlike the QR code's signed token.
DOOR_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DOOR_CODE_LENGTH = 10


def new_door_code() -> str:
    return "".join(secrets.choice(DOOR_CODE_ALPHABET) for _ in range(DOOR_CODE_LENGTH))


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        # One account per person: every spelling of one mailbox (``name+tag@``, Gmail's dots)
        # has the same key, so the one-entry-per-user rules of the queue are per person.
        Index("uq_users_person_key", "person_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Stored lower-cased, so uniqueness ignores case on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # The person behind ``email`` (services/accounts.py ``person_key``). Set on every account
    # the app writes; nullable only because the migration adds it to rows that exist.
    person_key: Mapped[str | None] = mapped_column(String(254))
    # None until the address is confirmed by the link sent to it; joining a queue needs it.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A new address asked for on /account: it replaces ``email`` once confirmed from itself.
    pending_email: Mapped[str | None] = mapped_column(String(254))
    # Deleted at its owner's request: name and email erased, no sign-in possible.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_hash: Mapped[str] = mapped_column(String(255))
    stripe_connect_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Mirrors of the Connect account, kept current by ``account.updated`` webhooks.
    stripe_details_submitted: Mapped[bool] = mapped_column(default=False, server_default=false())
    stripe_charges_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Opted in to a daily email of yesterday's sales (services/summaries.py).
    daily_sales_email: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    events: Mapped[list[Event]] = relationship(back_populates="organizer")

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class SignInSession(db.Model):
    """One signed-in browser: its id travels in the signed session cookie and is checked
    whenever the user is loaded, so signing out (here or everywhere), a password reset or
    change, or a deleted account ends it on the server, whatever copy of the cookie exists.
    Written only by ``services/sessions.py``."""

    __tablename__ = "sign_in_sessions"
    __table_args__ = (Index("ix_sign_in_sessions_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, unguessable
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # sign in again after this
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("price_pence >= 0", name="price_not_negative"),
        CheckConstraint("total_tickets BETWEEN 1 AND 100000", name="capacity_range"),
        CheckConstraint(
            "sold_count >= 0 AND offered_count >= 0 AND waiting_count >= 0",
            name="counts_not_negative",
        ),
        CheckConstraint("sold_count + offered_count <= total_tickets", name="never_oversold"),
        Index("ix_events_starts_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organizer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    price_pence: Mapped[int] = mapped_column(Integer)
    total_tickets: Mapped[int] = mapped_column(Integer)
    image_filename: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Queue bookkeeping. Written only by services/queue.py, under the event's lock, in the
    # same transaction as the entry or ticket that changes them; reading them is what keeps
    # availability and status polling O(1) however long the queue is.
    sold_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    offered_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    waiting_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    queue_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Where the event happens, as an IANA zone name: its times are shown (and typed into the
    # event form) as wall-clock times there, and stored in UTC like every other time.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # None: a draft, seen only by its organizer.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Fair start (services/draws.py). With an on-sale time, joins before it wait in the lobby
    # (lobby_count of them); at the on-sale the lobby is drawn into line in the order of an
    # HMAC under ``draw_seed``, whose SHA-256 (``draw_commitment``) is published before
    # anyone joins and the seed itself after the draw. The seed never changes once made.
    sale_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    draw_seed: Mapped[str | None] = mapped_column(String(64))
    draw_commitment: Mapped[str | None] = mapped_column(String(64))
    drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    draw_size: Mapped[int | None] = mapped_column(Integer)  # lobby entries drawn: places 1..N
    lobby_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lobby_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    organizer: Mapped[User] = relationship(back_populates="events")

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def awaits_draw(self) -> bool:
        """An on-sale time is set and its draw has not happened: joins wait in the lobby."""
        return self.sale_starts_at is not None and self.drawn_at is None and not self.is_cancelled

    def draw_due(self, now: datetime) -> bool:
        """The on-sale has come and the lobby is still to be drawn (drafts are never drawn:
        nobody can join one, and publishing needs an on-sale time still ahead)."""
        return self.awaits_draw and self.sale_starts_at <= now and self.is_published

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None

    def is_past(self, now: datetime | None = None) -> bool:
        return self.starts_at <= (now or utcnow())

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.name!r}>"


class WaitingListEntry(db.Model):
    """One person's place in one event's waiting list (or in its lobby).

    ``seq`` is the join order, and so the place in line. A **lobby** entry (joined before a
    scheduled on-sale) is ``waiting`` with a negative ``seq``: it has no place in line yet,
    counts in ``Event.lobby_count`` rather than ``waiting_count``, and the draw gives it its
    place (``seq`` 1..N in the draw's order). Being ``waiting``, it is covered by the
    one-active-entry-per-person index like any other.
    """

    __tablename__ = "waiting_list_entries"
    __table_args__ = (
        CheckConstraint(_in("status", EntryStatus.ALL), name="status_known"),
        CheckConstraint(
            f"end_reason IS NULL OR {_in('end_reason', EndReason.ALL)}", name="end_reason_known"
        ),
        CheckConstraint(
            "status <> 'offered' OR offer_expires_at IS NOT NULL", name="offer_has_expiry"
        ),
        # seq is the event's join order: FIFO and positions are defined by it.
        UniqueConstraint("event_id", "seq", name="uq_entry_event_seq"),
        Index(
            "uq_entry_active_user",
            "event_id",
            "user_id",
            unique=True,
            **_partial(_in("status", EntryStatus.ACTIVE)),
        ),
        # Position: count of active entries ahead, a range scan of this index.
        Index("ix_entry_active_seq", "event_id", "seq",
              **_partial(_in("status", EntryStatus.ACTIVE))),
        # Offer next: the oldest waiters of an event.
        Index("ix_entry_waiting_seq", "event_id", "seq", **_partial("status = 'waiting'")),
        # Expiry sweeps and lazy expiry: offers by deadline.
        Index(
            "ix_entry_offer_expiry", "event_id", "offer_expires_at",
            **_partial("status = 'offered'"),
        ),
        Index("ix_entry_user_event", "user_id", "event_id"),
        # Estimated wait: how fast this event's offers have recently been ending.
        Index("ix_entry_offer_ended", "event_id", "ended_at", **_partial("offered_at IS NOT NULL")),
        Index("uq_entry_event_ref", "event_id", "ref", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(20))
    # The entry's public reference: random, naming nobody; the fair-start draw orders by it.
    ref: Mapped[str | None] = mapped_column(String(16))

    event: Mapped[Event] = relationship()
    user: Mapped[User] = relationship()

    @property
    def in_lobby(self) -> bool:
        return self.status == EntryStatus.WAITING and self.seq < 0

    def __repr__(self) -> str:
        return f"<Entry {self.id} event={self.event_id} user={self.user_id} {self.status}>"


class QueueDeparture(db.Model):
    """How many entries of each block of join order have left the active queue.

    Lets a position be computed from a few rows instead of counting everyone ahead:
    position = 1 + (entries in earlier blocks − those departed) + active ahead in my block.
    Written only by services/queue.py, under the event's lock.
    """

    __tablename__ = "queue_departures"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    block: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    departed: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(db.Model):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_in("status", TicketStatus.ALL), name="status_known"),
        CheckConstraint("amount_pence >= 0", name="amount_not_negative"),
        Index(
            "uq_ticket_live_user",
            "event_id",
            "user_id",
            unique=True,
            **_partial(_in("status", TicketStatus.LIVE)),
        ),
        Index("ix_tickets_event_status", "event_id", "status"),
        Index("ix_tickets_user", "user_id"),
        Index("uq_ticket_door_code", "door_code", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("waiting_list_entries.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.VALID)
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    amount_pence: Mapped[int] = mapped_column(Integer)
    # The payment's own reference (Stripe payment intent, or the local page's): a second
    # fulfilment of the same payment finds this row instead of making another ticket.
    payment_reference: Mapped[str | None] = mapped_column(String(255), unique=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # ticket refunded
    # When the money went back (the gateway confirmed the refund); None while it is owed.
    refund_settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refund_reference: Mapped[str | None] = mapped_column(String(255))
    # Typed at the door instead of scanning the QR code (``new_door_code``). Nullable only
    # because a column added to a table in use can't be NOT NULL on SQLite; every ticket
    # has one (the migration gave the older ones theirs).
    door_code: Mapped[str | None] = mapped_column(String(12), default=new_door_code)

    event: Mapped[Event] = relationship()
    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Ticket {self.id} event={self.event_id} user={self.user_id} {self.status}>"


class CheckoutStatus:
    OPEN = "open"  # the buyer is on the payment page
    PAID = "paid"  # captured; the ticket exists
    NOT_CHARGED = "not_charged"  # paid too late: the authorisation was cancelled
    REFUNDED = "refunded"  # captured but no seat could be given: refunded at once
    EXPIRED = "expired"  # closed unpaid (offer ended, or Stripe expired it)
    ALL = (OPEN, PAID, NOT_CHARGED, REFUNDED, EXPIRED)


class CheckoutSession(db.Model):
    """One payment attempt for one offer: a Stripe Checkout Session, or the local page's."""

    __tablename__ = "checkout_sessions"
    __table_args__ = (
        CheckConstraint(_in("status", CheckoutStatus.ALL), name="status_known"),
        CheckConstraint("amount_pence >= 0 AND fee_pence >= 0", name="amounts_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # cs_…
    entry_id: Mapped[int] = mapped_column(ForeignKey("waiting_list_entries.id"), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount_pence: Mapped[int] = mapped_column(Integer)
    fee_pence: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16), default=CheckoutStatus.OPEN)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    entry: Mapped[WaitingListEntry] = relationship()
    event: Mapped[Event] = relationship()
    ticket: Mapped[Ticket | None] = relationship()


class WebhookEvent(db.Model):
    """Every Stripe event id handled, so a redelivered event changes nothing."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # evt_…
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LocalPayment(db.Model):
    """The local payment page's own ledger (PAYMENTS=local): what Stripe keeps for us."""

    __tablename__ = "local_payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('requires_capture', 'succeeded', 'canceled')", name="status_known"
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # pi_local_…
    checkout_session_id: Mapped[str] = mapped_column(
        ForeignKey("checkout_sessions.id"), unique=True)
    amount_pence: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="requires_capture")
    refunded_pence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditAction:
    JOINED = "joined"
    OFFERED = "offered"
    RELEASED = "released"  # declined an offer
    LEFT = "left"  # left the queue while waiting
    EXPIRED = "expired"
    PURCHASED = "purchased"
    REFUNDED = "refunded"
    VOIDED = "voided"  # payment could not be taken; ticket cancelled
    CHECKED_IN = "checked_in"
    EVENT_CANCELLED = "event_cancelled"
    DRAWN = "drawn"  # the lobby was drawn into line at the on-sale
    SOLD_OUT = "sold_out"  # the last ticket sold (first time only: its organizer is emailed)


class AuditEntry(db.Model):
    """One state transition of a waiting-list entry or ticket: when, who, why."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_event_time", "event_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    action: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # whose entry/ticket
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("waiting_list_entries.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    subject: Mapped[User | None] = relationship(foreign_keys=[subject_id])
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])


class OutboxItem(db.Model):
    """A follow-up of a committed transition (a deadline, an email, a refund, closing a payment
    page), written in the same transaction as the transition itself.

    A relay hands each row to the task queue after commit, and again from the outbox sweep
    until a worker has acted on it; the worker claims the row before acting and marks it done
    after, so a broker outage, a lost task or a killed worker delays the follow-up but never
    loses it, and two deliveries of one row act once. Written only by ``services/outbox.py``.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's sweep and /healthz: rows not yet acted on, by when they are due.
        Index("ix_outbox_pending", "run_at", **_partial("done_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # which task acts on it
    args: Mapped[list] = mapped_column(JSON)  # that task's arguments
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)  # not before (an offer's deadline)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last given to the queue
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a worker is on it
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(200))

    def __repr__(self) -> str:
        return f"<OutboxItem {self.id} {self.kind}{tuple(self.args)}>"


class SalesSummary(db.Model):
    """One organizer's daily sales email for one UTC day.

    Written with its outbox row in one transaction, and unique per organizer and day, so
    however often (or late) the periodic task runs, each day's summary is sent exactly once.
    """

    __tablename__ = "sales_summaries"
    __table_args__ = (UniqueConstraint("organizer_id", "day", name="uq_summary_organizer_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organizer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    day: Mapped[date] = mapped_column(Date)  # the UTC day it reports on
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    organizer: Mapped[User] = relationship()
