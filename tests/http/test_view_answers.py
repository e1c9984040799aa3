"""How views answer, whatever the view: a service's refusal that the view doesn't answer
itself is one error page (or HTMX fragment) with the refusal's status and message; answers
that can be a page or a fragment say so to caches; the local payment gateway's links."""

from __future__ import annotations

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from extensions import db
from models import Event
from tests.support.factories import make_event, make_user

HX = {"HX-Request": "true"}
BUSY = "We're very busy right now. Please try again in a moment."


@pytest.fixture
def app(any_db_app):
    """Every test here on SQLite and on PostgreSQL."""
    return any_db_app


def text(response) -> str:
    return response.get_data(as_text=True).replace("&#39;", "'")


# ------------------------------------------------------------------ refusals


def test_another_organizers_event_is_refused_with_the_services_reason(client, organizer):
    theirs = make_event(name="Not Olive's gig")

    page = client.post(f"/seller/events/{theirs.id}/cancel")
    fragment = client.post(f"/seller/events/{theirs.id}/cancel", headers=HX)

    assert page.status_code == fragment.status_code == 403
    assert "Only the event's organizer can do that." in text(page)
    assert "<html" in text(page)
    assert "<html" not in text(fragment)
    assert "Only the event's organizer can do that." in text(fragment)
    assert fragment.headers["HX-Reswap"] == "beforebegin"  # above the form, which stays
    assert db.session.get(Event, theirs.id).cancelled_at is None


def test_an_unknown_ticket_is_the_one_not_found_page(client, organizer):
    response = client.post("/seller/tickets/999999/refund")

    assert response.status_code == 404
    assert "We couldn't find that page." in text(response)


@pytest.fixture
def impatient(app):
    """The app gives up on a lock another transaction holds after a fifth of a second."""
    engine = db.engine

    @sa_event.listens_for(engine, "connect")
    def short_lock_wait(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA busy_timeout = 200")
        else:
            cursor.execute("SET lock_timeout = 200")
            dbapi_connection.commit()  # a SET in a transaction rolled back would be undone
        cursor.close()

    db.session.remove()
    engine.dispose()  # connections made from now on wait that little
    yield
    sa_event.remove(engine, "connect", short_lock_wait)
    db.session.remove()
    engine.dispose()


def test_cancelling_while_the_event_is_locked_is_a_busy_page_and_changes_nothing(
        impatient, client, organizer):
    event_id = make_event(organizer).id

    with db.engine.connect() as holder:  # someone else is changing the event right now
        if db.engine.dialect.name == "sqlite":
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            holder.execute(select(Event).where(Event.id == event_id).with_for_update())
        response = client.post(f"/seller/events/{event_id}/cancel")
        holder.rollback()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert BUSY in text(response)
    assert db.session.get(Event, event_id).cancelled_at is None
    # Once the other change is done, the same button works.
    assert client.post(f"/seller/events/{event_id}/cancel").status_code == 303
    assert db.session.get(Event, event_id, populate_existing=True).cancelled_at is not None


# ------------------------------------------------------------------ page or fragment


def test_the_payment_result_is_a_page_or_its_fragment_and_caches_keep_them_apart(
        client, auth):
    event = make_event(total_tickets=1, price_pence=1250)
    auth.login(make_user(name="Ann"))
    client.post(f"/events/{event.id}/join")
    payment_page = client.post(f"/events/{event.id}/checkout").headers["Location"]
    paid = client.post(payment_page, data={"action": "pay"})
    result_url = paid.headers["Location"]

    page = client.get(result_url)
    fragment = client.get(result_url, headers=HX)

    assert page.status_code == fragment.status_code == 200
    assert "<html" in text(page) and 'id="payment-result"' in text(page)
    assert text(fragment).lstrip().startswith('<div id="payment-result" data-status="paid"')
    for response in (page, fragment):
        assert {"HX-Request", "Cookie"} <= set(response.vary), response.vary


@pytest.mark.parametrize("url", ["/events/{id}", "/events/{id}/status"])
def test_event_pages_vary_on_htmx_and_on_who_is_signed_in(client, url):
    event = make_event()

    response = client.get(url.format(id=event.id))

    assert response.status_code == 200
    assert {"HX-Request", "Cookie"} <= set(response.vary)


# ------------------------------------------------------------------ local payments


def test_with_local_payments_the_payout_dashboard_is_the_organizers_own(client, organizer):
    set_up = client.post("/seller/connect")
    assert set_up.status_code == 303
    assert set_up.headers["Location"].endswith("/seller/connect")  # nothing to fill in

    response = client.post("/seller/connect/dashboard")

    assert response.status_code == 303
    assert response.headers["Location"] == "/seller"
