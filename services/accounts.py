"""Accounts: signing up, the person behind an address, confirming it, signing in, password
reset and change, changing the name or address, and deleting an account.

Addresses are normalised once (``normalize_email``: email-validator's Unicode and domain
normalisation, lower-cased) and looked up, limited and kept unique in that form. Beside
each address the account keeps its **person key** (``person_key``): the same for every
spelling of one mailbox (``ada+tickets@``, Gmail's ``a.da@`` and ``googlemail.com``), and
unique, so one person has one account and the queue's one-entry-per-account rules are one
per person. Mail still goes to the address given.

Emails (the links to confirm an address or choose a password, and notices) are written to
the outbox in the transaction that calls for them and sent by a worker
(``services/account_mail.py``).
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime, timezone

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from extensions import db
from models import AuditEntry, EntryStatus, Event, Ticket, TicketStatus, User, WaitingListEntry
from services import ServiceError, account_links, outbox, sessions
from services.locking import UnitOfWork
from services.text import text_problem

MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254  # what an address can be (RFC 5321), and what users.email holds
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 200
# Checked when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")
# Mailboxes where dots in the name are ignored, and the domain they all mean.
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
DELETED_NAME = "Deleted account"
TAKEN = "An account with this email already exists. Try signing in."
WRONG_PASSWORD = "That isn't your current password."


class AccountError(ServiceError):
    pass


class EmailNotVerified(AccountError):
    """Joining a waiting list before the address is confirmed."""

    status_code = 409


def _now() -> datetime:
    return datetime.now(timezone.utc)


def normalize_email(email: str) -> str:
    """The canonical, lower-cased form of ``email``; raises AccountError when it is not one."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise AccountError("Enter a valid email address, like name@example.com.",
                           field="email") from None


def person_key(email: str) -> str:
    """The person behind a normalised address: the name folded (NFKC, case), a ``+tag``
    dropped, and for Gmail the dots too (and ``googlemail.com`` read as ``gmail.com``)."""
    local, _, domain = email.rpartition("@")
    local = unicodedata.normalize("NFKC", local).casefold()
    domain = domain.lower()
    name = local.split("+", 1)[0] or local  # "+x@" has no name before its tag
    if domain in _DOTLESS_DOMAINS:
        name, domain = name.replace(".", "") or name, _DOTLESS_DOMAINS[domain]
    return f"{name}@{domain}"


def _address_taken(email: str, *, besides: int | None = None) -> bool:
    query = select(User.id).where(or_(User.email == email, User.person_key == person_key(email)))
    if besides is not None:
        query = query.where(User.id != besides)
    return db.session.scalar(query.limit(1)) is not None


def _name_problem(name: str) -> str | None:
    if problem := text_problem(name):  # checked before split() folds line breaks away
        return problem
    name = " ".join(name.split())
    if not name:
        return "Enter your name."
    if len(name) > MAX_NAME_LENGTH:
        return f"Names can be at most {MAX_NAME_LENGTH} characters."
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Passwords can be at most {MAX_PASSWORD_LENGTH} characters."
    return None


def signup_problems(*, name: str, email: str, password: str) -> dict[str, str]:
    """Every reason a sign-up would be refused, by field (empty: it would be accepted), so
    the form can show them all at once. An address whose person already has an account (in
    any spelling) gets the same answer as the very same address."""
    problems = {}
    if problem := _name_problem(name):
        problems["name"] = problem
    try:
        if _address_taken(normalize_email(email)):
            problems["email"] = TAKEN
    except AccountError as error:
        problems["email"] = error.message
    if problem := password_problem(password):
        problems["password"] = problem
    return problems


def _send(kind: str, *, user_id: int | None, address: str | None, now: datetime) -> None:
    """Write an account email to the outbox (inside a unit of work). The nonce names this
    one sending: a new request is a new email, a retried one replaces its own file."""
    outbox.add("send_account_email", kind, user_id, address, secrets.token_hex(6), now=now)


def register_user(*, name: str, email: str, password: str, now: datetime | None = None,
                  verified: bool = False) -> User:
    """Create an account and send it the link to confirm its address (``verified``: the
    address is taken as confirmed and nothing is sent, as for seeded accounts). Raises
    AccountError for the first problem ``signup_problems`` finds."""
    now = now or _now()
    problems = signup_problems(name=name, email=email, password=password)
    if problems:
        field, message = next(iter(problems.items()))
        raise AccountError(message, field=field)
    email = normalize_email(email)
    user = User(name=" ".join(name.split()), email=email, person_key=person_key(email),
                password_hash=generate_password_hash(password, "scrypt"),
                email_verified_at=now if verified else None)
    try:
        with UnitOfWork(now=now):
            db.session.add(user)
            db.session.flush()
            if not verified:
                _send("verify_email", user_id=user.id, address=None, now=now)
    except IntegrityError:  # the same person signed up in a parallel request
        db.session.rollback()
        raise AccountError(TAKEN, field="email") from None
    return user


