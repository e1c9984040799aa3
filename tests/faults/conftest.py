"""Fault tests: the app on real server processes while a part of it fails.

Fixtures
--------
``start_server``   ``start_server(**env) -> LiveServer`` (``tests/support/live_server.py``);
                   every server it starts is stopped when the test ends.
``database_url``   a fresh PostgreSQL database of this test's own (dropped afterwards).
``redis``          a ``RedisServer`` of this test's own, which the test may stop and start.
``smtp``           a started ``SMTPServer`` (``tests/support/smtp_server.py``).

When a test fails, the logs of every running server are attached to its report.
"""

from __future__ import annotations

import os

import pytest

from tests.support.live_server import report_with_server_logs, server_factory
from tests.support.postgres import create_database, drop_database
from tests.support.redis_server import running_redis
from tests.support.smtp_server import smtp_server


def _missing(what: str):
    if os.environ.get("REQUIRE_POSTGRES"):  # make test sets it, and installs both servers
        pytest.fail(f"{what} is required by make test but not installed")
    pytest.skip(f"{what} not installed")


pytest_runtest_makereport = report_with_server_logs


@pytest.fixture
def start_server(tmp_path_factory):
    with server_factory(lambda: tmp_path_factory.mktemp("live-server")) as start:
        yield start


@pytest.fixture
def database_url(postgres_url):
    if postgres_url is None:
        _missing("PostgreSQL")
    url = create_database(postgres_url)
    yield url
    drop_database(url)


@pytest.fixture
def redis():
    with running_redis() as server:
        if server is None:
            _missing("redis-server")
        yield server


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server
