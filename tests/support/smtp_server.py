"""A tiny real SMTP server on a loopback port, for tests that count the emails the app sends.

It speaks just enough SMTP for ``smtplib`` (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT;
no TLS, no auth: run the app with ``MAIL_USE_TLS=0``) and keeps every message it accepts.

``hold_seconds`` holds the reply to the end of DATA that long, so a test can catch a send
"in flight" (``wait_for_held``) and kill or stop the sender meanwhile. A message counts as
delivered only if its sender is still connected when the reply goes out: one whose sender
vanished first is dropped and counted in ``abandoned``, as the sender never learned that it
arrived and will send it again. So "exactly once" in a test means what the sender intended.
"""

from __future__ import annotations

import email
import select
import socket
import socketserver
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

_MAX_LINE = 1024 * 1024


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_to: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        """The first recipient's address, as the envelope names it."""
        return self.rcpt_to[0] if self.rcpt_to else ""


def _argument(line: str) -> str:
    """The address in ``MAIL FROM:<a@b> SMTPUTF8`` or ``RCPT TO:<a@b>``."""
    _, _, rest = line.partition(":")
    address = rest.strip().split(" ")[0]
    return address.strip("<>")


class _Session(socketserver.StreamRequestHandler):
    server: _TCPServer

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def gone(self) -> bool:
        """Whether the client has closed its end (or died: its kernel closed it)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def handle(self) -> None:
        try:
            self.converse(self.server.owner)
        except OSError:  # the client died mid-conversation
            self.server.owner._abandon()

    def converse(self, owner: SMTPServer) -> None:
        self.reply("220 tickethub-test ESMTP")
        mail_from, rcpt_to = "", []
        while True:
            line = self.rfile.readline(_MAX_LINE)
            if not line:
                return
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = command[:4].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-tickethub-test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
                                 b"250 SIZE 10485760\r\n")
            elif verb == "HELO":
                self.reply("250 tickethub-test")
            elif verb == "MAIL":
                mail_from, rcpt_to = _argument(command), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpt_to.append(_argument(command))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                if not self.receive(owner, mail_from, rcpt_to):
                    return
                mail_from, rcpt_to = "", []
            elif verb in ("RSET", "NOOP"):
                if verb == "RSET":
                    mail_from, rcpt_to = "", []
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")

    def receive(self, owner: SMTPServer, mail_from: str, rcpt_to: list[str]) -> bool:
        """Read one message up to the lone dot; hold, then accept it if the client is still
        there. Returns False when the client went away."""
        lines = []
        while True:
            line = self.rfile.readline(_MAX_LINE)
            if not line:
                owner._abandon()
                return False
            if line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        owner._hold_began()
        try:
            deadline = time.monotonic() + owner.hold_seconds
            while time.monotonic() < deadline and not self.gone():
                time.sleep(0.02)
            if self.gone():
                owner._abandon()
                return False
            raw = b"".join(lines).replace(b"\r\n", b"\n")
            owner._accept(Received(mail_from, tuple(rcpt_to),
                                   email.message_from_bytes(raw, policy=policy.default)))
            self.reply("250 OK: queued")
            return True
        finally:
            owner._hold_ended()


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: SMTPServer, port: int):
        self.owner = owner
        super().__init__(("127.0.0.1", port), _Session)


class SMTPServer:
    """Listens on ``127.0.0.1:port`` (a free one by default) from ``start()`` to ``stop()``."""

    def __init__(self, *, hold_seconds: float = 0.0, port: int = 0):
        self.hold_seconds = hold_seconds  # may be changed while it runs
        self._lock = threading.Condition()
        self._messages: list[Received] = []
        self._held = 0
        self.abandoned = 0  # messages whose sender vanished before the reply
        self._server = _TCPServer(self, port)
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        """The app's settings that send its email here."""
        return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(self.port), "MAIL_USE_TLS": "0"}

    def start(self) -> SMTPServer:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what arrived

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def in_flight(self) -> int:
        """Messages received in full whose reply is being held right now."""
        with self._lock:
            return self._held

    def wait_for_held(self, timeout: float = 30) -> None:
        """Wait until a message is held (its sender waits for the reply: a send in flight)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._held > 0, timeout):
                raise AssertionError(f"no message arrived to hold within {timeout} s")

    def wait_until(self, condition, *, timeout: float, what: str) -> list[Received]:
        """Wait until ``condition(messages)`` is true; return the messages then."""
        with self._lock:
            if not self._lock.wait_for(lambda: condition(list(self._messages)), timeout):
                raise AssertionError(f"{what}: not within {timeout} s; received "
                                     f"{[(m.to, m.subject) for m in self._messages]}")
            return list(self._messages)

    # -- called by the sessions

    def _hold_began(self) -> None:
        with self._lock:
            self._held += 1
            self._lock.notify_all()

    def _hold_ended(self) -> None:
        with self._lock:
            self._held -= 1
            self._lock.notify_all()

    def _accept(self, received: Received) -> None:
        with self._lock:
            self._messages.append(received)
            self._lock.notify_all()

    def _abandon(self) -> None:
        with self._lock:
            self.abandoned += 1


@contextmanager
def smtp_server(*, hold_seconds: float = 0.0):
    """Yield a started ``SMTPServer``; stop it afterwards."""
    server = SMTPServer(hold_seconds=hold_seconds).start()
    try:
        yield server
    finally:
        server.stop()
