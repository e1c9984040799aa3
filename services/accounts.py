"""Accounts: sign-up and password checks."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from extensions import db
from models import User
from services import ServiceError
from services.text import text_problem

MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254  # what an address can be (RFC 5321), and what users.email holds
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 200
# Checked when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


class AccountError(ServiceError):
    pass


def normalize_email(email: str) -> str:
    """The canonical, lower-cased form of ``email``; raises AccountError when it is not one."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise AccountError("Enter a valid email address, like name@example.com.",
                           field="email") from None


def register_user(*, name: str, email: str, password: str) -> User:
    """Create an account. Raises AccountError for a taken email or a weak password."""
    if problem := text_problem(name):  # checked before split() folds line breaks away
        raise AccountError(problem, field="name")
    name = " ".join(name.split())
    if not name:
        raise AccountError("Enter your name.", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"Names can be at most {MAX_NAME_LENGTH} characters.", field="name")
    email = normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"Passwords can be at most {MAX_PASSWORD_LENGTH} characters.", field="password"
        )
    taken = AccountError("An account with this email already exists. Try signing in.",
                         field="email")
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise taken
    user = User(name=name, email=email, password_hash=generate_password_hash(password, "scrypt"))
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # the same email signed up in a parallel request
        db.session.rollback()
        raise taken from None
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
