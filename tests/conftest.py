"""Shared fixtures: an app on a fresh database per test, clients, the ``auth`` helper.

``app`` runs on SQLite; ``any_db_app`` runs the same test on SQLite and on PostgreSQL
(a throwaway server started once per session, see ``support/postgres.py``). Factories
(``make_user``, ``make_event``, ``PASSWORD`` ...) are plain functions in
``support/factories.py``; test apps of a test's own come from ``support/apps.py``.
"""

from __future__ import annotations

import os

import pytest

from tests.support.postgres import postgres_server

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
            if os.environ.get("REQUIRE_POSTGRES"):
                pytest.fail("PostgreSQL is required (REQUIRE_POSTGRES=1) but not installed")
            pytest.skip("PostgreSQL not installed")
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

