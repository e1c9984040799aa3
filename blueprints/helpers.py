"""Small view helpers shared by the blueprints: page-or-fragment and template filters."""

from __future__ import annotations

from datetime import date, datetime, timezone
from urllib.parse import urlsplit

from flask import Flask, request


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


def when(moment: datetime | None) -> str:
    """'Sat 6 Dec 2026, 19:30 UTC'."""
    if moment is None:
        return ""
    moment = moment.astimezone(timezone.utc)
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M} UTC"


def day_label(day: date) -> str:
    """'6 Dec 2026'."""
    return f"{day.day} {day:%b %Y}"


def iso_utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def register_filters(app: Flask) -> None:
    app.add_template_filter(gbp, "gbp")
    app.add_template_filter(money, "money")
    app.add_template_filter(when, "when")
    app.add_template_filter(iso_utc, "iso_utc")
    app.add_template_filter(day_label, "day_label")
    app.jinja_env.globals["now"] = now
