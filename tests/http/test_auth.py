"""Accounts through the browser's eyes: /signup, /login, /logout, and the sign-in limits."""

from __future__ import annotations

import html
import re
import time

import pytest
from sqlalchemy import func, select

from extensions import db
from models import User
from tests.support import mailbox
from tests.support.factories import PASSWORD, csrf_token_from, make_user

GENERIC_LOGIN_ERROR = "That email and password don't match an account."
TOO_MANY = "Too many failed attempts. Please wait"


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def signed_in_as(client) -> str | None:
    """The name the navigation bar shows, or None when signed out."""
    match = re.search(r"Signed in as <strong>(.*?)</strong>", page(client.get("/")))
    return match.group(1) if match else None


def signup(client, *, query=None, **fields):
    data = {"name": "Ada Lovelace", "email": "ada@example.com", "password": PASSWORD}
    data.update(fields)
    return client.post("/signup", data=data, query_string=query)


def login(client, email="ada@example.com", password=PASSWORD, *, query=None):
    return client.post("/login", data={"email": email, "password": password}, query_string=query)


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


# --------------------------------------------------------------------- signing up


def test_the_signup_page_asks_for_name_email_and_password(client):
    response = client.get("/signup")

    assert response.status_code == 200
    for field in ("name", "email", "password"):
        assert f'name="{field}"' in page(response)


def test_a_visitor_signs_up_and_is_signed_in_at_once(client):
    response = signup(client, name="Ada Lovelace", email="Ada@Example.com")

    assert response.status_code == 303
    assert response.location == "/"
    assert signed_in_as(client) == "Ada Lovelace"
    assert db.session.scalar(select(User.email)) == "ada@example.com"


def test_signing_up_sends_the_link_to_confirm_the_address(app, client):
    signup(client, name="Ada Lovelace", email="Ada@Example.com")

    welcome = page(client.get("/"))
    assert "We've sent a link to ada@example.com" in welcome
    message = mailbox.latest(app.config["INSTANCE_PATH"], "ada@example.com",
                             "Confirm your email address")
    assert "Ada Lovelace" in str(message["To"])
    assert mailbox.link_path(message).startswith("/verify/")
    assert db.session.scalar(select(User.email_verified_at)) is None


def test_a_signup_shows_every_problem_at_once(client):
    make_user(email="ada@example.com")

    response = signup(client, name="", email="ADA@example.com", password="short")

    assert response.status_code == 422
    text = page(response)
    assert "Enter your name." in text
    assert "An account with this email already exists" in text
    assert "at least 8 characters" in text
    assert text.count('class="field-error"') == 3
    assert user_count() == 1


@pytest.mark.parametrize("variant", ["ada+tickets@example.com", "ADA+2@Example.com"])
def test_another_spelling_of_a_taken_address_gets_the_same_answer(client, variant):
    make_user(name="First Ada", email="ada@example.com")

    response = signup(client, name="Second Ada", email=variant)

    assert response.status_code == 422
    assert "An account with this email already exists" in page(response)
    assert user_count() == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        pytest.param({"email": "not-an-email"}, "Enter a valid email address", id="bad email"),
        pytest.param({"password": "short"}, "at least 8 characters", id="short password"),
        pytest.param({"name": ""}, "Enter your name.", id="empty name"),
        pytest.param({"name": "   "}, "Enter your name.", id="blank name"),
        pytest.param({"email": ""}, "Enter your email address.", id="empty email"),
    ],
)
def test_a_bad_signup_shows_what_to_fix_and_creates_nobody(client, fields, message):
    response = signup(client, **fields)

    assert response.status_code == 422
    assert message in page(response)
    assert 'class="field-error"' in page(response)
    assert user_count() == 0
    assert signed_in_as(client) is None


