"""Proxy tests: the app on real server processes (gunicorn + Huey consumer) behind Debian's
nginx, configured with the shipped ``deploy/nginx/tickethub.conf`` (``tests/support/nginx.py``).

Fixtures
--------
``site``   one ``Site`` per test module and database (SQLite, then PostgreSQL): ``.app`` is the
           ``LiveServer`` (``.url`` asks the app directly), ``.proxy`` the nginx in front of it
           (``.url`` asks through the proxy). State carries from test to test: make each
           test's event and people its own (``tests/support/seeding.py`` ``publish_event``).

When a test fails, the logs of every running server and nginx's error log are attached.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.live_server import LiveServer, report_with_server_logs, server_factory
from tests.support.nginx import Nginx, running_nginx
from tests.support.postgres import create_database, drop_database
from tests.support.required import not_installed

pytest_runtest_makereport = report_with_server_logs

# Offers outlive the module (people keep their state while it runs); polls are not rate
# limited at the pace of a test; the app trusts the one proxy in front of it, as in production.
SERVER_ENV = {"TICKET_OFFER_SECONDS": "600", "STATUS_POLL_LIMIT": "100000 per minute",
              "LOGIN_LIMIT_PER_IP": "1000 per minute", "TRUSTED_PROXIES": "1"}


@dataclass
class Site:
    app: LiveServer
    proxy: Nginx


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    env = dict(SERVER_ENV)
    if request.param == "postgresql":
        postgres_url = request.getfixturevalue("postgres_url")
        if postgres_url is None:
            not_installed("PostgreSQL")
        env["DATABASE_URL"] = create_database(postgres_url)
    try:
        with server_factory(lambda: tmp_path_factory.mktemp("live-server")) as start:
            app = start(**env)
            with running_nginx(tmp_path_factory.mktemp("nginx"),
                               f"127.0.0.1:{app.port}") as proxy:
                if proxy is None:
                    not_installed("nginx")
                app.log_paths["nginx"] = proxy.error_log_path  # in a failed test's report
                yield Site(app=app, proxy=proxy)
    finally:
        if "DATABASE_URL" in env:
            drop_database(env["DATABASE_URL"])
