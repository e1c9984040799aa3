"""Accounts a ticket site can trust, through the pages a person uses: confirming the address
from the emailed link, forgotten passwords, sessions that end, and the account page.

Every link is taken from the email the app wrote to ``instance/mail/``, as its recipient
would; bad links are the ones people and attackers really hold: expired, used, altered,
made for something else or for someone else.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from extensions import db
from models import AuditEntry, SignInSession, User, WaitingListEntry
from services import account_links
from tests.support import mailbox
from tests.support.buying import buy_directly
from tests.support.factories import PASSWORD, csrf_token_from, make_event, make_user
from tests.support.html import hook
from tests.support.visitors import ServerLikeClient

HX = {"HX-Request": "true"}
NEW_PASSWORD = "a brand new password"
CONFIRM = "Confirm your email address"
RESET = "Choose a new password"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def emailed_link(app, to: str, subject: str) -> str:
    return mailbox.link_path(mailbox.latest(app.config["INSTANCE_PATH"], to, subject))


def emails_to(app, to: str, subject: str) -> int:
    return sum(subject in str(m["Subject"]) for m in mailbox.inbox(app.config["INSTANCE_PATH"], to))


def signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def copy_of_cookie(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def reload(user: User) -> User:
    db.session.rollback()
    return db.session.get(User, user.id)


def ago(**delta) -> datetime:
    return datetime.now(timezone.utc) - timedelta(**delta)


def tampered(token: str) -> str:
    """The token with one character of its payload changed (the signature no longer fits)."""
    return ("B" if token[0] != "B" else "C") + token[1:]


@pytest.fixture
def app(any_db_app):
    """Every test here on SQLite and on PostgreSQL."""
    return any_db_app


@pytest.fixture(autouse=True)
def browsers_like_a_servers(app):
    """Every client's requests each load their user afresh, as a server's would: a session
    ended on the server must show on the very next request."""
    app.test_client_class = ServerLikeClient


@pytest.fixture
def newcomer(app, client):
    """Someone who has just signed up through the form (signed in, address unconfirmed)."""
    client.post("/signup", data={"name": "Nia Newcomer", "email": "nia@example.com",
                                 "password": PASSWORD})
    return db.session.scalar(select(User).where(User.email == "nia@example.com"))


# ------------------------------------------------------------------ confirming the address


def test_the_emailed_link_confirms_the_address_and_then_the_person_can_join(app, client,
                                                                            newcomer):
    event = make_event(total_tickets=5)
    link = emailed_link(app, "nia@example.com", CONFIRM)

    page = client.get(link)
    assert page.status_code == 200
    assert "nia@example.com" in text(page)
    assert page.headers["Cache-Control"] == "private, no-store"
    assert reload(newcomer).email_verified_at is None  # opening the page changes nothing

    response = client.post(link)
    assert response.status_code == 303
    assert "nia@example.com is confirmed" in text(client.get(response.location))
    assert reload(newcomer).email_verified_at is not None

    assert client.post(f"/events/{event.id}/join").status_code == 303
    assert db.session.scalar(select(WaitingListEntry.status)) == "offered"


def test_until_confirmed_the_event_page_explains_and_a_join_is_refused(app, client, newcomer):
    event = make_event(total_tickets=5)

    page = text(client.get(f"/events/{event.id}"))
    assert "Confirm your email address to get a ticket" in page
    assert "nia@example.com" in page
    assert "Send me a new link" in page
    assert "Buy ticket" not in page and "Join the waiting list" not in page

    plain = client.post(f"/events/{event.id}/join")
    swapped = client.post(f"/events/{event.id}/join", headers=HX)

    for response in (plain, swapped):
        assert response.status_code == 409
        assert "Confirm your email address before you join a waiting list" in text(response)
    assert hook(swapped.get_data(as_text=True), "queue-status")["status"] == "none"
    assert db.session.scalar(select(WaitingListEntry.id)) is None


def test_browsing_and_the_account_page_work_unconfirmed(client, newcomer):
    event = make_event()
    assert client.get("/").status_code == 200
    assert client.get(f"/events/{event.id}").status_code == 200
    account = client.get("/account")
    assert account.status_code == 200
    assert "Not confirmed yet" in text(account)


def test_a_new_link_can_be_asked_for_and_the_old_one_still_works_once(app, client, newcomer):
    event = make_event()
    first = emailed_link(app, "nia@example.com", CONFIRM)

    response = client.post("/account/resend-confirmation",
                           data={"next": f"/events/{event.id}"})

    assert response.status_code == 303
    assert response.location == f"/events/{event.id}"
    assert "We've sent a new link to nia@example.com" in text(client.get(response.location))
    assert emails_to(app, "nia@example.com", CONFIRM) == 2
    second = emailed_link(app, "nia@example.com", CONFIRM)
    assert client.post(first).status_code == 303
    assert client.post(second).status_code == 400  # one of them, once


def test_asking_for_a_link_when_confirmed_says_so_and_sends_nothing(app, client, auth):
    ada = make_user(name="Ada", email="ada@example.com")
    auth.login(ada)

    response = client.post("/account/resend-confirmation")

    assert response.location == "/account"
    assert "already confirmed" in text(client.get("/account"))
    assert emails_to(app, "ada@example.com", CONFIRM) == 0


@pytest.mark.app_config(RATELIMIT_ENABLED=True, ACCOUNT_EMAIL_LIMIT="2 per hour")
def test_asking_for_links_again_and_again_is_held_back(app, client, newcomer):
    for _ in range(2):
        assert client.post("/account/resend-confirmation").status_code == 303

    response = client.post("/account/resend-confirmation")

    assert response.status_code == 429
    assert re.search(r"Please wait (59|60) minutes", text(response))
    assert emails_to(app, "nia@example.com", CONFIRM) == 3  # the sign-up's and two more


def _verify_links(user: User, other: User) -> dict[str, str]:
    now = datetime.now(timezone.utc)
    good = account_links.make_token(user, account_links.VERIFY, now=now)
    return {
        "expired": account_links.make_token(user, account_links.VERIFY, now=ago(hours=25)),
        "tampered": tampered(good),
        "for something else": account_links.make_token(user, account_links.RESET, now=now),
        "signed with another key": good[:-3] + ("AAA" if good[-3:] != "AAA" else "BBB"),
        "from the future": account_links.make_token(user, account_links.VERIFY,
                                                    now=now + timedelta(hours=1)),
        "someone else's, altered to name this user": _swap_user(
            account_links.make_token(other, account_links.VERIFY, now=now), user.id),
    }


def _swap_user(token: str, user_id: int) -> str:
    """``token`` with its payload rewritten to name ``user_id`` (its signature kept)."""
    import base64
    import json

    payload, rest = token.split(".", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["u"] = user_id
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
    return forged.decode().rstrip("=") + "." + rest


@pytest.mark.parametrize("kind", ["expired", "tampered", "for something else",
                                  "signed with another key", "from the future",
                                  "someone else's, altered to name this user"])
def test_a_bad_confirmation_link_says_what_to_do_and_confirms_nothing(client, newcomer, kind):
    other = make_user(verified=False)
    token = _verify_links(newcomer, other)[kind]

    page = client.get(f"/verify/{token}")
    posted = client.post(f"/verify/{token}")

    assert page.status_code == posted.status_code == 400
    assert "This link can't be used" in text(page)
    assert "expired" in text(page) or "isn't valid" in text(page)
    assert "Send me a new link" in text(page)
    assert reload(newcomer).email_verified_at is None
    assert reload(other).email_verified_at is None


def test_a_used_confirmation_link_says_so(app, client, newcomer):
    link = emailed_link(app, "nia@example.com", CONFIRM)
    assert client.post(link).status_code == 303

    response = client.get(link)

    assert response.status_code == 400
    assert "already been used" in text(response)


def test_someone_elses_link_confirms_their_address_not_the_viewers(app, client, auth, newcomer):
    link = emailed_link(app, "nia@example.com", CONFIRM)
    client.post("/logout")
    bob = make_user(name="Bob", email="bob@example.com", verified=False)
    auth.login(bob)

    assert client.post(link).status_code == 303

    assert reload(newcomer).email_verified_at is not None
    assert reload(bob).email_verified_at is None


def test_a_confirmation_link_dies_when_the_address_changes(app, client, newcomer):
    link = emailed_link(app, "nia@example.com", CONFIRM)
    client.post("/account", data={"action": "email", "email": "nia@work.example",
                                  "current_password": PASSWORD})
    client.post(emailed_link(app, "nia@work.example", "Confirm your new email address"))

    response = client.post(link)

    assert response.status_code == 400
    assert reload(newcomer).email == "nia@work.example"


# ------------------------------------------------------------------ forgotten passwords


def test_forgot_password_answers_the_same_for_any_address_and_mails_only_an_account(
        app, client, caplog):
    make_user(name="Ada", email="ada@example.com")
    caplog.set_level(logging.INFO, logger="services.account_mail")

    known = client.post("/password/forgot", data={"email": "ADA@example.com"})
    unknown = client.post("/password/forgot", data={"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 303
    assert known.location == unknown.location == "/login"
    told = text(client.get("/login"))
    assert "If an account uses ada@example.com, we've sent it a link" in told
    assert "If an account uses nobody@example.com, we've sent it a link" in told
    assert emails_to(app, "ada@example.com", RESET) == 1
    assert emails_to(app, "nobody@example.com", RESET) == 0
    link = emailed_link(app, "ada@example.com", RESET)
    assert any(link in record.getMessage() for record in caplog.records)  # no SMTP: logged


def test_forgot_password_asks_for_a_real_address(client):
    response = client.post("/password/forgot", data={"email": "not an address"})

    assert response.status_code == 422
    assert "Enter a valid email address" in text(response)


@pytest.mark.app_config(RATELIMIT_ENABLED=True, ACCOUNT_EMAIL_LIMIT="2 per hour")
@pytest.mark.parametrize("address", ["ada@example.com", "nobody@example.com"])
def test_reset_links_for_one_address_are_held_back_alike_whether_it_has_an_account(
        app, client, address):
    make_user(email="ada@example.com")
    for _ in range(2):
        assert client.post("/password/forgot", data={"email": address}).status_code == 303

    response = client.post("/password/forgot", data={"email": address.upper()})

    assert response.status_code == 429
    assert "You've asked for several links already" in text(response)


def test_a_reset_link_sets_a_new_password_and_ends_every_session(app, client, auth):
    ada = make_user(name="Ada", email="ada@example.com")
    auth.login(ada)
    laptop = copy_of_cookie(app, client)
    client.post("/password/forgot", data={"email": "ada@example.com"})
    link = emailed_link(app, "ada@example.com", RESET)

    form = client.get(link)
    assert form.status_code == 200
    assert 'name="password"' in text(form)
    response = client.post(link, data={"password": NEW_PASSWORD})

    assert response.status_code == 303 and response.location == "/login"
    assert "Sign in with your new password" in text(client.get("/login"))
    assert not signed_in(client) and not signed_in(laptop)
    assert auth.login("ada@example.com").status_code == 422  # the old password
    assert auth.login("ada@example.com", NEW_PASSWORD).status_code == 303
    assert emails_to(app, "ada@example.com", "password was changed") == 1
    assert client.get(link).status_code == 400  # used


def test_a_weak_new_password_is_refused_and_the_link_still_works(app, client):
    make_user(email="ada@example.com")
    client.post("/password/forgot", data={"email": "ada@example.com"})
    link = emailed_link(app, "ada@example.com", RESET)

    weak = client.post(link, data={"password": "short"})

    assert weak.status_code == 422
    assert "at least 8 characters" in text(weak)
    assert client.post(link, data={"password": NEW_PASSWORD}).status_code == 303


def test_a_reset_link_confirms_an_unconfirmed_address(app, client):
    nia = make_user(email="nia@example.com", verified=False)
    client.post("/password/forgot", data={"email": "nia@example.com"})

    client.post(emailed_link(app, "nia@example.com", RESET), data={"password": NEW_PASSWORD})

    assert reload(nia).email_verified_at is not None


@pytest.mark.parametrize("kind", ["expired", "tampered", "for something else", "used",
                                  "someone else's, altered to name this user"])
def test_a_bad_reset_link_changes_no_password(app, client, auth, kind):
    ada = make_user(name="Ada", email="ada@example.com")
    other = make_user(email="other@example.com")
    now = datetime.now(timezone.utc)
    token = {
        "expired": lambda: account_links.make_token(ada, account_links.RESET,
                                                    now=ago(minutes=61)),
        "tampered": lambda: tampered(account_links.make_token(ada, account_links.RESET,
                                                              now=now)),
        "for something else": lambda: account_links.make_token(ada, account_links.VERIFY,
                                                               now=now),
        "used": lambda: _used_reset_token(client, ada),
        "someone else's, altered to name this user": lambda: _swap_user(
            account_links.make_token(other, account_links.RESET, now=now), ada.id),
    }[kind]()
    password_now = reload(ada).password_hash

    page = client.get(f"/password/reset/{token}")
    posted = client.post(f"/password/reset/{token}", data={"password": "stolen password!"})

    assert page.status_code == posted.status_code == 400
    assert "Ask for a new link" in text(page)
    assert reload(ada).password_hash == password_now
    assert auth.login("ada@example.com", "stolen password!").status_code == 422


def _used_reset_token(client, user: User) -> str:
    token = account_links.make_token(user, account_links.RESET, now=datetime.now(timezone.utc))
    assert client.post(f"/password/reset/{token}", data={"password": NEW_PASSWORD}
                       ).status_code == 303
    return token


# ------------------------------------------------------------------ sessions that end


def test_a_session_cookie_copied_before_signing_out_is_refused_after(app, client, auth):
    auth.login(make_user(name="Ada"))
    thief = copy_of_cookie(app, client)
    assert signed_in(thief)

    auth.logout()

    assert not signed_in(thief)
    assert "Signed in as" not in text(thief.get("/"))


def test_signing_out_everywhere_ends_every_browser_this_one_included(app, client, auth):
    ada = make_user(name="Ada")
    auth.login(ada)
    phone = app.test_client()
    phone.post("/login", data={"email": ada.email, "password": PASSWORD})
    copy = copy_of_cookie(app, client)
    assert "signed in on 2 browsers" in text(client.get("/account"))

    response = client.post("/account", data={"action": "sign-out-everywhere"})

    assert response.status_code == 303 and response.location == "/login"
    assert not signed_in(client) and not signed_in(phone) and not signed_in(copy)
    assert auth.login(ada).status_code == 303  # signing in again works


def test_signing_out_here_leaves_other_browsers_signed_in(app, client, auth):
    ada = make_user(name="Ada")
    auth.login(ada)
    phone = app.test_client()
    phone.post("/login", data={"email": ada.email, "password": PASSWORD})

    auth.logout()

    assert signed_in(phone)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_the_csrf_token_is_a_new_one_after_signing_in(client):
    ada = make_user(email="ada@example.com")
    before = csrf_token_from(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"email": ada.email, "password": PASSWORD,
                                       "csrf_token": before}).status_code == 303

    after = csrf_token_from(client.get("/account").get_data(as_text=True))

    assert after != before
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    assert client.post("/logout", data={"csrf_token": after}).status_code == 303


@pytest.mark.app_config(PERMANENT_SESSION_LIFETIME=timedelta(hours=2))
def test_a_sign_in_lasts_the_configured_lifetime(client, auth):
    ada = make_user()
    response = auth.login(ada)

    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    expires = datetime.strptime(cookie.split("Expires=")[1].split(";")[0],
                                "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc)
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(hours=2))) < timedelta(minutes=1)
    assert signed_in(client)

    # Two hours on, the server's record of the sign-in has lapsed too, whatever the cookie.
    db.session.execute(update(SignInSession).values(expires_at=ago(seconds=1)))
    db.session.commit()
    assert not signed_in(client)


# ------------------------------------------------------------------ the account page


@pytest.fixture
def ada(client, auth) -> User:
    user = make_user(name="Ada Lovelace", email="ada@example.com")
    auth.login(user)
    return user


def account(client, **form):
    return client.post("/account", data=form)


def test_the_account_page_is_for_a_signed_in_person(client):
    response = client.get("/account")
    assert response.status_code == 302 and response.location.startswith("/login?next=")


def test_changing_the_name(client, ada):
    response = account(client, action="name", name="  Ada   King ")

    assert response.status_code == 303
    assert "Your name is saved" in text(client.get("/account"))
    assert reload(ada).name == "Ada King"
    assert account(client, action="name", name="").status_code == 422


def test_changing_the_email_waits_for_the_new_address_and_tells_the_old_one(app, client, ada,
                                                                            auth):
    response = account(client, action="email", email="ada@work.example",
                       current_password=PASSWORD)

    assert response.status_code == 303
    assert "your address changes once you open it" in text(client.get("/account"))
    assert reload(ada).email == "ada@example.com"  # until confirmed
    notice = mailbox.latest(app.config["INSTANCE_PATH"], "ada@example.com",
                            "email address is being changed")
    assert "ada@work.example" in mailbox.text_of(notice)
    link = emailed_link(app, "ada@work.example", "Confirm your new email address")

    assert "ada@work.example" in text(client.get(link))
    assert client.post(link).status_code == 303

    changed = reload(ada)
    assert (changed.email, changed.pending_email) == ("ada@work.example", None)
    assert changed.email_verified_at is not None
    assert client.post(link).status_code == 400  # used
    auth.logout()
    assert auth.login("ada@example.com").status_code == 422
    assert auth.login("ada@work.example").status_code == 303


@pytest.mark.parametrize("fields, field_error", [
    ({"email": "ada@work.example", "current_password": "wrong password"},
     "That isn't your current password."),
    ({"email": "grace+ada@example.com", "current_password": PASSWORD},
     "An account with this email already exists."),
    ({"email": "ADA@example.com", "current_password": PASSWORD},
     "That is already your email address."),
    ({"email": "nope", "current_password": PASSWORD}, "Enter a valid email address"),
])
def test_a_refused_email_change_says_why_and_sends_nothing(app, client, ada, fields,
                                                          field_error):
    make_user(email="grace@example.com")

    response = account(client, action="email", **fields)

    assert response.status_code == 422
    assert field_error in text(response)
    assert reload(ada).pending_email is None
    assert mailbox.inbox(app.config["INSTANCE_PATH"], "@") == []


@pytest.mark.app_config(RATELIMIT_ENABLED=True, ACCOUNT_EMAIL_LIMIT="2 per hour")
def test_asking_for_new_addresses_again_and_again_is_held_back(app, client, ada):
    for n in range(2):
        assert account(client, action="email", email=f"ada{n}@work.example",
                       current_password=PASSWORD).status_code == 303
    assert account(client, action="name", name="Ada King").status_code == 303  # not counted

    response = account(client, action="email", email="ada9@work.example",
                       current_password=PASSWORD)

    assert response.status_code == 429
    assert re.search(r"Please wait (59|60) minutes", text(response))
    assert reload(ada).pending_email == "ada1@work.example"


def test_changing_the_password_signs_out_the_other_browsers_only(app, client, ada, auth):
    phone = app.test_client()
    phone.post("/login", data={"email": ada.email, "password": PASSWORD})

    wrong = account(client, action="password", current_password="not it",
                    password=NEW_PASSWORD)
    assert wrong.status_code == 422 and "That isn't your current password." in text(wrong)
    assert signed_in(phone)

    response = account(client, action="password", current_password=PASSWORD,
                       password=NEW_PASSWORD)

    assert response.status_code == 303
    assert signed_in(client) and not signed_in(phone)
    assert emails_to(app, "ada@example.com", "password was changed") == 1
    auth.logout()
    assert auth.login(ada, NEW_PASSWORD).status_code == 303


def test_an_unknown_action_is_a_bad_request(client, ada):
    assert account(client, action="become-admin").status_code == 400


def test_deleting_the_account_erases_the_person_and_keeps_the_record(app, client, ada, auth):
    event = make_event(total_tickets=5)
    client.post(f"/events/{event.id}/join")
    client.post(f"/events/{event.id}/release")  # a past place in line, in the audit
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.subject_id == ada.id))

    wrong = account(client, action="delete", current_password="not it")
    assert wrong.status_code == 422
    response = account(client, action="delete", current_password=PASSWORD)

    assert response.status_code == 303 and response.location == "/"
    assert "Your account is deleted" in text(client.get("/"))
    assert not signed_in(client)
    gone = reload(ada)
    assert "Ada" not in gone.name and "ada@example.com" not in gone.email
    assert gone.deleted_at is not None
    assert auth.login("ada@example.com").status_code == 422
    actions = db.session.execute(select(AuditEntry.action, AuditEntry.subject_id,
                                        AuditEntry.actor_id)).all()
    assert {action for action, _, _ in actions} >= {"joined", "offered", "released"}
    assert all(ada.id not in (subject, actor) for _, subject, actor in actions)
    # The address is free again: the person may come back.
    auth.logout()
    assert client.post("/signup", data={"name": "Ada", "email": "ada@example.com",
                                        "password": PASSWORD}).status_code == 303


def test_an_account_with_a_ticket_to_come_cannot_be_deleted(client, ada):
    buy_directly(make_event(), ada)

    page = text(client.get("/account"))
    assert "You hold a ticket for an event still to come" in page
    response = account(client, action="delete", current_password=PASSWORD)

    assert response.status_code == 422
    assert "You hold a ticket for an event still to come" in text(response)
    assert reload(ada).deleted_at is None
    assert signed_in(client)
