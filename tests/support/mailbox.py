"""The emails the app wrote: with no SMTP server configured, each is an ``.eml`` file under
``instance/mail/`` named by its notification key (``offer_made-12``)."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from flask import Flask


def mailbox(app: Flask) -> dict[str, email.message.EmailMessage]:
    """Every email written so far, by key."""
    folder = Path(app.config["INSTANCE_PATH"]) / "mail"
    return {path.stem: email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(folder.glob("*.eml"))} if folder.exists() else {}


def text_of(message: email.message.EmailMessage) -> str:
    """The plain-text part of an email."""
    return message.get_body(("plain",)).get_content()
