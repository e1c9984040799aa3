"""Operations: the health check monitors read, the demo data command and `flask seed`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

import tasks
from app import create_app
from cli import DEMO_PASSWORD
from extensions import db
from models import Event, User, WaitingListEntry
from services import outbox, queue, tickets
from tests.support.apps import build_test_config
from tests.support.factories import PASSWORD, make_event, make_user


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def seed(runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    return result


def test_the_health_check_reports_a_working_database(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.is_json
    assert response.json["db"] == "ok"


def test_a_stopped_consumer_shows_as_stale_as_soon_as_follow_ups_pile_up(client, monkeypatch):
    monkeypatch.setattr(outbox, "_dispatcher", lambda handover: None)  # nobody acts on them
    two_minutes_ago = datetime.now(timezone.utc) - timedelta(minutes=2)
    event = make_event(total_tickets=1, now=two_minutes_ago)
    queue.join_queue(event_id=event.id, user_id=make_user().id, now=two_minutes_ago)
    tasks.heartbeat.call_local()  # the heartbeat alone would still say "ok"

    body = client.get("/healthz").json

    assert body["consumer"] == "stale"
    assert body["outbox_due"] == 1  # the offer email; the deadline is not due yet
    assert body["outbox_lag_seconds"] >= 119


def test_a_fresh_heartbeat_and_no_backlog_is_ok(client):
    tasks.heartbeat.call_local()

    body = client.get("/healthz").json

    assert (body["consumer"], body["outbox_due"]) == ("ok", 0)


def test_with_the_broker_away_the_app_still_serves(client, monkeypatch):
    def refused():
        raise ConnectionError("Connection refused")

    monkeypatch.setattr(tasks.huey, "pending_count", refused)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json["tasks"] == "error: ConnectionError"


def test_an_unreachable_database_is_a_503(tmp_path):
    config = build_test_config(tmp_path, database_url=f"sqlite:///{tmp_path}/missing/dir/x.db")
    app = create_app(config)

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.json["db"] == "error: OperationalError"
    with app.app_context():
        db.engine.dispose()


def test_seed_demo_fills_an_empty_site_with_people_and_events(runner, client):
    result = seed(runner)

    assert count(User) == 5
    assert count(Event) == 5
    assert "sam@example.com" in result.output and DEMO_PASSWORD in result.output
    home = client.get("/").get_data(as_text=True)
    assert "Jazz in the Crypt" in home and "Indie Night" in home
    assert "Summer Rooftop Sessions" in home and "(on sale in 15 minutes" in result.output


def test_the_demo_accounts_can_sign_in(runner, auth, client):
    seed(runner)

    response = auth.login("sam@example.com", DEMO_PASSWORD)

    assert response.status_code == 303
    assert "Sam Buyer" in client.get("/").get_data(as_text=True)


def test_seeding_twice_creates_no_duplicates(runner):
    seed(runner)
    before = (count(User), count(Event), count(WaitingListEntry))

    seed(runner)

    assert (count(User), count(Event), count(WaitingListEntry)) == before
    assert before[2] > 0  # the small event really has a queue to duplicate


# ------------------------------------------------------------------- flask seed

def seed_words(runner, *words: str) -> list[str]:
    result = runner.invoke(args=["seed", *words])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_seed_commands_chain_and_make_what_people_then_use(any_db_app):
    runner, client = any_db_app.test_cli_runner(), any_db_app.test_client()
    lines = seed_words(
        runner,
        "user", "--name", "Olive", "--email", "olive@example.com", "--password", PASSWORD,
        "user", "--name", "Ann", "--email", "ann@example.com", "--password", PASSWORD,
        "user", "--name", "Bob", "--email", "bob@example.com", "--password", PASSWORD,
        "event", "--organizer-email", "olive@example.com", "--name", "Seeded Night",
        "--capacity", "1", "--price-pence", "900",
        "ticket", "--event", "1", "--email", "ann@example.com",
        "join", "--event", "1", "--email", "bob@example.com",
    )
    olive, ann, bob, event_id = map(int, lines[:4])
    ticket_id, token, door_code = lines[4].split()
    assert lines[5].split()[1] == "waiting"

    people = dict(db.session.execute(select(User.email, User.id)).all())
    assert people == {"olive@example.com": olive, "ann@example.com": ann, "bob@example.com": bob}
    assert db.session.get(Event, event_id).organizer_id == olive
    assert "Seeded Night" in client.get("/").get_data(as_text=True)
    assert client.post("/login", data={"email": "ann@example.com",
                                       "password": PASSWORD}).status_code == 303
    ticket_page = client.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    assert f'data-status="valid" data-code="{door_code}"' in ticket_page
    assert tickets.read_token(token) == (int(ticket_id), event_id)
    assert "£9.00" in client.get("/tickets").get_data(as_text=True)


def test_a_seeded_event_can_be_one_already_under_way(runner, client):
    seed_words(runner, "user", "--name", "Olive", "--email", "olive@example.com",
               "--password", PASSWORD)
    (event_id,) = seed_words(runner, "event", "--organizer-email", "olive@example.com",
                             "--name", "Already on", "--starts-in-hours", "-1")

    assert "Already on" not in client.get("/").get_data(as_text=True)
    page = client.get(f"/events/{event_id}").get_data(as_text=True)
    assert "This event has already taken place." in page


def test_a_refused_seed_says_why_and_makes_nothing(runner):
    unknown = runner.invoke(args=["seed", "event", "--organizer-email", "nobody@example.com"])
    nameless = runner.invoke(args=["seed", "user", "--name", " ", "--email", "x@example.com",
                                   "--password", PASSWORD])

    assert unknown.exit_code == 1
    assert "No account has the email nobody@example.com." in unknown.output
    assert nameless.exit_code == 1
    assert "Enter your name." in nameless.output and "Traceback" not in nameless.output
    assert (count(User), count(Event)) == (0, 0)
