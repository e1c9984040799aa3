"""What typed input is accepted: prices, plain text (blueprints/forms.py, services/text.py),
and the services' own check of names, for callers that don't come through a form."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from flask_wtf import FlaskForm

import blueprints.forms
from blueprints.forms import SafeForm, parse_price_pence
from services.accounts import AccountError, register_user
from services.events import detail_problems
from services.text import CONTROL_CHARACTER, LINE_BREAK, text_problem
from tests.support.factories import PASSWORD

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("typed, pence", [
    ("12.50", 1250), ("£12.5", 1250), (" 1,000 ", 100_000), ("0", 0), (".5", 50), ("7.", 700),
    ("-3", -300),  # parsed; the service says a price can't be negative
])
def test_prices_are_read_as_pounds(typed, pence):
    assert parse_price_pence(typed) == pence


@pytest.mark.parametrize("typed, message", [
    ("", "Enter a price in pounds, like 12.50 (0 for a free event)."),
    ("1e400", "Enter the price as a number of pounds, like 12.50."),
    ("1E2", "Enter the price as a number of pounds, like 12.50."),
    ("NaN", "Enter the price as a number of pounds, like 12.50."),
    ("sNaN", "Enter the price as a number of pounds, like 12.50."),
    ("-Infinity", "Enter the price as a number of pounds, like 12.50."),
    ("１２", "Enter the price as a number of pounds, like 12.50."),
    ("١٢", "Enter the price as a number of pounds, like 12.50."),
    ("1_000", "Enter the price as a number of pounds, like 12.50."),
    ("12.50.1", "Enter the price as a number of pounds, like 12.50."),
    ("12.505", "Prices can't have fractions of a penny."),
    ("1000000.01", "That price is far too large."),
    ("9" * 100_000, "That price is far too large."),
])
def test_a_price_that_is_not_plain_pounds_is_refused_with_a_reason(typed, message):
    with pytest.raises(ValueError) as refused:
        parse_price_pence(typed)
    assert str(refused.value) == message


@pytest.mark.parametrize("text, multiline, problem", [
    ("Ada Lovelace", False, None),
    ("Café ✓ 𝄞 ١٢", False, None),
    ("a\x00b", False, CONTROL_CHARACTER),
    ("a\x7fb", False, CONTROL_CHARACTER),
    ("a\x85b", False, CONTROL_CHARACTER),
    ("a\tb", False, CONTROL_CHARACTER),
    ("a\rb", False, LINE_BREAK),
    ("a\nb", False, LINE_BREAK),
    ("a\u2029b", False, LINE_BREAK),
    ("line\r\nline\tcell\u2028", True, None),
    ("line\n\x00", True, CONTROL_CHARACTER),
    ("bell\x07", True, CONTROL_CHARACTER),
])
def test_text_may_not_hold_control_characters_and_one_line_means_one_line(text, multiline,
                                                                           problem):
    assert text_problem(text, multiline=multiline) == problem


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def test_every_form_checks_its_text_fields(app):
    """The app imported every blueprint: each of their forms must build on SafeForm."""
    forms = [form for form in _subclasses(FlaskForm) if form.__module__.startswith("blueprints.")]

    assert blueprints.forms.EventForm in forms
    assert [form.__name__ for form in forms if not issubclass(form, SafeForm)] == []


def test_the_event_rules_refuse_control_characters_too():
    problems = detail_problems(
        name="Gig\r\nBcc: all@example.com", location="Leeds\x00", description="Doors\r\n7pm",
        starts_at=NOW + timedelta(days=1), price_pence=100, total_tickets=10, now=NOW)

    assert problems == {"name": LINE_BREAK, "location": CONTROL_CHARACTER}


@pytest.mark.parametrize("name, message", [("Mallory\r\nBcc: x@evil.example", LINE_BREAK),
                                           ("Mallory\x00", CONTROL_CHARACTER)])
def test_an_account_name_must_be_one_line_of_text(app, name, message):
    with pytest.raises(AccountError) as refused:
        register_user(name=name, email="mallory@example.com", password=PASSWORD)

    assert (refused.value.field, refused.value.message) == ("name", message)
