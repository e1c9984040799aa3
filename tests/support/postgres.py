"""A throwaway PostgreSQL server for the test session (Debian's packages, run as ``postgres``).

``TEST_POSTGRES_URL`` set: use that server instead. Neither available: the PostgreSQL
tests skip, unless ``REQUIRE_POSTGRES=1`` (``make test`` sets it), when they fail.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.ports import free_port


def _bin_dir() -> str | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PostgresServer:
    """A throwaway server in its own data folder, which a fault test can stop and start again.

    ``create()`` runs initdb, starts it and creates the empty ``tickethub_test`` database;
    ``stop()`` is an immediate shutdown (like a crash: open connections are cut);
    ``start()`` brings the same data back on the same port; ``remove()`` deletes it all.
    ``fast_commits``: don't wait for the WAL at commit. Quicker, but a crash loses the last
    fraction of a second of commits, so tests that crash it on purpose turn it off.
    """

    def __init__(self, bin_dir: str, *, fast_commits: bool = True):
        self.bin_dir = bin_dir
        self.fast_commits = fast_commits
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="tickethub-pg-")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/tickethub_test"

    def _run(self, args: list[str]) -> None:
        subprocess.run(_as_postgres(args), check=True, capture_output=True, cwd="/")

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        self._run([f"{self.bin_dir}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                   "--no-sync", "-E", "UTF8"])
        self.start()
        self._run([f"{self.bin_dir}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                   "postgres", "-qc", "CREATE DATABASE tickethub_test"])

    def start(self) -> None:
        commits = "off" if self.fast_commits else "on"
        self._run([f"{self.bin_dir}/pg_ctl", "-D", self.data, "-l", f"{self.data}/log", "-w",
                   "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                   f"-c fsync=off -c synchronous_commit={commits} -c full_page_writes=off "
                   "-c max_connections=200", "start"])

    def stop(self) -> None:
        subprocess.run(_as_postgres([f"{self.bin_dir}/pg_ctl", "-D", self.data, "-m", "immediate",
                                     "stop"]), capture_output=True, cwd="/")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@contextmanager
def running_postgres(*, fast_commits: bool = True):
    """Yield a created ``PostgresServer`` of its own (None when PostgreSQL is not installed);
    remove it afterwards."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        yield None
        return
    server = PostgresServer(bin_dir, fast_commits=fast_commits)
    try:
        server.create()
        yield server
    finally:
        server.remove()


@contextmanager
def postgres_server():
    """Yield a SQLAlchemy URL of a fresh, empty database; stop the server afterwards."""
    if os.environ.get("TEST_POSTGRES_URL"):
        yield os.environ["TEST_POSTGRES_URL"]
        return
    with running_postgres() as server:
        yield server.url if server else None


def create_database(url: str) -> str:
    """A new, empty database on the server ``url`` points at (a server per test is slow to
    start; a database per live server is cheap). Returns its SQLAlchemy URL."""
    name = f"tickethub_{secrets.token_hex(6)}"
    _maintenance(url, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, cutting off whoever is still connected to it."""
    _maintenance(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def _maintenance(url: str, statement: str) -> None:
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()
