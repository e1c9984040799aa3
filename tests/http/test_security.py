"""The security review's fixes, as a browser, a proxy or an attacker meets them: private pages
kept out of caches, production cookie/HSTS/proxy settings, sign-in limits per account
whatever the spelling, the picture upload limit, and the CSP's form targets."""

from __future__ import annotations

import re

import pytest
from flask import request, request_started

from config import load_config
from tests.http.test_auth import TOO_MANY, login, signed_in_as
from tests.http.test_seller import event_count, field_error, page, submit, with_image
from tests.support.buying import buy_directly
from tests.support.factories import PASSWORD, image_bytes, make_event, make_user

PRIVATE = "private, no-store"


@pytest.fixture
def app(any_db_app):
    """Every test here on SQLite and on PostgreSQL."""
    return any_db_app


# ------------------------------------------------------------- Cache-Control


def private_urls(app, *, event_id: int, ticket_id: int) -> list[str]:
    """Every GET page under /tickets, /seller and /account, and the pages of emailed links
    (/password, /verify), found from the URL map (so a new page there is checked too),
    filled in with ids the signed-in user may open (and a link's token)."""
    ids = {"event_id": event_id, "ticket_id": ticket_id, "token": "a-link-token"}
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not re.match(
                r"/(tickets|seller|account|password|verify)(/|$)", rule.rule):
            continue
        assert rule.arguments <= ids.keys(), f"give {rule.rule} an id to open"
        urls.append(rule.rule.replace("<int:event_id>", str(event_id)).replace(
            "<int:ticket_id>", str(ticket_id)).replace("<token>", ids["token"]))
    return urls


def test_every_ticket_and_organizer_page_is_kept_out_of_caches(app, client, organizer):
    own_event = make_event(organizer, name="Olive's gig")
    ticket = buy_directly(make_event(name="Someone else's gig"), organizer)
    urls = private_urls(app, event_id=own_event.id, ticket_id=ticket.id)
    assert {"/tickets", f"/tickets/{ticket.id}", "/seller",
            f"/seller/events/{own_event.id}/attendees.csv"} <= set(urls)

    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, url
        assert response.headers.get("Cache-Control") == PRIVATE, url

    # Refusals too: a cache must not keep "not yours" for the next person either.
    assert client.get("/tickets/999999").headers["Cache-Control"] == PRIVATE


def test_public_pages_keep_their_own_caching(client):
    event = make_event()

    for url in ["/", f"/events/{event.id}", "/login"]:
        assert "private" not in client.get(url).headers.get("Cache-Control", ""), url


# ------------------------------------------------------ production settings


def test_production_settings_are_off_on_the_embedded_default(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path)})
    assert (config["SESSION_COOKIE_SECURE"], config["REMEMBER_COOKIE_SECURE"]) == (False, False)
    assert (config["HSTS_SECONDS"], config["TRUSTED_PROXIES"]) == (0, 0)


def test_production_settings_are_read_from_the_environment(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path), "SESSION_COOKIE_SECURE": "1",
                          "HSTS_SECONDS": "31536000", "TRUSTED_PROXIES": "2"})
    assert (config["SESSION_COOKIE_SECURE"], config["REMEMBER_COOKIE_SECURE"]) == (True, True)
    assert (config["HSTS_SECONDS"], config["TRUSTED_PROXIES"]) == (31536000, 2)


@pytest.mark.parametrize("name, value", [
    ("SESSION_COOKIE_SECURE", "maybe"),
    ("HSTS_SECONDS", "a year"),
    ("TRUSTED_PROXIES", "-1"),
    ("IMAGE_UPLOAD_LIMIT", "lots"),
])
def test_a_bad_production_setting_stops_the_app_with_a_clear_message(tmp_path, name, value):
    with pytest.raises(RuntimeError, match=name):
        load_config({"INSTANCE_PATH": str(tmp_path), name: value})


def session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


def test_cookies_are_not_marked_secure_by_default(client):
    make_user(email="ada@example.com")
    assert "Secure" not in session_cookie(login(client))


@pytest.mark.app_config(SESSION_COOKIE_SECURE=True)
def test_secure_cookies_when_configured(client):
    make_user(email="ada@example.com")
    assert "; Secure" in session_cookie(login(client))


def test_no_hsts_by_default(client):
    assert "Strict-Transport-Security" not in client.get("/").headers


@pytest.mark.app_config(HSTS_SECONDS=31536000)
def test_hsts_when_configured(client):
    assert client.get("/").headers["Strict-Transport-Security"] == "max-age=31536000"


FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def seen_by_the_app(app, client, headers: dict) -> tuple[str, str]:
    """The client address and scheme the app saw for a request with ``headers``."""
    seen = []

    def note(sender, **extra):
        seen.append((request.remote_addr, request.scheme))

    with request_started.connected_to(note, app):
        client.get("/", headers=headers)
    return seen[0]