def test_signing_up_twice_with_the_same_email_is_refused(client):
    make_user(name="First Ada", email="ada@example.com")

    response = signup(client, name="Second Ada", email="ADA@example.com")

    assert response.status_code == 422
    assert "An account with this email already exists" in page(response)
    assert user_count() == 1
    assert signed_in_as(client) is None


def test_a_refused_signup_keeps_what_was_typed_except_the_password(client):
    response = signup(client, name="Ada Lovelace", email="ada@example.com", password="short")

    assert 'value="Ada Lovelace"' in page(response)
    assert 'value="ada@example.com"' in page(response)
    assert "short" not in re.findall(r'<input[^>]*name="password"[^>]*>', page(response))[0]


# --------------------------------------------------------------------- signing in and out


def test_a_member_signs_in_and_sees_their_name(client):
    make_user(name="Ada Lovelace", email="ada@example.com")

    response = login(client, " ADA@example.com ")

    assert response.status_code == 303
    assert response.location == "/"
    assert signed_in_as(client) == "Ada Lovelace"


@pytest.mark.parametrize(
    "email, password",
    [
        pytest.param("ada@example.com", "wrong password", id="wrong password"),
        pytest.param("nobody@example.com", PASSWORD, id="unknown email"),
    ],
)
def test_a_failed_sign_in_gives_the_same_vague_answer(client, email, password):
    make_user(email="ada@example.com")

    response = login(client, email, password)

    assert response.status_code == 422
    assert GENERIC_LOGIN_ERROR in page(response)
    assert signed_in_as(client) is None


def test_signing_out_takes_a_post(client, auth):
    make_user(name="Ada Lovelace", email="ada@example.com")
    auth.login("ada@example.com")

    assert client.get("/logout").status_code == 405
    assert signed_in_as(client) == "Ada Lovelace"

    response = auth.logout()
    assert response.status_code == 303
    assert signed_in_as(client) is None


