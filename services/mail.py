"""Email delivery: SMTP when ``MAIL_SERVER`` is set, else ``.eml`` files under
``instance/mail/`` (the embedded default) that any mail program can open."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from flask import current_app, render_template

# A mailbox whose local part is not ASCII can only travel as SMTPUTF8.
_UTF8_POLICY = policy.default.clone(utf8=True)


def one_line(text: str) -> str:
    """``text`` fit for a header: line breaks and other control characters become spaces,
    so a name or an event name can never end the header or start another one."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def recipient(name: str, email: str) -> Address:
    """One mailbox, built field by field rather than formatted as text, so a display name
    such as ``Mallory, victim@evil.example`` is quoted as a name and adds no recipient."""
    local, _, domain = email.rpartition("@")
    try:  # an internationalised domain travels as its xn-- form
        domain = validate_email(email, check_deliverability=False).ascii_domain
    except EmailNotValidError:
        pass
    return Address(display_name=one_line(name), username=local, domain=domain)


@dataclass(frozen=True)
class InlineImage:
    """A picture the HTML part shows as ``<img src="cid:{{ cid }}">`` (a related part, so
    mail programs show it without fetching anything)."""

    cid: str  # without the angle brackets
    png: bytes
    filename: str


def inline_image(png: bytes, *, name: str, filename: str) -> InlineImage:
    return InlineImage(cid=make_msgid(idstring=name, domain="tickethub")[1:-1], png=png,
                       filename=filename)


def build(*, to: Address, subject: str, template: str, key: str,
          images: tuple[InlineImage, ...] = (), **context) -> EmailMessage:
    """Render ``email/<template>.txt`` and ``.html`` into one message to ``to`` (see
    ``recipient``), with ``images`` inside the HTML part. The subject is made one line,
    whatever names it holds."""
    message = EmailMessage(policy=policy.default if to.username.isascii() else _UTF8_POLICY)
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = one_line(subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring=key.replace("-", "."), domain="tickethub")
    message.set_content(render_template(f"email/{template}.txt", **context))
    message.add_alternative(render_template(f"email/{template}.html", **context), subtype="html")
    html = message.get_payload()[-1]
    for image in images:
        html.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>",
                         disposition="inline", filename=image.filename)
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
