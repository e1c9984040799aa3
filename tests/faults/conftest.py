"""Fault tests: the app on real server processes while a part of it fails.

Fixtures
--------
``database_url``   a fresh PostgreSQL database of this test's own (dropped afterwards).
``smtp``           a started ``SMTPServer`` (``tests/support/smtp_server.py``).

From ``tests/conftest.py``: ``start_server(**env) -> LiveServer`` and ``redis`` (a
``RedisServer`` of the test's own, which it may stop and start).

When a test fails, the logs of every running server are attached to its report.
"""

from __future__ import annotations

import pytest

from tests.support.live_server import report_with_server_logs
from tests.support.postgres import create_database, drop_database
from tests.support.required import not_installed
from tests.support.smtp_server import smtp_server

pytest_runtest_makereport = report_with_server_logs


@pytest.fixture
def database_url(postgres_url):
    if postgres_url is None:
        not_installed("PostgreSQL")
    url = create_database(postgres_url)
    yield url
    drop_database(url)


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server
