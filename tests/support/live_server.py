"""The app on real server processes: gunicorn and a Huey consumer (or ``scripts/run.sh``,
as ``make run`` starts them) on a private instance folder and database.

Browser tests, fault tests and benchmarks share this one harness. ``launch_server(folder,
**env)`` migrates a fresh database with ``flask db upgrade`` (as ``make run`` does, never
``create_all``) and starts both processes; ``NAME=None`` in ``env`` unsets ``NAME``.

A ``LiveServer`` has ``.url``, ``.env`` (the environment its processes run with),
``.instance_path``, ``.database_url``, ``.flask(*args)`` for the CLI (``flask seed ...``
makes accounts, events and tickets: see ``tests/support/seeding.py``), ``.app_context()``
to read the same database in this process, ``.health()`` and ``.logs()``. For fault tests
it can stop, SIGKILL and restart the consumer alone (``stop_consumer``, ``start_consumer``),
list and SIGKILL gunicorn's worker processes (``web_workers``, ``kill_web_worker``), and
serve through ``scripts/run.sh`` instead (``start_run_script``, ``signal_run_script``).

``WEB_CONCURRENCY`` sets gunicorn's worker count (more than one needs ``REDIS_URL``; see
``tests/support/redis_server.py``); ``DATABASE_URL`` may name a PostgreSQL database
(``tests/support/postgres.py`` ``create_database`` makes one per server).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import _signal_group, stop_groups

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
DEFAULT_OFFER_SECONDS = "6"
START_TIMEOUT = 30.0

# Where the app may read its environment (config.py does; the globs catch any other module).
_APP_SOURCES = ("*.py", "services/*.py", "blueprints/*.py")
_READS_ENV = re.compile(r"""(?:environ(?:\.get\(|\[|,)|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']""")
# Read by the tools that serve it rather than by the app.
_TOOL_SETTINGS = {"FLASK_APP", "FLASK_DEBUG", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "HOST",
                  "PORT"}


def app_settings() -> frozenset[str]:
    """Every environment variable the app or its servers read. A server started here gets
    none of them from whoever runs the tests (an exported ``MAIL_SERVER`` or ``REDIS_URL``
    must not leak in): only the embedded defaults plus what the test asks for."""
    names = set(_TOOL_SETTINGS)
    for pattern in _APP_SOURCES:
        for path in REPO.glob(pattern):
            names.update(_READS_ENV.findall(path.read_text()))
    return frozenset(names)


_APP_SETTINGS = app_settings()


def server_env(folder: Path, overrides: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _APP_SETTINGS}
    env.update({
        "FLASK_APP": "app:create_app",
        "INSTANCE_PATH": str(folder / "instance"),
        "DATABASE_URL": f"sqlite:///{folder / 'tickethub.sqlite3'}",
        "SECRET_KEY": "live-server-test-secret",
        "TICKET_OFFER_SECONDS": DEFAULT_OFFER_SECONDS,
        "PYTHONUNBUFFERED": "1",
    })
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def wait_for(condition: Callable[[], object], *, timeout: float, what: str,
             until: Callable[[object], bool] = bool, every: float = 0.2):
    """Poll ``condition()`` until ``until`` accepts its value (returned; by default any true
    value) or ``timeout`` passes (AssertionError naming ``what`` and the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(every)


def alive(pids) -> list[int]:
    """Those of ``pids`` still running (an exited process not yet reaped is not)."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            running.append(pid)
    return running


_CONSUMER = ["huey_consumer", "worker.huey", "--workers", "2", "--worker-type", "thread",
             "--delay", "0.05", "--max-delay", "0.5"]


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
        """``DATABASE_URL``, or the embedded default it stands for when unset."""
        from config import load_config

        return load_config(self.env)["SQLALCHEMY_DATABASE_URI"]

    # -- running things against the same configuration

    def flask(self, *args: str, timeout: float = 60) -> str:
        """Run ``flask <args>`` with the server's environment; return what it printed (its
        log lines, on stderr, are left out unless it fails)."""
        done = subprocess.run(
            [str(BIN / "flask"), *args], cwd=REPO, env=self.env, timeout=timeout,
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}")
        return done.stdout

    @contextmanager
    def app_context(self, **config):
        """An app context in this process on the server's database (to read what the server
        wrote, e.g. ``assert_queue_invariants``); its connections are closed afterwards.
        ``config`` adds settings (a benchmark seeds with the server's ``SECRET_KEY``)."""
        from app import create_app
        from extensions import db

        app = create_app({"SQLALCHEMY_DATABASE_URI": self.database_url, "TESTING": True,
                          "HUEY_IMMEDIATE": False, **config})
        with app.app_context():
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()

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

    def start(self, *, wait_for_consumer: bool = True, consumer: bool = True,
              threads: int = 8, access_log: bool = True) -> LiveServer:
        """Migrate, then start the consumer and gunicorn. A benchmark starts gunicorn alone
        (``consumer=False``: tasks stay queued), with its own ``threads`` and no access log."""
        self.flask("db", "upgrade")
        self.port = free_port()
        if consumer:
            self.start_consumer()
        self._spawn("gunicorn", [
            # As scripts/run.sh: one process unless WEB_CONCURRENCY asks for more.
            str(BIN / "gunicorn"), "--workers", self.env.get("WEB_CONCURRENCY", "1"),
            "--threads", str(threads),
            "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "3",
            # gunicorn 27 binds a control socket at one fixed path per user by default;
            # servers running side by side (or beside `make run`) would fight over it.
            "--no-control-socket",
            *(["--access-logfile", "-"] if access_log else []), "app:create_app()",
        ])
        self._wait_until_ready(wait_for_consumer and consumer)
        return self

    def start_consumer(self) -> None:
        """Start the Huey consumer (again, after ``stop_consumer``); its log carries on."""
        self._spawn("huey", [str(BIN / _CONSUMER[0]), *_CONSUMER[1:]])

    def stop_consumer(self, *, kill: bool = False) -> None:
        """Stop the consumer as ``stop()`` would (SIGTERM, then SIGKILL after a grace), or
        with ``kill`` SIGKILL it at once, mid-task, as a crash or the OOM killer would."""
        consumer = self.processes["huey"]
        if kill:
            _signal_group(consumer, signal.SIGKILL)
            consumer.wait(timeout=10)
        else:
            stop_groups([consumer])

    def web_workers(self) -> list[int]:
        """The process ids of gunicorn's worker processes (its master's children)."""
        master = self.processes["gunicorn"].pid
        children = []
        for path in Path(f"/proc/{master}/task").glob("*/children"):
            try:
                children += [int(pid) for pid in path.read_text().split()]
            except OSError:  # the master is gone
                pass
        return sorted(children)

    def kill_web_worker(self, pid: int) -> None:
        """SIGKILL one worker mid-request; gunicorn's master starts a new one in its place."""
        if pid not in self.web_workers():
            raise ValueError(f"{pid} is not one of gunicorn's workers")
        os.kill(pid, signal.SIGKILL)

    def start_run_script(self, *, wait_for_consumer: bool = False) -> LiveServer:
        """Serve as ``make run`` does: migrate, then ``scripts/run.sh`` with ``HOST``/``PORT``
        (in a process group of its own, like a service). Call again after it has stopped."""
        self.flask("db", "upgrade")
        if not self.port:
            self.port = free_port()
            self.env.update(HOST="127.0.0.1", PORT=str(self.port))
        self._spawn("run.sh", ["bash", str(REPO / "scripts" / "run.sh")])
        self._wait_until_ready(wait_for_consumer)
        return self

    def signal_run_script(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to ``run.sh`` (as ``kill``, ``docker stop`` or systemd does to a
        service's main process; a terminal's Ctrl-C is SIGINT)."""
        self.processes["run.sh"].send_signal(sig)

    def process_tree(self, name: str) -> list[int]:
        """``name``'s process and every process it started that is still running (its
        children may sit in sessions of their own, out of reach of its process group)."""
        tree, todo = [], [self.processes[name].pid]
        while todo:
            pid = todo.pop()
            if not alive([pid]):
                continue
            for path in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    todo += [int(child) for child in path.read_text().split()]
                except OSError:  # gone meanwhile
                    pass
            tree.append(pid)
        return tree

    def _spawn(self, name: str, argv: list[str]) -> None:
        previous = self.processes.get(name)
        if previous is not None and previous.poll() is None:  # poll() reaps it if it exited
            raise RuntimeError(f"{name} is still running")
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
        # run.sh starts its children in sessions of their own: stop them too.
        strays = [pid for name in self.processes for pid in self.process_tree(name)[1:]]
        stop_groups(self.processes.values())
        for pid in strays:
            try:
                os.killpg(pid, signal.SIGKILL)  # each is a session (and group) leader
            except (ProcessLookupError, PermissionError):
                pass
        if self in RUNNING:
            RUNNING.remove(self)


# Every server started and not yet stopped (a failing test's report shows their logs).
RUNNING: list[LiveServer] = []


def running_at(url: str) -> LiveServer:
    """The running server at ``url`` (a browser step given only the site's address finds
    its instance folder, say to read the emails it wrote)."""
    for server in RUNNING:
        if server.url == url.rstrip("/"):
            return server
    raise LookupError(f"no live server runs at {url}")


@pytest.hookimpl(wrapper=True)
def report_with_server_logs(item, call):
    """A ``pytest_runtest_makereport`` hook for a conftest (``pytest_runtest_makereport =
    report_with_server_logs``): a failed test's report carries every running server's logs."""
    report = yield
    if report.failed:
        for server in RUNNING:
            report.sections.append((f"live server {server.url}", server.logs(tail=150)))
    return report


@atexit.register
def _stop_leftovers() -> None:
    """Last resort (an interrupted run): never leave a server behind."""
    for server in list(RUNNING):
        server.stop()


def launch_server(folder: Path, *, start: bool = True, **env) -> LiveServer:
    """A server on a fresh database in ``folder``: migrated and started (app and consumer)
    unless ``start=False`` (then call ``start()`` or ``start_run_script()``)."""
    folder.mkdir(parents=True, exist_ok=True)
    server = LiveServer(folder=folder, env=server_env(folder, env))
    RUNNING.append(server)
    if not start:
        return server
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise


@contextmanager
def server_factory(new_folder: Callable[[], Path]):
    """Yield ``start(**env) -> LiveServer``, each server in a folder from ``new_folder()``;
    every server started is stopped on the way out."""
    servers: list[LiveServer] = []

    def start(**env) -> LiveServer:
        server = launch_server(new_folder(), **env)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