def test_forwarded_headers_are_ignored_without_trusted_proxies(app, client):
    assert seen_by_the_app(app, client, FORWARDED) == ("127.0.0.1", "http")


@pytest.mark.app_config(TRUSTED_PROXIES=1)
def test_a_trusted_proxys_forwarded_headers_are_believed(app, client):
    assert seen_by_the_app(app, client, FORWARDED) == ("203.0.113.9", "https")
    # Only the hop the proxy added: a client can't choose its address by prepending one.
    assert seen_by_the_app(app, client, {"X-Forwarded-For": "10.0.0.1, 203.0.113.7"})[0] == (
        "203.0.113.7")


def try_to_log_in_from(client, address: str, n: int):
    return client.post("/login", data={"email": f"guess{n}@example.com", "password": "nope"},
                       headers={"X-Forwarded-For": address})


def limited_per_address(client) -> tuple[int, int]:
    """Two failed sign-ins from one address use up its limit of two; then what a third from
    that address, and one from another address, are answered."""
    for n in range(2):
        assert try_to_log_in_from(client, "203.0.113.1", n).status_code == 422
    return (try_to_log_in_from(client, "203.0.113.1", 2).status_code,
            try_to_log_in_from(client, "203.0.113.2", 3).status_code)


@pytest.mark.app_config(RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_IP="2 per minute",
                        TRUSTED_PROXIES=1)
def test_behind_a_trusted_proxy_each_client_address_has_its_own_limit(client):
    assert limited_per_address(client) == (429, 422)


@pytest.mark.app_config(RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_IP="2 per minute")
def test_without_trusted_proxies_a_forged_address_gets_no_fresh_tries(client):
    assert limited_per_address(client) == (429, 429)


# ------------------------------------------------------------- sign-in limit


@pytest.mark.app_config(RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_EMAIL="3 per minute",
                        LOGIN_LIMIT_PER_IP="100 per minute")
def test_every_spelling_of_an_address_shares_one_limit(client):
    make_user(name="Ada Lovelace", email="ada@example.com")
    for spelling in ["ada@ｅxample.com", " Ada@Example.COM ", "ada@EXAMPLE.com"]:
        assert login(client, spelling, "wrong password").status_code == 422

    response = login(client, "ada@example.com", PASSWORD)

    assert response.status_code == 429
    assert TOO_MANY in page(response)
    assert signed_in_as(client) is None


@pytest.mark.app_config(RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_EMAIL="3 per minute",
                        LOGIN_LIMIT_PER_IP="100 per minute")
def test_text_that_is_no_address_is_answered_and_limited_too(client):
    for _ in range(3):
        assert login(client, "not an address\x00", "x").status_code == 422
    assert login(client, "NOT AN ADDRESS\x00", "x").status_code == 429


# ----------------------------------------------------------- picture uploads

PICTURE_LIMIT = pytest.mark.app_config(RATELIMIT_ENABLED=True, IMAGE_UPLOAD_LIMIT="2 per hour")


@PICTURE_LIMIT
def test_an_organizer_uploading_too_many_pictures_is_told_on_the_form(client, auth, organizer):
    for n in range(2):
        assert submit(client, "/seller/events/new",
                      with_image(image_bytes("PNG"), name=f"Gig {n}")).status_code == 303
    edit_url = f"/seller/events/{make_event(organizer).id}/edit"

    refused = submit(client, edit_url, with_image(image_bytes("PNG"), name="Typed name"))

    assert refused.status_code == 429
    assert "the limit is 2 per hour" in field_error(refused, "image")
    assert 'value="Typed name"' in page(refused)
    # Without a picture the organizer carries on; another organizer has their own count.
    without_picture = with_image(b"", "", name="Gig 3")
    assert submit(client, "/seller/events/new", without_picture).status_code == 303
    auth.logout()
    auth.login(make_user())
    assert submit(client, "/seller/events/new", with_image(image_bytes("PNG"))).status_code == 303
    assert event_count() == 5


@PICTURE_LIMIT
def test_an_oversized_upload_is_still_a_clear_413_with_the_limit_on(client, organizer):
    response = submit(client, "/seller/events/new", with_image(b"\0" * (6 * 1024 * 1024)))
    assert response.status_code == 413
    assert event_count() == 0


# ------------------------------------------------------------------- the CSP


def form_targets(response) -> list[str]:
    policy = response.headers["Content-Security-Policy"]
    return re.search(r"form-action ([^;]+)", policy).group(1).split()


def test_forms_may_only_post_to_the_site_itself(client):
    assert form_targets(client.get("/")) == ["'self'"]


@pytest.mark.app_config(PAYMENTS="stripe", STRIPE_SECRET_KEY="sk_test_x")
def test_with_stripe_the_checkout_and_connect_redirects_are_allowed(client):
    # The Buy-now and Connect forms are answered with a 303 to Stripe, and browsers check
    # form-action on the redirect too.
    assert form_targets(client.get("/")) == [
        "'self'", "https://checkout.stripe.com", "https://connect.stripe.com"]

