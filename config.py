"""Configuration, read once from the environment with the embedded defaults.

Every setting the outside contract names (``../shared/CONTRACT.md``) is read here and nowhere
else. The embedded defaults need nothing but this checkout: SQLite files and a generated
secret key under ``instance/``, rate limits in memory, the local payment page.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

from services import timezones

PROJECT_DIR = Path(__file__).resolve().parent

_QUEUE_JOIN_LIMIT_RE = re.compile(r"^\s*\d+\s*(/|per)\s*(\d+\s*)?\w+\s*$")


def instance_path(environ=os.environ) -> Path:
    """Where the SQLite files, uploads, mail and the generated secret key live."""
    return Path(environ.get("INSTANCE_PATH") or PROJECT_DIR / "instance").resolve()


def secret_key(folder: Path, environ=os.environ) -> str:
    """``SECRET_KEY`` from the environment, else one generated once and kept in ``folder``."""
    if environ.get("SECRET_KEY"):
        return environ["SECRET_KEY"]
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret_key"
    try:
        # O_EXCL: two processes starting at once agree on one key.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        key = secrets.token_hex(32)
        fh.write(key)
    return key


def _int(environ, name: str, default: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, got {raw!r}") from None


def _float(environ, name: str, default: float) -> float:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from None


def _bool(environ, name: str) -> bool:
    raw = (environ.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise RuntimeError(f"{name} must be 1 or 0, got {raw!r}")


def _count(environ, name: str) -> int:
    value = _int(environ, name, 0)
    if value < 0:
        raise RuntimeError(f"{name} must be 0 or more, got {value}")
    return value


def _rate(environ, name: str, default: str) -> str:
    value = environ.get(name) or default
    if not _QUEUE_JOIN_LIMIT_RE.match(value):  # the shape of any Flask-Limiter rate
        raise RuntimeError(f"{name} must look like '{default}', got {value!r}")
    return value


def _rates(environ, name: str, default: str) -> str:
    """One or more Flask-Limiter rates separated by ``;`` (each a step of a growing wait)."""
    value = environ.get(name) or default
    if not all(_QUEUE_JOIN_LIMIT_RE.match(part) for part in value.split(";")):
        raise RuntimeError(f"{name} must look like '{default}', got {value!r}")
    return value


def _positive(environ, name: str, default: int) -> int:
    value = _int(environ, name, default)
    if value < 1:
        raise RuntimeError(f"{name} must be 1 or more, got {value}")
    return value


def load_config(environ=os.environ) -> dict:
    """Build the Flask config mapping from ``environ``."""
    folder = instance_path(environ)
    folder.mkdir(parents=True, exist_ok=True)
    redis_url = environ.get("REDIS_URL") or None
    stripe_key = environ.get("STRIPE_SECRET_KEY") or None
    payments = environ.get("PAYMENTS") or ("stripe" if stripe_key else "local")
    if payments not in ("stripe", "local"):
        raise RuntimeError(f"PAYMENTS must be 'stripe' or 'local', got {payments!r}")
    join_limit = environ.get("QUEUE_JOIN_LIMIT") or "3 per 30 minutes"
    if not _QUEUE_JOIN_LIMIT_RE.match(join_limit):
        raise RuntimeError(
            f"QUEUE_JOIN_LIMIT must look like '3 per 30 minutes', got {join_limit!r}")
    default_zone = environ.get("DEFAULT_TIMEZONE") or "Europe/London"
    if not timezones.is_zone(default_zone):
        raise RuntimeError(
            "DEFAULT_TIMEZONE must be an IANA time zone like 'Europe/London', "
            f"got {default_zone!r}")
    workers = _int(environ, "WEB_CONCURRENCY", 1)
    if workers > 1 and not redis_url:
        # In-memory rate limits would be counted per process: refuse rather than pretend.
        raise RuntimeError(
            f"WEB_CONCURRENCY={workers} needs REDIS_URL: rate limits must be shared by every "
            "process that serves (see the README)."
        )
    return {
        "INSTANCE_PATH": str(folder),
        "SECRET_KEY": secret_key(folder, environ),
        "SQLALCHEMY_DATABASE_URI": environ.get("DATABASE_URL")
        or f"sqlite:///{folder / 'tickethub.sqlite3'}",
        "REDIS_URL": redis_url,
        "HUEY_SQLITE_PATH": str(folder / "huey.sqlite3"),
        "RATELIMIT_STORAGE_URI": redis_url or "tickethub-memory://",  # extensions.py
        # Redis down or hung: give up on it within a second and count the limits in memory
        # (per process, with a logged warning) until it answers again, rather than fail
        # the request. Errors that are not the store's are bugs and are not swallowed.
        "RATELIMIT_STORAGE_OPTIONS": (
            {"socket_connect_timeout": 1, "socket_timeout": 1} if redis_url else {}),
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": False,
        "RATELIMIT_HEADERS_ENABLED": True,
        # Every limit of a request is checked, so a refusal can say the longest wait.
        "RATELIMIT_FAIL_ON_FIRST_BREACH": False,
        "RATELIMIT_ENABLED": True,
        "PAYMENTS": payments,
        "STRIPE_SECRET_KEY": stripe_key,
        "STRIPE_WEBHOOK_SECRET": environ.get("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_API_BASE": environ.get("STRIPE_API_BASE") or None,
        "PLATFORM_FEE_PERCENT": _float(environ, "PLATFORM_FEE_PERCENT", 1.0),
        "TICKET_OFFER_SECONDS": _int(environ, "TICKET_OFFER_SECONDS", 1800),
        # The outbox (services/outbox.py): how long a hand-over or a worker's claim is trusted
        # before the row is handed over again, and how often the consumer's relay looks.
        "OUTBOX_LEASE_SECONDS": _int(environ, "OUTBOX_LEASE_SECONDS", 120),
        "OUTBOX_RELAY_SECONDS": _float(environ, "OUTBOX_RELAY_SECONDS", 5.0),
        # A payment authorised but not settled this long after its session last changed
        # (the webhook never came, a worker died mid-payment) is settled by the minute sweep.
        "PAYMENT_SETTLE_AFTER_SECONDS": _int(environ, "PAYMENT_SETTLE_AFTER_SECONDS", 120),
        "QUEUE_JOIN_LIMIT": join_limit,
        "DEFAULT_TIMEZONE": default_zone,
        # The status widget polls every 2 s while someone waits; this only stops runaways.
        "STATUS_POLL_LIMIT": environ.get("STATUS_POLL_LIMIT") or "120 per minute",
        # How stale a status poll's view of an event may be in one process before it reads
        # it again (a change made by this process is seen at once), and how long browsers
        # and proxies may keep the shared /events/<id>/availability fragment.
        "STATUS_CLOCK_MAX_AGE": _float(environ, "STATUS_CLOCK_MAX_AGE", 1.0),
        "AVAILABILITY_MAX_AGE": _int(environ, "AVAILABILITY_MAX_AGE", 2),
        # Failed sign-ins only (a success costs nothing), per client address and per
        # account's address, each as steps of a growing wait: a guesser slows to a crawl,
        # and the owner's own browser (a trusted device, services/sessions.py) has a count
        # of its own, so nobody can lock them out.
        "LOGIN_LIMIT_PER_IP": _rates(environ, "LOGIN_LIMIT_PER_IP",
                                     "20 per 5 minutes; 60 per hour; 200 per day"),
        "LOGIN_LIMIT_PER_EMAIL": _rates(environ, "LOGIN_LIMIT_PER_EMAIL",
                                        "5 per 5 minutes; 10 per hour; 20 per day"),
        # Emails to an address on request (a confirmation link again, a password reset):
        # per address, and per client address.
        "ACCOUNT_EMAIL_LIMIT": "3 per hour",
        "ACCOUNT_EMAIL_LIMIT_PER_IP": "20 per hour",
        # How long a sign-in lasts before the person signs in again (the session cookie and
        # the session's row on the server alike).
        "PERMANENT_SESSION_LIFETIME": timedelta(
            hours=_positive(environ, "SESSION_LIFETIME_HOURS", 14 * 24)),
        # The lifetime counts from sign-in (the server's row ends then), and a request that
        # changes nothing in the session writes no cookie: the status poll's 304 stays bare.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "UPLOAD_FOLDER": str(folder / "uploads"),
        # Links in emails, which workers send outside any request.
        "BASE_URL": environ.get("BASE_URL")
        or f"http://{environ.get('HOST') or '127.0.0.1'}:{environ.get('PORT') or '5000'}",
        "MAIL_SERVER": environ.get("MAIL_SERVER") or None,
        "MAIL_PORT": _int(environ, "MAIL_PORT", 587),
        "MAIL_USE_TLS": (environ.get("MAIL_USE_TLS") or "true").lower() in ("1", "true", "yes"),
        "MAIL_USERNAME": environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": environ.get("MAIL_PASSWORD") or None,
        "MAIL_FROM": environ.get("MAIL_FROM") or "Ticket Hub <no-reply@tickethub.invalid>",
        "MAX_IMAGE_BYTES": 5 * 1024 * 1024,
        # The whole request may carry the image plus the other fields.
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024 + 256 * 1024,
        "EVENTS_PER_PAGE": 12,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        # Production behind HTTPS (README, "Production settings"); off on the embedded default,
        # which serves plain HTTP on 127.0.0.1.
        "SESSION_COOKIE_SECURE": _bool(environ, "SESSION_COOKIE_SECURE"),
        "REMEMBER_COOKIE_SECURE": _bool(environ, "SESSION_COOKIE_SECURE"),
        "HSTS_SECONDS": _count(environ, "HSTS_SECONDS"),
        # How many proxies in front add X-Forwarded-For/-Proto/-Host; trusted only then.
        "TRUSTED_PROXIES": _count(environ, "TRUSTED_PROXIES"),
        # Decoding pictures costs memory and CPU: uploads per organizer, across processes.
        "IMAGE_UPLOAD_LIMIT": _rate(environ, "IMAGE_UPLOAD_LIMIT", "20 per hour"),
    }
