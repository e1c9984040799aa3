"""Accounts (services/accounts.py): signing up, the person behind an address, checking
passwords, confirming links, resetting and changing passwords and addresses, deleting."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import AuditEntry, OutboxItem, User
from services import account_links, accounts, sessions
from services.account_links import LinkError
from services.accounts import AccountError, authenticate, person_key, register_user
from tests.support import mailbox
from tests.support.buying import buy_directly
from tests.support.factories import PASSWORD, make_event, make_user, utc


def register(name="Ada Lovelace", email="ada@example.com", password=PASSWORD) -> User:
    return register_user(name=name, email=email, password=password)


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def refused(field: str, **details) -> AccountError:
    """Register with ``details`` and return the refusal, checking it names ``field``."""
    with pytest.raises(AccountError) as caught:
        register(**details)
    assert caught.value.field == field
    return caught.value


def test_a_new_account_keeps_the_email_lower_cased_and_the_name_tidied(app):
    user = register(name="  Ada   Lovelace ", email="  Ada.Lovelace@Example.COM ")

    assert user.id is not None
    assert user.email == "ada.lovelace@example.com"
    assert user.name == "Ada Lovelace"


def test_passwords_are_stored_as_scrypt_hashes_never_in_clear(app):
    user = register(password="s3cret-password")

    assert user.password_hash.startswith("scrypt:")
    assert "s3cret-password" not in user.password_hash


@pytest.mark.parametrize(
    "second_email", ["ada@example.com", "ADA@Example.com", " Ada@EXAMPLE.COM "]
)
def test_an_email_can_only_be_registered_once_whatever_its_case(app, second_email):
    register(email="ada@example.com")

    error = refused("email", name="Someone else", email=second_email)

    assert "already exists" in str(error)
    assert user_count() == 1


@pytest.mark.parametrize("email", ["", "not-an-email", "ada@", "@example.com", "ada@@example.com"])
def test_a_malformed_email_is_refused(app, email):
    error = refused("email", email=email)

    assert "valid email" in str(error)
    assert user_count() == 0


def test_a_password_shorter_than_eight_characters_is_refused(app):
    error = refused("password", password="1234567")

    assert "at least 8 characters" in str(error)
    assert user_count() == 0


def test_a_password_of_exactly_eight_characters_is_enough(app):
    assert register(password="12345678").id is not None


@pytest.mark.parametrize("name", ["", "   "])
def test_a_name_is_required(app, name):
    refused("name", name=name)
    assert user_count() == 0


def test_the_right_password_signs_in_whatever_the_case_of_the_email(app):
    user = register(email="ada@example.com")

    assert authenticate(email="ada@example.com", password=PASSWORD) == user
    assert authenticate(email=" ADA@example.COM ", password=PASSWORD) == user


@pytest.mark.parametrize(
    "email, password",
    [
        ("ada@example.com", "wrong password"),
        ("ada@example.com", ""),
        ("nobody@example.com", PASSWORD),
        ("not-an-email", PASSWORD),
    ],
)
def test_a_wrong_password_or_unknown_email_signs_nobody_in(app, email, password):
    register(email="ada@example.com")

    assert authenticate(email=email, password=password) is None


# ------------------------------------------------------------------ one account per person

NOW = utc(2026, 12, 1, 12, 0)


@pytest.mark.parametrize("address, key", [
    ("ada@example.com", "ada@example.com"),
    ("ada+tickets@example.com", "ada@example.com"),
    ("ada+a+b@example.com", "ada@example.com"),
    ("a.da@example.com", "a.da@example.com"),  # dots mean something at most providers
    ("a.d.a@gmail.com", "ada@gmail.com"),
    ("a.da+gigs@googlemail.com", "ada@gmail.com"),
    ("+tag@example.com", "+tag@example.com"),  # nothing before the tag: kept whole
    ("ｅxample@example.com", "example@example.com"),  # fullwidth letters fold
])
def test_every_spelling_of_one_mailbox_has_one_person_key(address, key):
    assert person_key(address) == key


@pytest.mark.parametrize("second", ["a.da@gmail.com", "ada+gigs@googlemail.com",
                                    "ADA@Gmail.com"])
def test_a_person_has_one_account_whatever_spelling_they_sign_up_with(any_db_app, second):
    register(email="ada@gmail.com")

    error = refused("email", email=second)

    assert str(error) == accounts.TAKEN  # the same answer as the very same address
    assert user_count() == 1


def test_mail_goes_to_the_address_given_and_the_key_sits_beside_it(any_db_app):
    user = register(email="Ada.L+Gigs@Example.com")

    assert (user.email, user.person_key) == ("ada.l+gigs@example.com", "ada.l@example.com")


def test_the_database_itself_keeps_one_account_per_person(any_db_app):
    make_user(email="ada@example.com")
    db.session.add(User(name="Twin", email="ada+twin@example.com",
                        person_key="ada@example.com", password_hash="x"))

    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_every_problem_of_a_sign_up_is_found_at_once(any_db_app):
    register(email="ada@example.com")

    problems = accounts.signup_problems(name=" ", email="ada+2@example.com", password="short")

    assert problems == {"name": "Enter your name.", "email": accounts.TAKEN,
                        "password": "Choose a password of at least 8 characters."}


# ------------------------------------------------------------------ confirming the address


def test_a_new_account_is_sent_the_link_to_confirm_it_and_may_not_join_yet(any_db_app):
    user = register(email="ada@example.com")

    assert user.email_verified_at is None
    assert db.session.scalar(select(OutboxItem.args))[:2] == ["verify_email", user.id]
    assert mailbox.latest(any_db_app.config["INSTANCE_PATH"], "ada@example.com",
                          "Confirm your email address")
    with pytest.raises(accounts.EmailNotVerified) as refusal:
        accounts.ensure_may_join(user_id=user.id)
    assert refusal.value.status_code == 409
    assert "ada@example.com" in str(refusal.value)


def test_an_account_made_confirmed_is_sent_nothing_and_may_join(any_db_app):
    user = register_user(name="Seed", email="seed@example.com", password=PASSWORD, now=NOW,
                         verified=True)

    assert user.email_verified_at == NOW
    assert db.session.scalar(select(func.count()).select_from(OutboxItem)) == 0
    accounts.ensure_may_join(user_id=user.id)


def test_a_confirmation_link_works_for_24_hours_and_once(any_db_app):
    user = make_user(verified=False)
    token = account_links.make_token(user, account_links.VERIFY, now=NOW)

    with pytest.raises(LinkError, match="expired"):
        accounts.verify_email(token=token, now=NOW + timedelta(hours=24, seconds=1))
    accounts.verify_email(token=token, now=NOW + timedelta(hours=23, minutes=59))
    assert user.email_verified_at is not None
    with pytest.raises(LinkError, match="already been used"):
        accounts.verify_email(token=token, now=NOW + timedelta(hours=1))


@pytest.mark.parametrize("purpose, wrong", [
    (account_links.VERIFY, account_links.RESET),
    (account_links.RESET, account_links.CHANGE_EMAIL),
    (account_links.CHANGE_EMAIL, account_links.VERIFY),
])
def test_a_link_made_for_one_purpose_is_worthless_for_another(app, purpose, wrong):
    user = make_user(verified=False)
    token = account_links.make_token(user, purpose, now=NOW)

    with pytest.raises(LinkError, match="isn't valid"):
        account_links.read_token(token, wrong, now=NOW)


def test_a_link_signed_with_another_key_is_not_valid(app):
    user = make_user(verified=False)
    token = account_links.make_token(user, account_links.VERIFY, now=NOW)
    app.config["SECRET_KEY"] = "another secret"

    with pytest.raises(LinkError, match="isn't valid"):
        account_links.read_token(token, account_links.VERIFY, now=NOW)


# ------------------------------------------------------------------ passwords


def test_a_reset_link_lasts_an_hour_and_ends_every_session(any_db_app):
    user = make_user(email="ada@example.com")
    browsers = [sessions.start_session(user_id=user.id, now=NOW) for _ in range(2)]
    token = account_links.make_token(user, account_links.RESET, now=NOW)
    with pytest.raises(LinkError, match="expired"):
        accounts.reset_password(token=token, password="a new password",
                                now=NOW + timedelta(minutes=61))

    accounts.reset_password(token=token, password="a new password",
                            now=NOW + timedelta(minutes=59))

    later = NOW + timedelta(hours=1)
    assert [sessions.session_user(session_id=b, user_id=user.id, now=later)
            for b in browsers] == [None, None]
    assert authenticate(email="ada@example.com", password="a new password") == user
    with pytest.raises(LinkError, match="already been used"):
        accounts.check_reset_link(token=token, now=later)


def test_asking_for_a_reset_does_the_same_work_for_any_address(any_db_app):
    make_user(email="ada@example.com")

    for address in ("ada@example.com", "nobody@example.com"):
        assert accounts.request_password_reset(email=address.upper(), now=NOW) == address

    rows = db.session.scalars(select(OutboxItem.args).order_by(OutboxItem.id)).all()
    assert [row[:3] for row in rows] == [["password_reset", None, "ada@example.com"],
                                         ["password_reset", None, "nobody@example.com"]]
    folder = any_db_app.config["INSTANCE_PATH"]
    assert len(mailbox.inbox(folder, "ada@example.com")) == 1
    assert mailbox.inbox(folder, "nobody@example.com") == []


def test_changing_the_password_keeps_this_session_and_ends_the_others(any_db_app):
    user = make_user()
    here, there = (sessions.start_session(user_id=user.id, now=NOW) for _ in range(2))

    with pytest.raises(AccountError) as wrong:
        accounts.change_password(user_id=user.id, current_password="nope",
                                 password="a new password", keep_session=here, now=NOW)
    assert wrong.value.field == "current_password"
    accounts.change_password(user_id=user.id, current_password=PASSWORD,
                             password="a new password", keep_session=here, now=NOW)

    assert sessions.session_user(session_id=here, user_id=user.id, now=NOW) == user
    assert sessions.session_user(session_id=there, user_id=user.id, now=NOW) is None


# ------------------------------------------------------------------ changing the address


def test_an_address_change_waits_for_its_link_and_then_moves_the_person_key(any_db_app):
    user = make_user(email="ada@example.com")

    accounts.change_email(user_id=user.id, email="Ada@Work.example",
                          current_password=PASSWORD, now=NOW)
    assert (user.email, user.pending_email) == ("ada@example.com", "ada@work.example")
    token = account_links.make_token(user, account_links.CHANGE_EMAIL, now=NOW)
    accounts.confirm_email_change(token=token, now=NOW)

    assert (user.email, user.person_key, user.pending_email) == (
        "ada@work.example", "ada@work.example", None)
    with pytest.raises(LinkError, match="already been used"):
        accounts.confirm_email_change(token=token, now=NOW)


def test_an_address_taken_before_its_link_is_followed_is_refused(any_db_app):
    user = make_user(email="ada@example.com")
    accounts.change_email(user_id=user.id, email="ada@work.example",
                          current_password=PASSWORD, now=NOW)
    token = account_links.make_token(user, account_links.CHANGE_EMAIL, now=NOW)
    make_user(email="ada+other@work.example")  # the same person's mailbox, signed up meanwhile

    with pytest.raises(AccountError, match="already exists"):
        accounts.confirm_email_change(token=token, now=NOW)

    db.session.rollback()
    assert db.session.get(User, user.id).email == "ada@example.com"


# ------------------------------------------------------------------ deleting the account


def test_an_account_with_nothing_live_is_erased_and_its_person_may_return(any_db_app):
    now = datetime.now(timezone.utc)
    user = make_user(name="Ada Lovelace", email="ada@example.com")
    past = make_event()
    buy_directly(past, user)
    past.starts_at = now - timedelta(days=1)  # the event has taken place since
    db.session.commit()
    browser = sessions.start_session(user_id=user.id, now=now)

    accounts.delete_account(user_id=user.id, current_password=PASSWORD, now=now)

    gone = db.session.get(User, user.id)
    assert (gone.name, gone.email, gone.pending_email) == (
        accounts.DELETED_NAME, f"deleted-{user.id}@deleted.invalid", None)
    assert authenticate(email=gone.email, password=PASSWORD) is None
    assert sessions.session_user(session_id=browser, user_id=user.id, now=now) is None
    audit = db.session.execute(select(AuditEntry.action, AuditEntry.subject_id,
                                      AuditEntry.actor_id)).all()
    assert {row.action for row in audit} == {"joined", "offered", "purchased"}
    assert all(user.id not in (row.subject_id, row.actor_id) for row in audit)
    assert register(email="ada@example.com").id != user.id


@pytest.mark.parametrize("holding, reason", [
    ("ticket", "You hold a ticket for an event still to come"),
    ("offer", "You hold a ticket offer or a place in a waiting list"),
    ("event", "You organize events still to come"),
])
def test_an_account_something_live_depends_on_is_kept(any_db_app, holding, reason):
    user = make_user(name="Ada")
    if holding == "ticket":
        buy_directly(make_event(), user)
    elif holding == "offer":
        from services import queue
        queue.join_queue(event_id=make_event().id, user_id=user.id,
                         now=datetime.now(timezone.utc))
    else:
        make_event(user)

    with pytest.raises(AccountError, match=reason):
        accounts.delete_account(user_id=user.id, current_password=PASSWORD,
                                now=datetime.now(timezone.utc))
    db.session.rollback()
    assert db.session.get(User, user.id).name == "Ada"
