"""The emails an app wrote as ``.eml`` files under ``instance/mail/`` (no SMTP server set),
each named by its notification key (``offer_made-12``), read as their recipient would: who
they are to, their subject, the link in them.
"""

from __future__ import annotations

import email
import re
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

_LINK = re.compile(r"https?://\S+")


def mailbox(app: Flask) -> dict[str, EmailMessage]:
    """Every email written so far, by key."""
    folder = Path(app.config["INSTANCE_PATH"]) / "mail"
    return {path.stem: email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(folder.glob("*.eml"))} if folder.exists() else {}


def inbox(instance_path, to: str) -> list[EmailMessage]:
    """Every message to ``to`` (an address), oldest first."""
    folder = Path(instance_path) / "mail"
    paths = sorted(folder.glob("*.eml"), key=lambda path: (path.stat().st_mtime_ns, path.name)) \
        if folder.exists() else []
    messages = [email.message_from_bytes(path.read_bytes(), policy=policy.default)
                for path in paths]
    return [message for message in messages if to.lower() in str(message["To"]).lower()]


def text_of(message: EmailMessage) -> str:
    """The plain-text part of an email."""
    return message.get_body(preferencelist=("plain",)).get_content()


def link_path(message: EmailMessage) -> str:
    """The path (and query) of the first link in the message's text: where a click leads,
    on whichever server sent it."""
    parts = urlsplit(_LINK.search(text_of(message)).group(0))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def latest(instance_path, to: str, subject: str, *, timeout: float = 0) -> EmailMessage:
    """The newest message to ``to`` whose subject contains ``subject``; waits up to
    ``timeout`` seconds for it (a worker sends it after the request)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in inbox(instance_path, to) if subject in str(m["Subject"])]
        if found:
            return found[-1]
        if time.monotonic() >= deadline:
            raise AssertionError(f"no email {subject!r} to {to} within {timeout:.0f} s")
        time.sleep(0.1)
