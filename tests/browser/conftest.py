"""Browser tests: the real app (gunicorn + Huey consumer) driven by headless Chromium.

Fixtures
--------
``live_server``       one server per test module, started with ``live_server_env``
                      (override that module-scoped fixture in a test module to change it).
``live_server_env``   ``{}`` by default: extra environment for the module's ``live_server``.
``start_server``      (``tests/conftest.py``) a factory, ``start_server(**env) -> LiveServer``,
                      for a test that needs its own server (say ``TICKET_OFFER_SECONDS="3"``);
                      every server it starts is stopped when the test ends.
``run_axe``           ``run_axe(page) -> list[dict]``: axe-core violations of impact serious
                      or critical on the page as it is now (skips when axe-core is missing).
``screenshot``        ``screenshot(page, name) -> Path``: a full-page PNG in ``test-artifacts/``.

The servers are ``tests/support/live_server.py``'s ``LiveServer``: ``.url``, ``.env``,
``.flask(*args)``, ``.app_context()`` (to read its database here), ``.health()``, ``.logs()``.
Accounts, events and tickets come from ``flask seed`` (``tests/support/seeding.py``).

One server serves a whole module, so state (users, events, rate-limit counters) carries
from test to test: make names unique (``seeding.unique``), and note that the sign-up form
allows 10 an hour per address; ``seeding.create_accounts`` + ``pages.sign_in`` avoids that
limit.

When a test fails, the logs of every running server are attached to its report.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.live_server import REPO, launch_server, report_with_server_logs

ARTIFACTS = REPO / "test-artifacts"
AXE_PATH = REPO / ".cache" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

# ------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def base_url():
    """Replaces pytest-playwright 0.10's own ``base_url``, a session fixture written as an
    instance method, which pytest 9 deprecates (an error under ``filterwarnings = error``).
    Tests build absolute URLs from ``live_server.url``."""
    return None


# ---------------------------------------------------------------- live server


pytest_runtest_makereport = report_with_server_logs


@pytest.fixture(scope="module")
def live_server_env() -> dict:
    """Extra environment for this module's ``live_server``; override it in a test module."""
    return {}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, live_server_env):
    server = launch_server(tmp_path_factory.mktemp("live-server"), **live_server_env)
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------ accessibility


def _axe_available() -> bool:
    if AXE_PATH.exists():
        return True
    # The same recipe as the Makefile's target, which `make test` runs before pytest.
    try:
        subprocess.run(["make", "--no-print-directory", ".cache/axe-core/axe.min.js"], cwd=REPO,
                       check=True, timeout=120, capture_output=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return AXE_PATH.exists()


@pytest.fixture(scope="session")
def axe_path() -> Path:
    if not _axe_available():
        pytest.skip("axe-core is not available (make .cache/axe-core/axe.min.js)")
    return AXE_PATH


def axe_violations(page, path: Path = AXE_PATH, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of the given impacts on ``page`` (JavaScript must be on)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Not page.add_script_tag(path=...): that inserts an inline <script>, which the
        # app's Content-Security-Policy (script-src 'self') rightly blocks. Evaluating the
        # source through the DevTools protocol is not subject to CSP.
        page.evaluate("() => {\n" + path.read_text() + "\n}")
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"] if v["impact"] in impacts
    ]


@pytest.fixture(scope="session")
def run_axe(axe_path):
    def run(page, impacts=("serious", "critical")) -> list[dict]:
        return axe_violations(page, axe_path, impacts)

    return run


# -------------------------------------------------------------- screenshots


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG as ``test-artifacts/<name>.png`` (gitignored); return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(name="screenshot")
def screenshot_fixture():
    return screenshot
