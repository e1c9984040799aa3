"""Browser tests: the real app (gunicorn + Huey consumer) driven by headless Chromium.

Fixtures
--------
``live_server``       one server per test module, started with ``live_server_env``
                      (override that module-scoped fixture in a test module to change it).
``live_server_env``   ``{}`` by default: extra environment for the module's ``live_server``.
``start_server``      a factory, ``start_server(**env) -> LiveServer``, for a test that needs
                      its own server (say ``TICKET_OFFER_SECONDS="3"``); every server it
                      starts is stopped when the test ends. ``NAME=None`` unsets ``NAME``.
``run_axe``           ``run_axe(page) -> list[dict]``: axe-core violations of impact serious
                      or critical on the page as it is now (skips when axe-core is missing).
``screenshot``        ``screenshot(page, name) -> Path``: a full-page PNG in ``test-artifacts/``.

A ``LiveServer`` has ``.url``, ``.env`` (the environment both processes run with),
``.instance_path``, ``.database_url``, ``.python(source)`` to run code in an app context
against the same database, ``.create_user(name, email, password)``, ``.flask(*args)`` for
the CLI, ``.health()`` and ``.logs()``. ``WEB_CONCURRENCY`` sets gunicorn's worker count.

One server serves a whole module, so state (users, events, rate-limit counters) carries
from test to test: make names unique (``pages.unique``), and note that the sign-up form
allows 10 an hour per address; ``create_user`` + ``pages.sign_in`` avoids that limit.

The schema is built by ``flask db upgrade``, as ``make run`` does, never by ``create_all``.
When a test fails, the logs of every running server are attached to its report.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import stop_groups

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
ARTIFACTS = REPO / "test-artifacts"
AXE_PATH = REPO / ".cache" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

# Settings the servers must not inherit from whoever runs the tests: each server gets
# the embedded defaults plus what the test asks for.
_APP_SETTINGS = (
    "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "INSTANCE_PATH", "PAYMENTS",
    "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "PLATFORM_FEE_PERCENT",
    "TICKET_OFFER_SECONDS", "QUEUE_JOIN_LIMIT", "LOGIN_LIMIT_PER_IP", "LOGIN_LIMIT_PER_EMAIL",
    "HOST", "PORT", "FLASK_APP", "WEB_CONCURRENCY",
)
DEFAULT_OFFER_SECONDS = "6"
START_TIMEOUT = 30.0


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(folder: Path, overrides: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _APP_SETTINGS}
    env.update({
        "FLASK_APP": "app:create_app",
        "INSTANCE_PATH": str(folder / "instance"),
        "DATABASE_URL": f"sqlite:///{folder / 'tickethub.sqlite3'}",
        "SECRET_KEY": "browser-test-secret",
        "TICKET_OFFER_SECONDS": DEFAULT_OFFER_SECONDS,
        "PYTHONUNBUFFERED": "1",
    })
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


# Runs a test's snippet inside an app context, as the server would run a view.
_PYTHON_PRELUDE = textwrap.dedent("""
    import sys
    from app import create_app
    from extensions import db
    _source = sys.stdin.read()
    with create_app().app_context():
        exec(compile(_source, "<live_server.python>", "exec"), {"db": db, "__name__": "__live__"})
""")


@dataclass
class LiveServer:
    """A running gunicorn + Huey consumer pair on a private instance folder and database."""

    folder: Path
    env: dict
    port: int = 0
    processes: dict = field(default_factory=dict)
    log_paths: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def instance_path(self) -> Path:
        return Path(self.env["INSTANCE_PATH"])

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    # -- running things against the same configuration

    def flask(self, *args: str, timeout: float = 60) -> str:
        """Run ``flask <args>`` with the server's environment; return its output."""
        done = subprocess.run(
            [str(BIN / "flask"), *args], cwd=REPO, env=self.env, timeout=timeout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed ({done.returncode}):\n{done.stdout}")
        return done.stdout

    def python(self, source: str, *, timeout: float = 60) -> str:
        """Run ``source`` in an app context on the server's database; return what it printed.

        ``db`` is in scope; import models and services as the app does, e.g.
        ``from services import accounts; print(accounts.register_user(...).id)``.
        """
        done = subprocess.run(
            [str(BIN / "python"), "-c", _PYTHON_PRELUDE], cwd=REPO, env=self.env,
            input=textwrap.dedent(source), timeout=timeout,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"python snippet failed ({done.returncode}):\n{done.stderr}")
        return done.stdout

    def create_user(self, name: str, email: str, password: str) -> int:
        """An account made directly in the database (sign-ups through the form are
        rate-limited to 10 an hour per address, per server); returns its id."""
        out = self.python(f"""
            from services import accounts
            print(accounts.register_user(name={name!r}, email={email!r}, password={password!r}).id)
        """)
        return int(out.strip())

    def health(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, {}

    def logs(self, tail: int | None = None) -> str:
        parts = []
        for name, path in self.log_paths.items():
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            if tail is not None:
                lines = lines[-tail:]
            parts.append(f"----- {name} ({path}) -----\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- life cycle

    def start(self, *, wait_for_consumer: bool = True) -> "LiveServer":
        self.flask("db", "upgrade")
        self.port = _free_port()
        self._spawn("huey", [
            str(BIN / "huey_consumer"), "tasks.huey", "--workers", "2", "--worker-type", "thread",
            "--delay", "0.05", "--max-delay", "0.5",
        ])
        self._spawn("gunicorn", [
            # As scripts/run.sh: one process unless WEB_CONCURRENCY asks for more.
            str(BIN / "gunicorn"), "--workers", self.env.get("WEB_CONCURRENCY", "1"),
            "--threads", "8",
            "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "3",
            # gunicorn 27 binds a control socket at one fixed path per user by default;
            # servers running side by side (or beside `make run`) would fight over it.
            "--no-control-socket",
            "--access-logfile", "-", "app:create_app()",
        ])
        self._wait_until_ready(wait_for_consumer)
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log_path = self.folder / f"{name}.log"
        self.log_paths[name] = log_path
        with open(log_path, "ab") as log:
            # A session of its own: stop() signals the process group, workers included.
            self.processes[name] = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def _wait_until_ready(self, wait_for_consumer: bool) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode} while starting\n{self.logs()}"
                    )
            try:
                status, body = self.health()
            except OSError as error:
                last = repr(error)
            else:
                last = f"{status} {body}"
                if status == 200 and (not wait_for_consumer or body.get("consumer") == "ok"):
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"server not ready after {START_TIMEOUT:.0f} s (last: {last})\n{self.logs()}"
        )

    def stop(self) -> None:
        stop_groups(self.processes.values())
        if self in _RUNNING:
            _RUNNING.remove(self)


_RUNNING: list[LiveServer] = []


@atexit.register
def _stop_leftovers() -> None:
    """Last resort (an interrupted run): never leave a server behind."""
    for server in list(_RUNNING):
        server.stop()


def launch_server(folder: Path, **env) -> LiveServer:
    """Migrate a fresh database in ``folder`` and start the app and its consumer on it."""
    folder.mkdir(parents=True, exist_ok=True)
    server = LiveServer(folder=folder, env=_server_env(folder, env))
    _RUNNING.append(server)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for server in _RUNNING:
            report.sections.append((f"live server {server.url}", server.logs(tail=150)))
    return report


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


@pytest.fixture
def start_server(tmp_path_factory):
    """``start_server(**env)``: a server of this test's own, stopped when the test ends."""
    servers: list[LiveServer] = []

    def start(**env) -> LiveServer:
        server = launch_server(tmp_path_factory.mktemp("live-server"), **env)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
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
