"""Accounts: signing up and checking passwords (services/accounts.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from extensions import db
from models import User
from services.accounts import AccountError, authenticate, register_user
from tests.support.factories import PASSWORD


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