def authenticate(*, email: str, password: str) -> User | None:
    """The user with this email and password, or None."""
    try:
        email = normalize_email(email)
    except AccountError:
        email = None
    user = db.session.scalar(select(User).where(User.email == email)) if email else None
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise AccountError("That account no longer exists.")
    return user


# ------------------------------------------------------------------ confirming the address


def ensure_may_join(*, user_id: int) -> None:
    """Raise EmailNotVerified unless ``user_id`` has confirmed their address: a place in a
    waiting list is for a person who reads that mailbox."""
    user = db.session.get(User, user_id)
    if user is None or not user.email_verified:
        address = user.email if user is not None else "your address"
        raise EmailNotVerified(
            f"Confirm your email address before you join a waiting list: open the link we "
            f"sent to {address}, or ask for a new one.")


def mark_verified(*, user_id: int, now: datetime) -> None:
    """Take the account's address as confirmed without a link (demo accounts)."""
    user = _user(user_id)
    with UnitOfWork(now=now):
        user.email_verified_at = user.email_verified_at or now


def resend_verification(*, user_id: int, now: datetime) -> None:
    """Send the link to confirm the address again (nothing when it is confirmed already)."""
    user = _user(user_id)
    if user.email_verified:
        raise AccountError("Your email address is already confirmed.")
    with UnitOfWork(now=now):
        _send("verify_email", user_id=user.id, address=None, now=now)


def check_verification_link(*, token: str, now: datetime) -> User:
    """The user a confirmation link is for, if it can still be used (LinkError if not)."""
    return account_links.read_token(token, account_links.VERIFY, now=now)


def verify_email(*, token: str, now: datetime) -> User:
    """Follow a confirmation link: the account's address is confirmed. Raises LinkError for
    a link that is forged, expired, used, or superseded by a change of address."""
    user = check_verification_link(token=token, now=now)
    with UnitOfWork(now=now):
        user.email_verified_at = now
    return user


# ------------------------------------------------------------------ passwords


def request_password_reset(*, email: str, now: datetime) -> str:
    """Ask for a link to choose a new password; returns the normalised address.

    The same work whether or not an account uses the address (one outbox row naming the
    address; the worker finds the account, if any, and only then sends), so neither the
    answer nor its timing tells anyone which addresses have accounts.
    """
    email = normalize_email(email)
    with UnitOfWork(now=now):
        _send("password_reset", user_id=None, address=email, now=now)
    return email


def check_reset_link(*, token: str, now: datetime) -> User:
    """The user a password-reset link is for, if it can still be used (LinkError if not)."""
    return account_links.read_token(token, account_links.RESET, now=now)


def _set_password(user: User, password: str, *, now: datetime) -> None:
    """The new password (already checked by ``password_problem``), and the notice of it."""
    user.password_hash = generate_password_hash(password, "scrypt")
    _send("password_changed", user_id=user.id, address=None, now=now)


def reset_password(*, token: str, password: str, now: datetime) -> User:
    """Choose a new password through a reset link: every session of the account ends (the
    person signs in again with it), and the link, like any other sent before, stops
    working. Reading the link also proves the address, so it counts as confirmed."""
    user = check_reset_link(token=token, now=now)
    if problem := password_problem(password):
        raise AccountError(problem, field="password")
    with UnitOfWork(now=now):
        _set_password(user, password, now=now)
        if not user.email_verified:
            user.email_verified_at = now
        sessions.end_sessions_of(user.id, now=now)
    return user


def change_password(*, user_id: int, current_password: str, password: str,
                    keep_session: str | None, now: datetime) -> None:
    """Change the password, knowing the current one; every other session ends."""
    user = _user(user_id)
    if not check_password_hash(user.password_hash, current_password):
        raise AccountError(WRONG_PASSWORD, field="current_password")
    if problem := password_problem(password):
        raise AccountError(problem, field="password")
    with UnitOfWork(now=now):
        _set_password(user, password, now=now)
        sessions.end_sessions_of(user.id, now=now, keep=keep_session)


