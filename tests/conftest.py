"""Shared fixtures: an app on a fresh database per test, clients, the ``auth`` helper, and
the servers some tests start (Redis, the app on real server processes).

``app`` runs on SQLite; ``any_db_app`` runs the same test on SQLite and on PostgreSQL
(a throwaway server started once per session, see ``support/postgres.py``). Factories
(``make_user``, ``make_event``, ``PASSWORD`` ...) are plain functions in
``support/factories.py``; test apps of a test's own come from ``support/apps.py``.
"""

from __future__ import annotations

import os

import pytest

from tests.support.live_server import server_factory
from tests.support.postgres import postgres_server
from tests.support.redis_server import running_redis
from tests.support.required import not_installed

# Keep the app from writing a secret key (or anything else) into the checkout's instance/.
os.environ.setdefault("INSTANCE_PATH", "/tmp/tickethub-test-instance")

from extensions import db  # noqa: E402
from tests.support.apps import build_test_config, make_app  # noqa: E402
from tests.support.factories import Auth  # noqa: E402


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture
def app(tmp_path, request):
    marker = request.node.get_closest_marker("app_config")
    overrides = marker.kwargs if marker else {}
    app = make_app(build_test_config(tmp_path, **overrides))
    with app.app_context():
        yield app
        db.session.remove()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_app(request, tmp_path):
    """The same test on SQLite and on PostgreSQL."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        if url is None:
            not_installed("PostgreSQL")
    marker = request.node.get_closest_marker("app_config")
    overrides = marker.kwargs if marker else {}
    app = make_app(build_test_config(tmp_path, database_url=url, **overrides))
    with app.app_context():
        yield app
        db.session.remove()
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def redis():
    """A Redis server of this test's own, which the test may stop, pause and start again."""
    with running_redis() as server:
        if server is None:
            not_installed("redis-server")
        yield server


@pytest.fixture
def start_server(tmp_path_factory):
    """``start_server(**env) -> LiveServer`` (``support/live_server.py``): the app on real
    server processes, of this test's own; every server it starts is stopped when the test
    ends. ``NAME=None`` in ``env`` unsets ``NAME``."""
    with server_factory(lambda: tmp_path_factory.mktemp("live-server")) as start:
        yield start

