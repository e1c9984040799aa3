"""HTML forms: parse what the browser sent into Python values, with field-level messages.

Forms only parse and check shape (present, a number, a date); the rules of the domain
(future date, capacity range, duplicate email…) live in ``services/`` and come back as
``ServiceError``s, which ``attach_error`` puts on the field they name.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, InputRequired, Length, StopValidation

from services import ServiceError, accounts, timezones
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


def _name_field(label: str = "Your name", **kwargs) -> StringField:
    return StringField(label, validators=[
        InputRequired("Enter your name."),
        Length(max=MAX_NAME_LENGTH, message=f"Names can be at most {MAX_NAME_LENGTH} characters.")],
        **kwargs)


def _email_field(label: str = "Email", **kwargs) -> EmailField:
    return EmailField(label, validators=[
        InputRequired("Enter your email address."),
        Length(max=MAX_EMAIL_LENGTH,
               message=f"Email addresses can be at most {MAX_EMAIL_LENGTH} characters.")],
        **kwargs)


def _new_password_field(label: str = "Password", **kwargs) -> PasswordField:
    return PasswordField(
        f"{label} (at least {MIN_PASSWORD_LENGTH} characters)",
        validators=[InputRequired("Choose a password.")],
        render_kw={"minlength": MIN_PASSWORD_LENGTH},  # the rule itself is the service's
        **kwargs)


def _current_password_field(id: str) -> PasswordField:
    # Several forms on the account page ask for it: each field needs an id of its own.
    return PasswordField("Current password", id=id,
                         validators=[InputRequired("Enter your current password.")])


def add_problems(form: FlaskForm, problems: dict[str, str]) -> None:
    """Put a service's problems on the fields they name, after the field's own (one
    message per field: the shape's, else the rule's)."""
    for name, message in problems.items():
        field = getattr(form, name)
        if not field.errors:
            field.errors = [*field.errors, message]


class SignupForm(SafeForm):
    name = _name_field()
    email = _email_field()
    password = _new_password_field()

    def validate_signup(self) -> bool:
        """Check every field's shape, then every rule of the service, so every problem
        shows at once rather than one per try."""
        valid = self.validate()
        problems = accounts.signup_problems(name=self.name.data or "",
                                            email=self.email.data or "",
                                            password=self.password.data or "")
        add_problems(self, problems)
        return valid and not problems


class LoginForm(SafeForm):
    email = EmailField("Email", validators=[InputRequired("Enter your email address.")])
    password = PasswordField("Password", validators=[InputRequired("Enter your password.")])


class ForgotPasswordForm(SafeForm):
    email = _email_field()


class ResetPasswordForm(SafeForm):
    password = _new_password_field("New password")


class NameForm(SafeForm):
    name = _name_field()


class EmailChangeForm(SafeForm):
    email = _email_field("New email address")
    current_password = _current_password_field("email-current-password")


class PasswordChangeForm(SafeForm):
    current_password = _current_password_field("password-current-password")
    password = _new_password_field("New password")


class DeleteAccountForm(SafeForm):
    current_password = _current_password_field("delete-current-password")


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


def parse_wall_clock(raw: str) -> datetime:
    """'2026-07-03T19:30' → a naive wall-clock time (its zone is the event's)."""
    try:
        return datetime.strptime((raw or "").strip(), EVENT_DATE_FORMAT)
    except ValueError:
        raise ValueError("Enter the date and time as YYYY-MM-DDTHH:MM.") from None


class EventForm(SafeForm):
    # Presence and length are the service's rules (``detail_problems``, run by
    # ``validate_event``), with its messages; the browser is only told the limits.
    name = StringField("Event name", render_kw={"required": True, "maxlength": MAX_NAME})
    description = TextAreaField("Description", render_kw={"maxlength": MAX_DESCRIPTION})
    location = StringField("Location", render_kw={"required": True, "maxlength": MAX_LOCATION})
    timezone = SelectField("Time zone", choices=list(timezones.zone_names()),
                           description="Where the event happens: its times below are "
                                       "wall-clock times there.")
    event_date = StringField("Date and time",
                             validators=[InputRequired("Choose when the event starts.")])
    sale_starts_at = StringField(
        "On-sale time (optional)",
        description="Leave empty to open sales as soon as the event is published. With a time, "
                    "people who arrive before it wait in a lobby and get a random place in "
                    "line at that time (anyone can check the draw).")
    price = StringField("Price (£)", validators=[
        InputRequired("Enter a price in pounds, like 12.50 (0 for a free event).")])
    total_tickets = StringField("Number of tickets", description=f"Between 1 and {MAX_CAPACITY:,}.",
                                validators=[InputRequired("Say how many tickets there are.")])
    image = FileField("Image (JPEG, PNG or WebP, up to 5 MB)")
    draft = BooleanField("Save as a draft (only you can see it until you publish it)")

    def __init__(self, *args, default_zone: str = timezones.UTC, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.timezone.data:  # not chosen (or a form without the field): the default
            self.timezone.data = default_zone
        self.repeated_times: list[str] = []  # fields whose time happens twice (clocks go back)

    def _zone(self) -> str | None:
        zone = self.timezone.data
        return zone if timezones.is_zone(zone) else None

    def _moment(self, field) -> datetime | None:
        """The field's wall-clock time in the chosen zone, as UTC; errors on the field."""
        try:
            wall_clock = parse_wall_clock(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from None
        zone = self._zone()
        if zone is None:
            return None  # the zone's own error says what to fix
        try:
            local = timezones.to_utc(wall_clock, zone)
        except timezones.LocalTimeError as error:
            raise ValidationError(str(error)) from None
        if local.repeated:
            self.repeated_times.append(field.name)
        return local.utc

    def validate_timezone(self, field):
        if not timezones.is_zone(field.data):
            raise ValidationError("Choose the time zone from the list, like Europe/London.")

    def validate_sale_starts_at(self, field):
        self.sale_starts = None
        if (field.data or "").strip():
            self.sale_starts = self._moment(field)

    def validate_price(self, field):
        try:
            self.price_pence = parse_price_pence(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_event_date(self, field):
        self.starts_at = self._moment(field)

    def validate_total_tickets(self, field):
        text = (field.data or "").strip().replace(",", "")
        if not _WHOLE_NUMBER.fullmatch(text):
            raise ValidationError("Enter the number of tickets as a whole number, like 100.")
        if len(text.lstrip("0")) > 9:  # int() of thousands of digits fails outright
            raise ValidationError("That's far too many tickets.")
        self.capacity = int(text)

    def validate_event(self, *, now: datetime,
                       current_sale_starts_at: datetime | None = None) -> bool:
        """Check the shape of every field, then every domain rule, so all problems show at once."""
        valid = self.validate()
        problems = detail_problems(
            timezone=None,  # the field's own check said it
            sale_starts_at=(getattr(self, "sale_starts", None)
                            if not self.sale_starts_at.errors else None),
            current_sale_starts_at=current_sale_starts_at,
            name=self.name.data or "",
            description=self.description.data or "",
            location=self.location.data or "",
            starts_at=(getattr(self, "starts_at", None)
                       if not self.event_date.errors else None),
            price_pence=getattr(self, "price_pence", None) if not self.price.errors else None,
            total_tickets=(getattr(self, "capacity", None)
                           if not self.total_tickets.errors else None),
            now=now,
        )
        add_problems(self, problems)
        return valid and not problems

    def image_bytes(self) -> bytes | None:
        upload = self.image.data
        if upload is None or not getattr(upload, "filename", ""):
            return None
        return upload.read()


class CheckInForm(SafeForm):
    """The door: a ticket's QR code read by a scanner or the camera (or pasted), or its door
    code typed."""

    token = StringField("Ticket code", filters=[lambda value: value.strip() if value else value],
                        validators=[DataRequired("Enter or scan a ticket code.")])


class SummaryEmailForm(SafeForm):
    """The organizer's daily sales email, on or off (the dashboard's setting)."""

    daily_sales_email = BooleanField("Email me a summary of yesterday's sales each morning")


def attach_error(form: FlaskForm, error: ServiceError) -> None:
    """Show a service's refusal on the field it names, or above the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)
