"""A throwaway PostgreSQL server for the test session (Debian's packages, run as ``postgres``).

``TEST_POSTGRES_URL`` set: use that server instead. Neither available: the PostgreSQL
tests skip, unless ``REQUIRE_POSTGRES=1`` (``make test`` sets it), when they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager


def _bin_dir() -> str | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def postgres_server():
    """Yield a SQLAlchemy URL of a fresh, empty database; stop the server afterwards."""
    if os.environ.get("TEST_POSTGRES_URL"):
        yield os.environ["TEST_POSTGRES_URL"]
        return
    bin_dir = _bin_dir()
    if bin_dir is None:
        yield None
        return
    data = tempfile.mkdtemp(prefix="tickethub-pg-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    run = lambda args: subprocess.run(_as_postgres(args), check=True, capture_output=True, cwd="/")
    run([f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
    run([f"{bin_dir}/pg_ctl", "-D", data, "-l", f"{data}/log", "-w", "-o",
         f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
         "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start"])
    try:
        run([f"{bin_dir}/psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-qc",
             "CREATE DATABASE tickethub_test"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/tickethub_test"
    finally:
        subprocess.run(_as_postgres([f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True, cwd="/")
        shutil.rmtree(data, ignore_errors=True)
