"""When a part fails, people get pages, not 500s: Redis (the rate-limit store) stopped or hung,
the database unreachable, and a bug that leaves the database session broken."""

from __future__ import annotations

import logging
import shutil
import time

import pytest
import redis as redis_client
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from app import create_app
from config import load_config
from extensions import db
from models import User
from services import queue
from tests.support.apps import build_test_config
from tests.support.factories import Auth, make_event, make_user
from tests.support.postgres import running_postgres
from tests.support.required import not_installed

HX = {"HX-Request": "true"}
BUSY = "very busy right now. Please try again in a moment."


def errors_logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def serve(app):
    """Yield ``app`` on its own fresh tables. Requests run outside any app context of the
    test's, as in production: each gets its own session and its own ``g``."""
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


def arrange(app) -> tuple[int, str]:
    """An event with tickets left and a buyer (Ann): the event's id and her email."""
    with app.app_context():
        return make_event(total_tickets=5).id, make_user(name="Ann").email


# ---------------------------------------------------------------- Redis, the rate-limit store


@pytest.fixture
def redis_app(tmp_path, redis):
    """The app with its rate limits on ``redis``, configured as REDIS_URL configures it."""
    production = load_config({"REDIS_URL": redis.url, "INSTANCE_PATH": str(tmp_path / "instance"),
                              "SECRET_KEY": "test-secret"})
    limits = {key: value for key, value in production.items() if key.startswith("RATELIMIT_")}
    assert limits["RATELIMIT_STORAGE_URI"] == redis.url
    yield from serve(create_app(build_test_config(
        tmp_path, **limits, LOGIN_LIMIT_PER_EMAIL="2 per 5 minutes",
        QUEUE_JOIN_LIMIT="1 per 30 minutes")))


def counted_in_redis(redis) -> bool:
    return bool(redis_client.Redis.from_url(redis.url).keys("LIMITS*"))


def wrong_password(client, email: str) -> int:
    return client.post("/login", data={"email": email, "password": "not it"}).status_code


def test_with_redis_down_people_can_still_sign_up_sign_in_join_and_poll(redis_app, redis, caplog):
    event_id, ann = arrange(redis_app)
    client = redis_app.test_client()
    assert wrong_password(client, ann) == 422
    assert counted_in_redis(redis)

    redis.stop()
    caplog.clear()
    signup = client.post("/signup", data={"name": "Bea", "email": "bea@example.com",
                                          "password": "a long enough password"})
    assert signup.status_code == 303
    Auth(client).logout()
    assert Auth(client).login(ann).status_code == 303
    assert client.post(f"/events/{event_id}/join").status_code == 303
    poll = client.get(f"/events/{event_id}/status", headers=HX)
    assert poll.status_code == 200 and 'data-status="offered"' in poll.get_data(as_text=True)
    assert client.get(f"/events/{event_id}").status_code == 200
    assert errors_logged(caplog) == []
    assert any("Rate limit storage unreachable" in record.getMessage()
               for record in caplog.records if record.levelno == logging.WARNING)

    # Meanwhile the limits still hold, counted in this process.
    Auth(client).logout()
    assert [wrong_password(client, "cy@example.com") for _ in range(3)] == [422, 422, 429]

    redis.start()  # the same address, and empty, as after a restart without persistence
    deadline = time.monotonic() + 40  # Flask-Limiter retries the store with a growing back-off
    while not counted_in_redis(redis) and time.monotonic() < deadline:
        assert client.get(f"/events/{event_id}/status").status_code == 200
        time.sleep(0.25)
    assert counted_in_redis(redis), "the rate limits never went back to Redis"
    assert [wrong_password(client, "dee@example.com") for _ in range(3)] == [422, 422, 429]
    # The count is Redis's again: every process sees it, and it goes when Redis is emptied.
    redis_client.Redis.from_url(redis.url).flushall()
    assert wrong_password(client, "dee@example.com") == 422
    assert errors_logged(caplog) == []


def test_a_join_saved_just_as_redis_goes_away_is_answered_and_still_counted(
        redis_app, redis, monkeypatch, caplog):
    event_id, ann = arrange(redis_app)
    client = redis_app.test_client()
    Auth(client).login(ann)
    join_queue = queue.join_queue

    def join_then_lose_redis(**kwargs):
        entry = join_queue(**kwargs)
        redis.stop()  # after the limit was checked, before the join is counted against it
        return entry

    monkeypatch.setattr(queue, "join_queue", join_then_lose_redis)
    caplog.clear()
    response = client.post(f"/events/{event_id}/join")
    assert response.status_code == 303
    page = client.get(f"/events/{event_id}").get_data(as_text=True)
    assert 'data-status="offered"' in page
    assert errors_logged(caplog) == []

    monkeypatch.setattr(queue, "join_queue", join_queue)
    assert client.post(f"/events/{event_id}/release").status_code == 303
    again = client.post(f"/events/{event_id}/join")
    assert again.status_code == 429  # the one join allowed was counted, in memory
    assert "too many times" in again.get_data(as_text=True)


