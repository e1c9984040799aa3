"""Fair start and time zones over HTTP: the event form's zone, on-sale time and draft
checkbox; the lobby on the event page; the public draw record (/events/<id>/draw)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from extensions import db
from models import Event
from tests.http.test_seller import field_error, page, stored_event, submit
from tests.support.factories import event_form, make_event, make_user
from tests.support.html import hook

HX = {"HX-Request": "true"}


def soon(**delta) -> datetime:
    return datetime.now(timezone.utc) + timedelta(**delta)


def on_sale_event(**fields):
    return make_event(total_tickets=2, sale_starts_at=soon(hours=2), timezone="Europe/London",
                      starts_at=soon(days=10), **fields)


def newest_event() -> Event:
    db.session.expire_all()
    return db.session.scalars(select(Event).order_by(Event.id.desc())).first()


def open_the_sale(event) -> None:
    """Time passes: the on-sale time is now (stored as if the clock had moved on)."""
    db.session.expire_all()
    stored = db.session.get(Event, event.id)
    stored.sale_starts_at = soon(seconds=-1)
    db.session.commit()


# ---------------------------------------------------------------- the event form


@pytest.mark.parametrize("zone, typed, stored_utc, shown", [
    ("Europe/London", "2031-07-04T19:30", datetime(2031, 7, 4, 18, 30), "19:30 BST"),
    ("Europe/London", "2031-12-05T19:30", datetime(2031, 12, 5, 19, 30), "19:30 GMT"),
    ("Asia/Tokyo", "2031-07-04T19:30", datetime(2031, 7, 4, 10, 30), "19:30 JST"),
])
def test_event_times_are_typed_and_shown_in_the_events_zone(client, auth, zone, typed,
                                                            stored_utc, shown):
    auth.login(make_user())
    response = submit(client, "/seller/events/new",
                      event_form(timezone=zone, event_date=typed))
    assert response.status_code == 303
    event = newest_event()
    assert event.timezone == zone
    assert event.starts_at == stored_utc.replace(tzinfo=timezone.utc)
    html = page(client.get(f"/events/{event.id}"))
    assert shown in html
    assert f'datetime="{stored_utc:%Y-%m-%dT%H:%M:%S}Z"' in html  # <time> stays in UTC
    edit = page(client.get(f"/seller/events/{event.id}/edit"))
    assert f'value="{typed}"' in edit and f'<option selected value="{zone}">' in edit


def test_the_zone_defaults_to_default_timezone(client, auth):
    auth.login(make_user())
    form = page(client.get("/seller/events/new"))
    assert '<option selected value="Europe/London">' in form
    assert submit(client, "/seller/events/new", event_form()).status_code == 303
    assert newest_event().timezone == "Europe/London"


@pytest.mark.parametrize("changes, field, message", [
    ({"timezone": "Mars/Olympus"}, "timezone", "Choose the time zone from the list"),
    ({"event_date": "2031-03-30T01:30"}, "event_date",
     "01:30 doesn't exist on 30 March 2031 in Europe/London: the clocks go forward an hour"),
    ({"sale_starts_at": "2020-01-01T10:00"}, "sale_starts_at", "must be in the future"),
    ({"event_date": "2031-05-01T19:00", "sale_starts_at": "2031-05-02T10:00"},
     "sale_starts_at", "Sales must open before the event starts"),
    ({"sale_starts_at": "tomorrow"}, "sale_starts_at", "YYYY-MM-DDTHH:MM"),
])
def test_bad_times_get_a_message_on_their_field_and_save_nothing(client, auth, changes, field,
                                                                 message):
    auth.login(make_user())
    response = submit(client, "/seller/events/new", event_form(**changes))
    assert response.status_code == 422
    assert message in field_error(response, field)
    assert newest_event() is None


def test_a_time_the_clocks_pass_twice_means_the_first_and_says_so(client, auth):
    auth.login(make_user())
    response = submit(client, "/seller/events/new", event_form(event_date="2031-10-26T01:30"))
    assert response.status_code == 303
    assert newest_event().starts_at == datetime(2031, 10, 26, 0, 30, tzinfo=timezone.utc)
    assert "The clocks go back around date and time: we took the first 01:30 BST" in page(
        client.get(response.headers["Location"]))


def test_a_draft_is_seen_only_by_its_organizer_until_published(client, auth):
    organizer = make_user()
    auth.login(organizer)
    response = submit(client, "/seller/events/new", event_form(name="Secret gig", draft="y"))
    assert response.status_code == 303
    event = newest_event()
    assert not event.is_published
    preview = page(client.get(f"/events/{event.id}"))
    assert "Draft preview" in preview and "Only you can see this event" in preview
    auth.logout()
    assert "Secret gig" not in page(client.get("/?q=Secret"))
    for url in (f"/events/{event.id}", f"/events/{event.id}/status",
                f"/events/{event.id}/availability"):
        assert client.get(url).status_code == 404, url
    buyer = make_user()
    auth.login(buyer)
    assert client.get(f"/events/{event.id}").status_code == 404
    assert client.post(f"/events/{event.id}/join").status_code == 404
    auth.logout()
    auth.login(organizer)
    assert client.post(f"/seller/events/{event.id}/publish").status_code == 303
    assert stored_event(event.id).is_published
    auth.logout()
    assert "Secret gig" in page(client.get("/?q=Secret"))


# ---------------------------------------------------------------- the lobby and the draw


def test_before_the_on_sale_the_page_offers_the_lobby_and_joining_waits_there(client, auth):
    event = on_sale_event()
    auth.login(make_user())
    before = page(client.get(f"/events/{event.id}"))
    assert "Join the lobby" in before and "On sale" in before
    response = client.post(f"/events/{event.id}/join", headers=HX)
    html = page(response)
    status = hook(html, "queue-status")
    assert status["status"] == "lobby" and "position" not in status
    assert re.fullmatch(r"[0-9a-f]{16}", status["entry-ref"])
    assert int(status["poll-seconds"]) >= 2
    assert "arriving earlier gives no advantage" in html
    assert "extra tabs or refreshing change nothing" in html
    assert hook(html, "availability")["reserved"] == "0"  # nobody is offered anything


def test_at_the_on_sale_the_next_poll_turns_the_lobby_into_offers_and_places(client, auth):
    event = on_sale_event()
    people = [make_user() for _ in range(4)]
    refs = {}
    for person in people:
        auth.login(person)
        refs[person.id] = hook(page(client.post(f"/events/{event.id}/join", headers=HX)),
                               "queue-status")["entry-ref"]
        auth.logout()
    open_the_sale(event)
    statuses = {}
    for person in people:
        auth.login(person)
        statuses[person.id] = hook(page(client.get(f"/events/{event.id}/status")),
                                   "queue-status")
        auth.logout()
    stored = stored_event(event.id)

    def key(ref):
        return hmac.new(bytes.fromhex(stored.draw_seed), f"{event.id}:{ref}".encode(),
                        hashlib.sha256).hexdigest()

    order = sorted(refs.values(), key=key)
    for person in people:
        place = order.index(refs[person.id]) + 1
        if place <= 2:
            assert statuses[person.id]["status"] == "offered"
        else:
            assert statuses[person.id] == {"status": "waiting", "position": str(place),
                                           "entry-ref": refs[person.id],
                                           "poll-seconds": statuses[person.id]["poll-seconds"]}


def test_the_draw_page_shows_the_commitment_then_the_seed_and_every_place(client, auth):
    event = on_sale_event()
    pending = page(client.get(f"/events/{event.id}/draw"))
    draw = hook(pending, "draw")
    assert draw["status"] == "pending" and "seed" not in draw
    commitment = draw["commitment"]
    assert commitment == stored_event(event.id).draw_commitment
    assert stored_event(event.id).draw_seed not in pending
    people = [make_user(name=f"Zebedee{n}", email=f"zebedee{n}@example.com") for n in range(3)]
    for person in people:
        auth.login(person)
        client.post(f"/events/{event.id}/join")
        auth.logout()
    open_the_sale(event)
    drawn = page(client.get(f"/events/{event.id}/draw"))
    after = hook(drawn, "draw")
    assert after["status"] == "drawn" and after["commitment"] == commitment
    assert hashlib.sha256(bytes.fromhex(after["seed"])).hexdigest() == commitment
    rows = re.findall(r'<tr data-entry-ref="([0-9a-f]{16})" data-place="(\d+)"', drawn)
    assert [int(place) for _, place in rows] == [1, 2, 3]

    def key(ref):
        return hmac.new(bytes.fromhex(after["seed"]), f"{event.id}:{ref}".encode(),
                        hashlib.sha256).hexdigest()

    refs = [ref for ref, _ in rows]
    assert refs == sorted(refs, key=key)
    table = drawn[drawn.index('<table class="draw-places">'):drawn.index("</table>")]
    assert "Zebedee" not in table and "zebedee" not in table  # references name nobody
    auth.login(people[0])
    mine = page(client.get(f"/events/{event.id}/draw"))
    assert "(you)" in mine


def test_events_without_an_on_sale_have_no_draw(client):
    assert client.get(f"/events/{make_event().id}/draw").status_code == 404


def test_verify_draw_rechecks_the_stored_draw(app, runner, client, auth):
    event = on_sale_event()
    for _ in range(3):
        auth.login(make_user())
        client.post(f"/events/{event.id}/join")
        auth.logout()
    assert "Not drawn yet" in runner.invoke(args=["verify-draw", str(event.id)]).output
    open_the_sale(event)
    client.get(f"/events/{event.id}")
    result = runner.invoke(args=["verify-draw", str(event.id)])
    assert result.exit_code == 0 and "all 3 places follow from it" in result.output
    stored = stored_event(event.id)
    stored.draw_seed = "00" * 32  # a seed swapped after the fact is caught
    db.session.commit()
    result = runner.invoke(args=["verify-draw", str(event.id)])
    assert result.exit_code != 0 and "does not match the commitment" in result.output


def test_the_organizer_sees_the_lobby_then_the_draw(client, auth):
    organizer = make_user()
    event = on_sale_event(organizer=organizer)
    for _ in range(2):
        auth.login(make_user())
        client.post(f"/events/{event.id}/join")
        auth.logout()
    auth.login(organizer)
    card = page(client.get("/seller"))
    assert "<dt>In the lobby</dt><dd>2</dd>" in card
    detail = page(client.get(f"/seller/events/{event.id}"))
    assert "2</strong> people are in the lobby" in detail
    open_the_sale(event)
    client.get(f"/events/{event.id}")  # the first view after the on-sale draws
    detail = page(client.get(f"/seller/events/{event.id}"))
    assert "gave 2 people from the lobby a random place in line" in detail
    assert f'href="/events/{event.id}/draw"' in detail
