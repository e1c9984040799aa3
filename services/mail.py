"""Email delivery: SMTP when ``MAIL_SERVER`` is set, else ``.eml`` files under
``instance/mail/`` (the embedded default) that any mail program can open."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import current_app, render_template, url_for


def absolute_url(endpoint: str, **values) -> str:
    """A full link for an email (sent from a worker, outside any request)."""
    with current_app.test_request_context("/", base_url=current_app.config["BASE_URL"]):
        return url_for(endpoint, _external=True, **values)


def build(*, to: str, subject: str, template: str, key: str, **context) -> EmailMessage:
    """Render ``email/<template>.txt`` and ``.html`` into one message."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring=key.replace("-", "."), domain="tickethub")
    message.set_content(render_template(f"email/{template}.txt", **context))
    message.add_alternative(render_template(f"email/{template}.html", **context), subtype="html")
    return message


def deliver(message: EmailMessage, *, key: str) -> None:
    """Send ``message``. The file backend names it by ``key``, so a retried send of the
    same notification replaces the file instead of adding a second one."""
    config = current_app.config
    if config.get("MAIL_SERVER"):
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
            smtp.send_message(message)
        return
    folder = Path(config["INSTANCE_PATH"]) / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{key}.eml.tmp"
    temporary.write_bytes(bytes(message))
    temporary.replace(folder / f"{key}.eml")
