"""The route fuzzer: every route the app registers, every method it allows, hostile input.

Routes come from ``app.url_map`` and form field names from the forms themselves, so a new
route or field is fuzzed without touching this file. Each request goes out as an anonymous
visitor, a signed-in buyer and the organizer who owns the event; real ids, a real open
checkout and a real ticket are among the values, so the code past the 404 runs too.

Whatever arrives, the answer is never a 5xx and nothing is logged at ERROR level (Flask logs
"Exception on …" for every unhandled error).
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import pytest
from flask_wtf import FlaskForm
from werkzeug.routing.converters import NumberConverter
from wtforms.fields.core import UnboundField

from tests.support.factories import PASSWORD
from tests.support.visitors import Visitor
from tests.support.world import build_world

pytestmark = pytest.mark.app_config(PROPAGATE_EXCEPTIONS=False)  # 500s answered and logged

HUGE = "x" * 100_000
HOSTILE_IDS = ["0", "-1", str(2**31), str(2**63), str(10**30), "１２", "1e3", "\x00"]
HOSTILE_STRINGS = ["\x00", "a\r\nb", HUGE, "ünïcødé ✓ 𝄞 ٣", "../../etc/passwd", "%", " "]
HOSTILE_VALUES = [
    "\x00", "a\x00b", "a\r\nb", "\x1b[31m", "-1", "0", "99999999999999999999", "922337203685477580",
    "²", "１２", "1e400", "NaN", "-Infinity", "", " ", "2026-13-45T25:61", "<script>x</script>",
    "//evil.example", "ünïcødé ✓ 𝄞",
]
QUERY_NAMES = ["page", "q", "session_id", "next", "token"]
# Fields no form class declares: read from request.form directly, or added by Flask-WTF.
EXTRA_FIELDS = ["action", "csrf_token", "timezone", "sale_starts_at", "draft", "q", "session_id",
                "next"]
PLAUSIBLE = {
    "name": "Fuzz Night", "email": "fuzz@example.com", "password": PASSWORD,
    "description": "Loud.", "location": "Leeds", "price": "12.50", "total_tickets": "10",
    "timezone": "Europe/London", "token": "not-a-ticket",
}
ACTIONS = ["pay", "decline", "cancel"]  # the local payment page's buttons
ROLES = ["anonymous", "buyer", "owner"]
# Routes that end what later requests rely on (the session, the event, the ticket) go last.
LAST = re.compile(r"logout|cancel_event|refund")
_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def form_field_names() -> list[str]:
    """Every field of every form in the blueprints (all imported by the app), plus the ones
    views read by hand."""
    names = set(EXTRA_FIELDS)
    for form in _subclasses(FlaskForm):
        if form.__module__.startswith("blueprints."):
            names.update(name for cls in form.__mro__ for name, attr in vars(cls).items()
                         if isinstance(attr, UnboundField))
    return sorted(names)


def plausible_body(fields: list[str], rng: random.Random) -> dict[str, str]:
    starts = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    body = {name: PLAUSIBLE.get(name, starts if name.endswith("date") else "1") for name in fields}
    body["action"] = rng.choice(ACTIONS)
    return body


def form_bodies(fields: list[str], rng: random.Random) -> list[dict[str, str]]:
    """All fields one hostile value; 100 KB in a few fields at a time (a whole body of them
    is just a 413); a plausible body; and plausible bodies with one field made hostile."""
    plausible = plausible_body(fields, rng)
    bodies = [{name: value for name in fields} for value in HOSTILE_VALUES]
    bodies += [{**plausible, **{name: HUGE for name in fields[i:i + 4]}}
               for i in range(0, len(fields), 4)]
    bodies.append(plausible)
    for name in rng.sample(fields, k=min(8, len(fields))):
        bodies.append({**plausible, name: rng.choice(HOSTILE_VALUES + [HUGE])})
    return bodies


def url_for_rule(rule: str, values: dict[str, str]) -> str:
    """``rule`` with each ``<converter:name>`` replaced by its value, percent-encoded."""
    def replace(match):
        return quote(values[match.group("name")], safe="")
    return _ARGUMENT.sub(replace, rule)


def path_variants(rule: str, converters: dict, real: dict[str, str]) -> list[str]:
    """The URL with real values, then with each argument made hostile in turn."""
    urls = [url_for_rule(rule, real)]
    for match in _ARGUMENT.finditer(rule):
        name = match.group("name")
        converter = converters[match.group("converter") or "default"]
        hostile = HOSTILE_IDS if issubclass(converter, NumberConverter) else HOSTILE_STRINGS
        urls += [url_for_rule(rule, {**real, name: value}) for value in hostile]
    return urls


def query_strings(rng: random.Random) -> list[str]:
    """Every known query parameter set to one hostile value: NUL, 100 KB and a number past
    any page on every route, a sample of the other values on each."""
    values = ["\x00", HUGE, "922337203685477580", *rng.sample(HOSTILE_VALUES, k=5)]
    return [urlencode({name: value for name in QUERY_NAMES}) for value in values]


@pytest.fixture
def world(any_db_app):
    """The site of ``tests/support/world.py``: the owner's event (with a picture) and the
    buyer's ticket to it, and the buyer's live offer with its open local checkout on a
    second event (for /pay/local/<session_id>)."""
    site = build_world()
    real = {"event_id": str(site.event_id), "ticket_id": str(site.ticket_id),
            "session_id": site.session_id, "filename": "app.css", "name": site.image_name,
            "token": "not-a-link-token"}
    visitors = {"anonymous": Visitor(any_db_app), "buyer": Visitor(any_db_app, site.buyer),
                "owner": Visitor(any_db_app, site.owner)}
    return real, visitors


def requests_for(app, real: dict[str, str]):
    """(sort key, endpoint, method, url, form body or None) for every rule x method x input."""
    converters = app.url_map.converters
    fields = form_field_names()
    for rule in app.url_map.iter_rules():
        rng = random.Random(rule.rule + rule.endpoint)  # the same sample on every run
        for method in sorted(rule.methods & {"GET", "POST"}):
            late = (method == "POST", bool(LAST.search(rule.endpoint)))
            urls = path_variants(rule.rule, converters, real)
            real_url, variants = urls[0], urls[1:]
            for url in variants:
                yield late, rule.endpoint, method, url, None
            for query in query_strings(rng):
                yield late, rule.endpoint, method, f"{real_url}?{query}", None
            if method == "POST":
                for body in form_bodies(fields, rng):
                    yield late, rule.endpoint, method, real_url, body


def describe(value) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:100] + f"… ({len(text)} chars)"


def test_no_route_answers_5xx_or_logs_an_error(any_db_app, world, caplog):
    real, visitors = world
    plan = sorted(requests_for(any_db_app, real), key=lambda item: item[0])
    caplog.set_level(logging.ERROR)
    failures, answered = [], Counter()
    for role in ROLES:
        visitor = visitors[role]
        for n, (_, endpoint, method, url, body) in enumerate(plan):
            headers = {"HX-Request": "true"} if n % 3 == 0 else {}
            response = visitor.open(url, method, body, headers, multipart=n % 4 == 0)
            answered[role, endpoint, response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{role} {method} {describe(url)} {describe(body)} "
                                f"-> {response.status_code}")
            response.close()
            visitor.restore()
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    sent = sum(answered.values())
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures[:30])
    assert not errors, "\n".join(errors[:10])
    # The signed-in roles really got past the sign-in and the 404s to the pages behind them.
    for role, endpoint, status in [("owner", "seller.edit_event", 200),
                                   ("owner", "seller.new_event", 422),
                                   ("owner", "seller.checkin", 200),
                                   ("buyer", "tickets.show", 200),
                                   ("buyer", "payments.local_page", 200)]:
        assert answered[role, endpoint, status], f"{role} never got a {status} from {endpoint}"


def test_the_unsigned_webhook_is_refused_whatever_the_body(any_db_app):
    """Only Stripe's signature makes a webhook; anything else is a 400."""
    stripe = Visitor(any_db_app)
    for body in form_bodies(form_field_names(), random.Random(0)):
        assert stripe.open("/webhooks/stripe", "POST", body).status_code == 400
    for raw in (b"", b"\x00", b"{}", b'{"type": "charge.refunded"}', HUGE.encode()):
        with any_db_app.app_context():
            response = stripe.client.post("/webhooks/stripe", data=raw,
                                          content_type="application/json")
        assert response.status_code == 400