# ------------------------------------------------------------------ name and address


def change_name(*, user_id: int, name: str, now: datetime) -> None:
    user = _user(user_id)
    if problem := _name_problem(name):
        raise AccountError(problem, field="name")
    with UnitOfWork(now=now):
        user.name = " ".join(name.split())


def change_email(*, user_id: int, email: str, current_password: str, now: datetime) -> str:
    """Ask to move the account to a new address, knowing the password: a link goes to the
    new address, and the account keeps the old one until it is followed; the old address is
    told. Returns the new address."""
    user = _user(user_id)
    if not check_password_hash(user.password_hash, current_password):
        raise AccountError(WRONG_PASSWORD, field="current_password")
    email = normalize_email(email)
    if email == user.email:
        raise AccountError("That is already your email address.", field="email")
    if _address_taken(email, besides=user.id):
        raise AccountError("An account with this email already exists.", field="email")
    with UnitOfWork(now=now):
        user.pending_email = email
        _send("email_change_confirm", user_id=user.id, address=None, now=now)
        _send("email_change_notice", user_id=user.id, address=user.email, now=now)
    return email


def check_email_change_link(*, token: str, now: datetime) -> User:
    """The user a new address's confirmation link is for, if it can still be used."""
    user = account_links.read_token(token, account_links.CHANGE_EMAIL, now=now)
    if user.pending_email is None:  # no change asked for (the fingerprint says so too)
        raise account_links.LinkError(account_links.USED)
    return user


def confirm_email_change(*, token: str, now: datetime) -> User:
    """Follow the link sent to a new address: it becomes the account's, confirmed."""
    user = check_email_change_link(token=token, now=now)
    email = user.pending_email
    if _address_taken(email, besides=user.id):
        raise AccountError("An account with this email already exists, so your address "
                           "can't be changed to it.")
    try:
        with UnitOfWork(now=now):
            user.email, user.person_key = email, person_key(email)
            user.email_verified_at, user.pending_email = now, None
    except IntegrityError:  # taken meanwhile by a parallel sign-up
        db.session.rollback()
        raise AccountError("An account with this email already exists, so your address "
                           "can't be changed to it.") from None
    return user


# ------------------------------------------------------------------ deleting an account


def deletion_problem(*, user_id: int, now: datetime) -> str | None:
    """Why the account can't be deleted now (something live depends on it), or None."""
    upcoming = Event.cancelled_at.is_(None) & (Event.starts_at > now)
    if db.session.scalar(select(exists().where(
            Ticket.user_id == user_id, Ticket.status == TicketStatus.VALID,
            Ticket.event_id == Event.id, upcoming))):
        return ("You hold a ticket for an event still to come. Your account can be deleted "
                "once it has taken place (or after a refund).")
    if db.session.scalar(select(exists().where(
            WaitingListEntry.user_id == user_id,
            WaitingListEntry.status.in_(EntryStatus.ACTIVE),
            WaitingListEntry.event_id == Event.id, upcoming))):
        return ("You hold a ticket offer or a place in a waiting list. Release it first, "
                "then delete your account.")
    if db.session.scalar(select(exists().where(Event.organizer_id == user_id, upcoming))):
        return ("You organize events still to come. Cancel them (or wait until they have "
                "taken place) before you delete your account.")
    return None


def delete_account(*, user_id: int, current_password: str, now: datetime) -> None:
    """Erase the person from the account, at their request: name and address replaced by
    placeholders, no password that can match, every session ended, and their audit entries
    kept without naming them. Refused while something live depends on the account."""
    user = _user(user_id)
    if not check_password_hash(user.password_hash, current_password):
        raise AccountError(WRONG_PASSWORD, field="current_password")
    if problem := deletion_problem(user_id=user.id, now=now):
        raise AccountError(problem)
    with UnitOfWork(now=now):
        user.name = DELETED_NAME
        user.email = f"deleted-{user.id}@deleted.invalid"  # .invalid: no one can type it
        user.person_key = f"deleted-{user.id}"
        user.pending_email = None
        user.email_verified_at = None
        user.password_hash = "!"  # not a hash: no password matches it
        user.deleted_at = now
        sessions.end_sessions_of(user.id, now=now)
        db.session.execute(update(AuditEntry).where(AuditEntry.subject_id == user.id)
                           .values(subject_id=None))
        db.session.execute(update(AuditEntry).where(AuditEntry.actor_id == user.id)
                           .values(actor_id=None))
