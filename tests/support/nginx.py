"""A throwaway nginx (Debian's package) in front of a live server, configured with the shipped
``deploy/nginx/tickethub.conf`` as ``deploy/nginx/render.py`` renders it for operators.

``running_nginx(folder, upstream)`` yields an ``Nginx`` (``.url``, ``.error_log()``) listening
on a free loopback port, with its pid file, logs, temporary files and cache all in ``folder``
(``/etc/nginx`` is not touched), and stops it on the way out; it yields None when nginx is
not installed. The main configuration around the shipped file mirrors the ``http {}`` of
Debian's ``/etc/nginx/nginx.conf`` where it matters (``gzip on;``, mime types), so the
shipped file is tested in the context it is installed into.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.live_server import REPO
from tests.support.ports import free_port
from tests.support.processes import stop_groups

RENDER = REPO / "deploy" / "nginx" / "render.py"
START_TIMEOUT = 10.0

# Workers run as root when the master does: otherwise they run as an unprivileged user that
# cannot write the cache in a private temporary folder ("Permission denied").
_MAIN_CONF = """\
{user}
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {folder}/tmp/body;
    proxy_temp_path {folder}/tmp/proxy;
    fastcgi_temp_path {folder}/tmp/fastcgi;
    uwsgi_temp_path {folder}/tmp/uwsgi;
    scgi_temp_path {folder}/tmp/scgi;
    # As Debian's nginx.conf has them:
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    gzip on;
    include {folder}/tickethub.conf;
}}
"""


@dataclass
class Nginx:
    folder: Path
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def error_log_path(self) -> Path:
        return self.folder / "error.log"

    def error_log(self) -> str:
        path = self.error_log_path
        return path.read_text(errors="replace") if path.exists() else ""


def nginx_binary() -> str | None:
    """Debian's nginx, which lives in /usr/sbin (not on every user's PATH)."""
    return shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")


def render_site(folder: Path, *, upstream: str, port: int) -> Path:
    """The shipped configuration rendered for a test, with the operators' command."""
    done = subprocess.run(
        [sys.executable, str(RENDER), "--upstream", upstream, "--listen", f"127.0.0.1:{port}",
         "--server-name", "localhost", "--cache-dir", str(folder / "cache")],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"render.py failed:\n{done.stderr}")
    site = folder / "tickethub.conf"
    site.write_text(done.stdout)
    return site


@contextmanager
def running_nginx(folder: Path, upstream: str) -> Iterator[Nginx | None]:
    """nginx with the shipped site configuration in front of ``upstream`` (HOST:PORT)."""
    binary = nginx_binary()
    if binary is None:
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    port = free_port()
    render_site(folder, upstream=upstream, port=port)
    conf = folder / "nginx.conf"
    conf.write_text(_MAIN_CONF.format(folder=folder,
                                      user="user root;" if os.geteuid() == 0 else ""))
    with open(folder / "nginx.out", "ab") as out:
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    server = Nginx(folder=folder, port=port, process=process)
    try:
        _wait_until_listening(server)
        yield server
    finally:
        stop_groups([process])


def _wait_until_listening(server: Nginx) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            output = (server.folder / "nginx.out").read_text(errors="replace")
            raise RuntimeError(f"nginx exited with {server.process.returncode} while starting\n"
                               f"{output}\n{server.error_log()}")
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx not listening after {START_TIMEOUT:.0f} s\n{server.error_log()}")
