"""Absolute links on the site's public address (``BASE_URL``).

Every URL that leaves the site (in an email, or sent to Stripe as a return address) is
built here from configuration, never from the request's ``Host`` header: a forged Host
would otherwise send buyers' Checkout returns or email links to someone else's server.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def absolute_url(endpoint: str, **values) -> str:
    """The full link to ``endpoint`` on ``BASE_URL`` (works inside or outside a request)."""
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path.rstrip("/") or "/", url_scheme=base.scheme or "http")
    return adapter.build(endpoint, values, force_external=True)
