"""A throwaway Redis (or Valkey) server on a free loopback port, for the shared-store tests."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager

from tests.support.ports import free_port


class RedisServer:
    """One server process on a fixed port, which a fault test can stop, pause and start again."""

    def __init__(self, binary: str, port: int | None = None):
        self.binary = binary
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it (empty: nothing is saved) and wait until it answers PING."""
        self._proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop it; the port refuses connections until ``start()``."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)  # a paused server cannot act on TERM
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def pause(self) -> None:
        """Freeze it: connections are accepted but never answered (a hung server)."""
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._proc.send_signal(signal.SIGCONT)


@contextmanager
def running_redis():
    """Yield a started ``RedisServer``, or None when no server binary is installed."""
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        yield None
        return
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def redis_server():
    """Yield ``redis://127.0.0.1:<port>/0``, or None when no server binary is installed."""
    with running_redis() as server:
        yield server.url if server else None