@pytest.mark.parametrize(
    "target, landing",
    [
        ("/seller", "/seller"),
        ("/events/1?tab=queue", "/events/1?tab=queue"),
        ("https://evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_after_signing_in_next_only_leads_somewhere_on_this_site(client, target, landing):
    make_user(email="ada@example.com")

    response = login(client, query={"next": target})

    assert response.status_code == 303
    assert response.location == landing


@pytest.mark.parametrize("target, landing", [("/seller", "/seller"), ("//evil.example", "/")])
def test_after_signing_up_next_only_leads_somewhere_on_this_site(client, target, landing):
    response = signup(client, query={"next": target})

    assert response.status_code == 303
    assert response.location == landing


# --------------------------------------------------------------------- rate limits

LOGIN_LIMITS = pytest.mark.app_config(
    RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_EMAIL="3 per minute", LOGIN_LIMIT_PER_IP="5 per minute"
)


def fail_to_log_in(client, email: str, times: int) -> None:
    for _ in range(times):
        assert login(client, email, "wrong password").status_code == 422


@LOGIN_LIMITS
def test_guessing_one_accounts_password_is_stopped_after_three_tries(client):
    make_user(name="Ada Lovelace", email="ada@example.com")
    fail_to_log_in(client, "ada@example.com", 1)
    fail_to_log_in(client, "ADA@example.com", 1)  # the same account, whatever the case
    fail_to_log_in(client, "ada+x@example.com", 1)  # or however it is spelt

    response = login(client, "ada@example.com", PASSWORD)

    assert response.status_code == 429
    assert "Sign in" in page(response) and 'name="password"' in page(response)
    assert TOO_MANY in page(response)
    # When to try again, in words and for programs.
    wait = int(re.search(r"Please wait (\d+) seconds", page(response)).group(1))
    assert 0 < wait <= 61  # the window's end, rounded up
    assert 0 < int(response.headers["Retry-After"]) <= 61
    assert signed_in_as(client) is None


@LOGIN_LIMITS
def test_signing_in_successfully_is_never_held_back(client, auth):
    make_user(name="Ada Lovelace", email="ada@example.com")

    for _ in range(6):  # more than either limit
        assert login(client, "ada@example.com").status_code == 303
        auth.logout()

    assert login(client, "ada@example.com").status_code == 303
    assert signed_in_as(client) == "Ada Lovelace"


@LOGIN_LIMITS
def test_a_strangers_guesses_do_not_lock_the_owner_out_of_their_own_browser(app, client, auth):
    make_user(name="Ada Lovelace", email="ada@example.com")
    assert login(client, "ada@example.com").status_code == 303  # Ada's browser, trusted now
    auth.logout()
    stranger = app.test_client()
    for _ in range(3):
        assert login(stranger, "ada@example.com", "guess").status_code == 422
    assert login(stranger, "ada@example.com", PASSWORD).status_code == 429

    assert login(client, "ada@example.com").status_code == 303
    assert signed_in_as(client) == "Ada Lovelace"


@LOGIN_LIMITS
def test_a_trusted_browser_has_a_limit_of_its_own(client, auth):
    make_user(name="Ada Lovelace", email="ada@example.com")
    assert login(client, "ada@example.com").status_code == 303
    auth.logout()

    fail_to_log_in(client, "ada@example.com", 3)

    assert login(client, "ada@example.com").status_code == 429


@pytest.mark.app_config(RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_IP="50 per minute",
                        LOGIN_LIMIT_PER_EMAIL="1 per 1 second; 2 per hour")
def test_the_wait_grows_with_the_failures(client):
    make_user(email="ada@example.com")
    fail_to_log_in(client, "ada@example.com", 1)
    first = login(client, "ada@example.com", "wrong")
    assert first.status_code == 429
    assert re.search(r"Please wait \d+ seconds", page(first))

    time.sleep(1.1)  # the short wait is over: one more try
    fail_to_log_in(client, "ada@example.com", 1)
    second = login(client, "ada@example.com", "wrong")

    assert second.status_code == 429
    assert re.search(r"Please wait (5\d|60) minutes", page(second))


@LOGIN_LIMITS
def test_the_limit_on_one_account_leaves_other_accounts_alone(client):
    make_user(name="Grace Hopper", email="grace@example.com")
    fail_to_log_in(client, "ada@example.com", 3)

    assert login(client, "grace@example.com").status_code == 303
    assert signed_in_as(client) == "Grace Hopper"


@LOGIN_LIMITS
def test_one_address_trying_many_accounts_is_stopped_after_five_tries(client):
    make_user(name="Grace Hopper", email="grace@example.com")
    for n in range(5):
        fail_to_log_in(client, f"guess{n}@example.com", 1)

    response = login(client, "grace@example.com")

    assert response.status_code == 429
    assert TOO_MANY in page(response)
    assert signed_in_as(client) is None


# --------------------------------------------------------------------- CSRF


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_a_signup_without_the_forms_csrf_token_is_refused(client):
    response = signup(client)

    assert response.status_code == 400
    assert user_count() == 0
    assert signed_in_as(client) is None


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_a_signup_with_the_forms_csrf_token_goes_through(client):
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))

    response = signup(client, csrf_token=token)

    assert response.status_code == 303
    assert signed_in_as(client) == "Ada Lovelace"


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_signing_out_without_the_csrf_token_is_refused(client):
    make_user(name="Ada Lovelace", email="ada@example.com")
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"email": "ada@example.com", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 303

    assert client.post("/logout").status_code == 400
    assert signed_in_as(client) == "Ada Lovelace"


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_an_htmx_post_with_a_stale_token_reloads_the_page(client):
    from tests.support.factories import make_event

    event = make_event()
    response = client.post(f"/events/{event.id}/join", headers={"HX-Request": "true"},
                           data={"csrf_token": "stale"})
    assert response.status_code == 400
    assert response.headers["HX-Refresh"] == "true"
    assert "session expired" in response.get_data(as_text=True)