def test_a_hung_redis_costs_a_second_not_the_request(redis_app, redis, caplog):
    event_id, _ = arrange(redis_app)
    client = redis_app.test_client()
    redis.pause()
    try:
        started = time.monotonic()
        responses = [client.get(f"/events/{event_id}/status") for _ in range(3)]
        elapsed = time.monotonic() - started
    finally:
        redis.resume()
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert elapsed < 5
    assert errors_logged(caplog) == []


# ---------------------------------------------------------------- the database unreachable


class SqliteOutage:
    """The database's folder goes away; every request opens its own connection."""

    def __init__(self, tmp_path):
        self.folder = tmp_path / "db"
        self.folder.mkdir()
        self.away = tmp_path / "db-away"
        self.url = f"sqlite:///{self.folder / 'tickethub.sqlite3'}"
        self.engine_options = {"poolclass": NullPool}

    def take_down(self):
        shutil.move(self.folder, self.away)

    def bring_back(self):
        shutil.move(self.away, self.folder)


class PostgresOutage:
    """A server of this test's own, crashed (immediate stop) and started again."""

    def __init__(self, server):
        self.server = server
        self.url = server.url
        self.engine_options = {}

    def take_down(self):
        self.server.stop()

    def bring_back(self):
        self.server.start()


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteOutage(tmp_path)
        return
    with running_postgres(fast_commits=False) as server:
        if server is None:
            not_installed("PostgreSQL")
        yield PostgresOutage(server)


@pytest.fixture
def outage_app(outage, tmp_path):
    config = build_test_config(tmp_path, database_url=outage.url,
                               SQLALCHEMY_ENGINE_OPTIONS=outage.engine_options)
    yield from serve(create_app(config))


def test_a_lost_database_is_a_busy_page_and_the_app_serves_again_when_it_is_back(
        outage, outage_app, caplog):
    event_id, ann_email = arrange(outage_app)
    visitor, buyer = outage_app.test_client(), outage_app.test_client()
    Auth(buyer).login(ann_email)
    assert "Signed in as" in buyer.get(f"/events/{event_id}").get_data(as_text=True)

    outage.take_down()
    caplog.clear()
    for client in (visitor, buyer):
        response = client.get(f"/events/{event_id}")
        page = response.get_data(as_text=True)
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert BUSY in page and "<html" in page
        assert "Sign out" not in page  # who it is lives in the database: not asked

    join = buyer.post(f"/events/{event_id}/join")
    assert join.status_code == 503 and BUSY in join.get_data(as_text=True)
    hx_join = buyer.post(f"/events/{event_id}/join", headers=HX)
    assert hx_join.status_code == 503 and "<html" not in hx_join.get_data(as_text=True)
    assert hx_join.headers["HX-Reswap"] == "beforebegin"  # above the widget, which stays
    poll = buyer.get(f"/events/{event_id}/status", headers=HX)
    assert poll.status_code == 503 and "Retry-After" in poll.headers
    assert "<html" not in poll.get_data(as_text=True) and BUSY in poll.get_data(as_text=True)
    assert poll.headers["HX-Reswap"] == "none"  # the widget stays and polls again later
    assert errors_logged(caplog) == []
    assert any("Database unavailable" in record.getMessage() for record in caplog.records)

    outage.bring_back()
    for client, expected in ((visitor, "Sign in"), (buyer, "Signed in as <strong>Ann</strong>")):
        response = client.get(f"/events/{event_id}")
        assert response.status_code == 200 and expected in response.get_data(as_text=True)
    assert buyer.post(f"/events/{event_id}/join").status_code == 303


# ---------------------------------------------------------------- a bug, on a broken session


@pytest.fixture
def production_app(tmp_path):
    """Unhandled errors answered by the 500 page, as in production (tests propagate them)."""
    yield from serve(create_app(build_test_config(tmp_path, PROPAGATE_EXCEPTIONS=False)))


def fail(_ann):
    raise RuntimeError("a bug after a failed flush")


def read_on(ann):
    return db.session.query(User).filter_by(email=ann).one().name  # PendingRollbackError


@pytest.mark.parametrize("carry_on, status, text", [
    (fail, 500, "Sorry, something went wrong on our side."),
    (read_on, 503, BUSY),
])
def test_a_bug_that_leaves_the_session_broken_still_gets_a_friendly_page(
        production_app, caplog, carry_on, status, text):
    _, ann = arrange(production_app)

    def duplicate_then_carry_on():
        db.session.add(User(name="Twin", email=ann, password_hash="x"))
        try:
            db.session.flush()
        except IntegrityError:
            pass  # the bug: carrying on without a rollback leaves the session unusable
        return carry_on(ann)

    production_app.add_url_rule("/test-only/broken", view_func=duplicate_then_carry_on)
    client = production_app.test_client()
    Auth(client).login(ann)
    response = client.get("/test-only/broken")
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert text in page and "<html" in page
    assert "Sign out" not in page  # the navigation did not ask the broken session who it is
    assert any(record.exc_info for record in caplog.records if record.levelno >= logging.ERROR)
    # The session was rolled back: the next request is served as usual.
    assert "Signed in as <strong>Ann</strong>" in client.get("/").get_data(as_text=True)
