"""HTML forms: parse what the browser sent into Python values, with field-level messages.

Forms only parse and check shape (present, a number, a date); the rules of the domain
(future date, capacity range, duplicate email…) live in ``services/`` and come back as
``ServiceError``s, which ``attach_error`` puts on the field they name.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import EmailField, PasswordField, StringField, TextAreaField, ValidationError
from wtforms.validators import DataRequired, InputRequired, Length, StopValidation

from services import ServiceError
from services.accounts import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH, MIN_PASSWORD_LENGTH
from services.events import MAX_CAPACITY, MAX_DESCRIPTION, MAX_LOCATION, MAX_NAME, detail_problems
from services.text import text_problem

EVENT_DATE_FORMAT = "%Y-%m-%dT%H:%M"
# ASCII digits only: Decimal() reads "１２" and "1e400"; str.isdigit() passes "²", which int()
# fails on.
_PRICE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_WHOLE_NUMBER = re.compile(r"[0-9]+")


def plain_text(form, field) -> None:
    """No NUL or other control characters; one line unless the field is a text area."""
    if isinstance(field.data, str):
        problem = text_problem(field.data, multiline=isinstance(field, TextAreaField))
        if problem:
            raise StopValidation(problem)


class SafeForm(FlaskForm):
    """Base of every form: each text field checks ``plain_text`` before anything else,
    so a NUL byte or a stray line break gets a message on its field, never an error page."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self:
            if isinstance(field, StringField) and field.name != self.meta.csrf_field_name:
                field.validators = [plain_text, *field.validators]  # a new list: not shared


class SignupForm(SafeForm):
    name = StringField("Your name", validators=[
        InputRequired("Enter your name."),
        Length(max=MAX_NAME_LENGTH, message=f"Names can be at most {MAX_NAME_LENGTH} characters.")])
    email = EmailField("Email", validators=[
        InputRequired("Enter your email address."),
        Length(max=MAX_EMAIL_LENGTH,
               message=f"Email addresses can be at most {MAX_EMAIL_LENGTH} characters.")])
    password = PasswordField(
        f"Password (at least {MIN_PASSWORD_LENGTH} characters)",
        validators=[InputRequired("Choose a password.")],
        render_kw={"minlength": MIN_PASSWORD_LENGTH},  # the rule itself is the service's
    )


class LoginForm(SafeForm):
    email = EmailField("Email", validators=[InputRequired("Enter your email address.")])
    password = PasswordField("Password", validators=[InputRequired("Enter your password.")])


def parse_price_pence(raw: str) -> int:
    """'12.50' or '£12.5' → 1250. Raises ValueError with a message fit to show."""
    text = (raw or "").strip().lstrip("£").replace(",", "")
    if not text:
        raise ValueError("Enter a price in pounds, like 12.50 (0 for a free event).")
    if not _PRICE.fullmatch(text):
        raise ValueError("Enter the price as a number of pounds, like 12.50.")
    amount = Decimal(text)
    if abs(amount) > Decimal("1000000"):  # checked first: quantize() fails on huge numbers
        raise ValueError("That price is far too large.")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("Prices can't have fractions of a penny.")
    return int(amount * 100)


def parse_event_date(raw: str) -> datetime:
    try:
        moment = datetime.strptime((raw or "").strip(), EVENT_DATE_FORMAT)
        return moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError("Enter the date and time as YYYY-MM-DDTHH:MM (UTC).") from None


class EventForm(SafeForm):
    # Presence and length are the service's rules (``detail_problems``, run by
    # ``validate_event``), with its messages; the browser is only told the limits.
    name = StringField("Event name", render_kw={"required": True, "maxlength": MAX_NAME})
    description = TextAreaField("Description", render_kw={"maxlength": MAX_DESCRIPTION})
    location = StringField("Location", render_kw={"required": True, "maxlength": MAX_LOCATION})
    event_date = StringField("Date and time (UTC)",
                             validators=[InputRequired("Choose when the event starts.")])
    price = StringField("Price (£)", validators=[
        InputRequired("Enter a price in pounds, like 12.50 (0 for a free event).")])
    total_tickets = StringField("Number of tickets", description=f"Between 1 and {MAX_CAPACITY:,}.",
                                validators=[InputRequired("Say how many tickets there are.")])
    image = FileField("Image (JPEG, PNG or WebP, up to 5 MB)")

    def validate_price(self, field):
        try:
            self.price_pence = parse_price_pence(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_event_date(self, field):
        try:
            self.starts_at = parse_event_date(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_total_tickets(self, field):
        text = (field.data or "").strip().replace(",", "")
        if not _WHOLE_NUMBER.fullmatch(text):
            raise ValidationError("Enter the number of tickets as a whole number, like 100.")
        if len(text.lstrip("0")) > 9:  # int() of thousands of digits fails outright
            raise ValidationError("That's far too many tickets.")
        self.capacity = int(text)

    def validate_event(self, *, now: datetime) -> bool:
        """Check the shape of every field, then every domain rule, so all problems show at once."""
        valid = self.validate()
        problems = detail_problems(
            name=self.name.data or "",
            description=self.description.data or "",
            location=self.location.data or "",
            starts_at=getattr(self, "starts_at", None) if not self.event_date.errors else None,
            price_pence=getattr(self, "price_pence", None) if not self.price.errors else None,
            total_tickets=(getattr(self, "capacity", None)
                           if not self.total_tickets.errors else None),
            now=now,
        )
        for name, message in problems.items():
            field = getattr(self, name)
            if not field.errors:
                field.errors = [*field.errors, message]
        return valid and not problems

    def image_bytes(self) -> bytes | None:
        upload = self.image.data
        if upload is None or not getattr(upload, "filename", ""):
            return None
        return upload.read()


class CheckInForm(SafeForm):
    """The door: a ticket's QR code, typed, pasted, or read by a scanner or the camera."""

    token = StringField("Ticket code", filters=[lambda value: value.strip() if value else value],
                        validators=[DataRequired("Enter or scan a ticket code.")])


def attach_error(form: FlaskForm, error: ServiceError) -> None:
    """Show a service's refusal on the field it names, or above the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)
