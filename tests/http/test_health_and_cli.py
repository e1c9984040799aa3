"""Operations: the health check monitors read, and the demo data command."""

from __future__ import annotations

from sqlalchemy import func, select

from cli import DEMO_PASSWORD
from extensions import db
from models import Event, User, WaitingListEntry


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


def test_seed_demo_fills_an_empty_site_with_people_and_events(runner, client):
    result = seed(runner)

    assert count(User) == 5
    assert count(Event) == 4
    assert "sam@example.com" in result.output and DEMO_PASSWORD in result.output
    home = client.get("/").get_data(as_text=True)
    assert "Jazz in the Crypt" in home and "Indie Night" in home


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
