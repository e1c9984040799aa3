"""Small view helpers shared by the blueprints: page-or-fragment, input guards, filters."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone
from urllib.parse import urlsplit

from flask import Flask, Response, abort, make_response, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from werkzeug.routing import IntegerConverter

from models import CheckoutStatus, EndReason, EntryStatus, TicketStatus
from services import events, purchases, timezones
from services.text import plural, text_problem
from services.tickets import CheckInOutcome, grouped_code
from services.urls import absolute_url

MAX_ID = 2**31 - 1  # ids are INTEGER columns on PostgreSQL
MAX_PAGE = 10_000


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: an id the database can hold, so anything else is a 404.

    Werkzeug's own accepts any Unicode digits (``１２``) and any size, which the databases
    refuse with an error (a 500) instead of simply finding nothing.
    """

    regex = r"[1-9][0-9]{0,9}"  # ASCII digits, no leading zeros: one URL per id

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def refuse_control_characters() -> None:
    """400 for a query parameter or path part with NUL or another control character.

    PostgreSQL refuses NUL in text, and no link of ours carries control characters, so a
    request that does was typed or forged. Form fields get messages from their forms instead.
    """
    parts = [*(part for pair in request.args.items(multi=True) for part in pair),
             *(request.view_args or {}).values()]
    if any(isinstance(part, str) and text_problem(part) for part in parts):
        abort(400, description="The address contains characters we can't accept. "
                               "Check the link and try again.")


def page_number() -> int:
    """``?page=``: 1 when missing or not a number; never past a page that could exist."""
    raw = request.args.get("page", "")
    if not (raw.isascii() and raw.isdigit()):
        return 1
    if len(raw) > len(str(MAX_PAGE)):  # int() of thousands of digits fails outright
        return MAX_PAGE
    return min(max(int(raw), 1), MAX_PAGE)


def now() -> datetime:
    """The request's clock: every service call in a view takes this as ``now``."""
    return datetime.now(timezone.utc)


def wants_fragment() -> bool:
    """HTMX asked for a piece of the page (not a boosted page load or a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except that:

    - an answer marked ``shared`` (identical for everyone, such as
      /events/<id>/availability) neither sets the cookie nor varies on it, so a proxy or CDN
      keeps one copy for all. (Flask adds ``Vary: Cookie`` whenever anything so much as looks
      at the session, as Flask-Login does after every request.)
    - a cookie already verified by this process is not verified again until it expires:
      the waiting room's polls send the same cookie every few seconds, and checking its
      signature and decoding it was a tenth of an unchanged poll. Only exact cookie strings
      that passed the check are kept (per app, so per secret key), and only sessions of
      plain values, so no request can change what the next one with that cookie opens.
    """

    MAX_VERIFIED = 50_000  # cookies kept per process (a few MB); all forgotten when full

    def open_session(self, app: Flask, request):
        value = request.cookies.get(self.get_cookie_name(app))
        verified = app.extensions.setdefault("verified_sessions", {})
        hit = verified.get(value) if value else None
        if hit is not None and hit[0] > time.time():
            return self.session_class(hit[1])
        serializer = self.get_signing_serializer(app)
        if serializer is None or not value:
            return super().open_session(app, request)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if all(isinstance(item, (str, int, float, type(None))) for item in data.values()):
            if len(verified) >= self.MAX_VERIFIED:
                verified.clear()
            verified[value] = (signed_at.timestamp() + max_age, data)
        return self.session_class(data)

    def save_session(self, app: Flask, session, response: Response) -> None:
        if getattr(response, "shared", False):
            return
        super().save_session(app, session, response)


def shared(response: Response, *, max_age: int) -> Response:
    """Mark an answer the same for every viewer: public caching, no cookie, no ``Vary``."""
    response.shared = True
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


def vary_by_fragment(response: Response, *, per_user: bool = False) -> Response:
    """Tell caches the answer differs for HTMX (``HX-Request``), and by who is signed in
    (``Cookie``) when it shows their own state."""
    response.vary.add("HX-Request")
    if per_user:
        response.vary.add("Cookie")
    return response


def render_page_or_fragment(page_template: str, fragment_template: str, /, *,
                            status_code: int = 200, per_user: bool = False,
                            **context) -> Response:
    """The whole page, or the fragment HTMX asked for (the page includes it), from one
    context; either way with the ``Vary`` that keeps a cache from mixing them up."""
    template = fragment_template if wants_fragment() else page_template
    response = make_response(render_template(template, **context), status_code)
    return vary_by_fragment(response, per_user=per_user)


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirects)."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


def gbp(pence: int | None) -> str:
    """1250 → '£12.50'; 0 → 'Free'."""
    if pence is None:
        return ""
    if pence == 0:
        return "Free"
    pounds, pennies = divmod(pence, 100)
    return f"£{pounds:,}.{pennies:02d}"


def money(pence: int | None) -> str:
    """An amount of money, zero included: 1250 → '£12.50'; 0 → '£0.00'."""
    if pence is None:
        return ""
    sign = "−" if pence < 0 else ""
    pounds, pennies = divmod(abs(pence), 100)
    return f"{sign}£{pounds:,}.{pennies:02d}"




def day_label(day: date) -> str:
    """'6 Dec 2026'."""
    return f"{day.day} {day:%b %Y}"


def iso_utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# Templates compare states with these names, never with the strings they stand for.
STATE_NAMES = {
    "EntryStatus": EntryStatus, "EndReason": EndReason, "TicketStatus": TicketStatus,
    "CheckoutStatus": CheckoutStatus, "CheckInOutcome": CheckInOutcome,
}


def register_filters(app: Flask) -> None:
    app.add_template_filter(gbp, "gbp")
    app.add_template_filter(money, "money")
    app.add_template_filter(timezones.when, "when")
    app.add_template_filter(timezones.clock, "clock")
    app.add_template_filter(iso_utc, "iso_utc")
    app.add_template_filter(day_label, "day_label")
    app.add_template_filter(grouped_code, "door_code")
    app.jinja_env.globals.update(STATE_NAMES)
    app.jinja_env.globals["plural"] = plural
    # An event card's availability line (the listings render many cards from one query).
    app.jinja_env.globals["listing_state"] = lambda event: events.listing_state(event, now=now())


# Stripe puts the Checkout Session's id in place of this when it sends the buyer back.
_RETURNED_SESSION = "?session_id={CHECKOUT_SESSION_ID}"


def checkout_urls() -> purchases.CheckoutUrls:
    """Where checkout sends the buyer (inside a request: the last two use ``url_for``):
    "Buy now" and a join held at once both start a checkout."""
    return purchases.CheckoutUrls(
        # On BASE_URL, never the request's Host: Stripe sends the buyer back there.
        success=absolute_url("payments.success") + _RETURNED_SESSION,
        cancel=absolute_url("payments.cancel") + _RETURNED_SESSION,
        local_page=lambda session_id: url_for("payments.local_page", session_id=session_id),
        ticket=lambda ticket_id: url_for("tickets.show", ticket_id=ticket_id),
    )
