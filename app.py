"""Ticket Hub: the application factory.

``create_app()`` builds a configured app from the environment (see ``config.py``);
``create_app({...})`` overrides settings, as the tests do.
"""

from __future__ import annotations

import sqlite3

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

import cli
import tasks
from blueprints.helpers import SessionInterface, wants_fragment
from config import PROJECT_DIR, load_config
from extensions import csrf, db, limiter, login_manager, migrate
from services import ServiceError


def create_app(overrides: dict | None = None) -> Flask:
    config = load_config()
    if overrides:
        config.update(overrides)
    app = Flask(
        __name__,
        instance_path=config["INSTANCE_PATH"],
        template_folder=str(PROJECT_DIR / "templates"),
        static_folder=str(PROJECT_DIR / "static"),
    )
    app.config.update(config)
    app.session_interface = SessionInterface()
    if app.config.get("TRUSTED_PROXIES"):
        # Only behind that many proxies may X-Forwarded-* be believed: otherwise any client
        # could pick its own address (and its own rate-limit bucket) by sending the header.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    _configure_database(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_DIR / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    tasks.bind_app(app)

    from blueprints import register_blueprints

    register_blueprints(app)
    cli.register(app)
    _register_error_pages(app)
    _register_security_headers(app)
    return app


def _configure_database(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    # A server's connections go stale when it restarts: each is tested as it is taken from
    # the pool. A SQLite file's never do, so there that would be a wasted statement on
    # every request (a fifth of a status poll's).
    options.setdefault("pool_pre_ping", not uri.startswith("sqlite"))
    if uri.startswith("sqlite"):
        # A writer waits up to 15 s for another writer's lock instead of failing at once.
        options.setdefault("connect_args", {"timeout": 15})
    else:
        # Give up on a lock after a few seconds: the user sees "busy, try again", not a hang.
        options.setdefault("connect_args", {"options": "-c lock_timeout=5000"})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


@sa_event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers run beside the one writer; foreign keys are off in SQLite by default."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


# A lost or overloaded database: the request can't be served now, but may be in a moment.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError,
                        sa_exc.PendingRollbackError, sa_exc.TimeoutError)
BUSY_RETRY_SECONDS = 5

ERROR_MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "You don't have permission to do that."),
    404: ("Not found", "We couldn't find that page."),
    405: ("Not allowed", "That action isn't available here."),
    409: ("Not possible", "That can't be done right now."),
    413: ("Upload too large", "That upload is too large. Images can be at most 5 MB."),
    429: ("Too many requests", "You're going a bit fast. Please wait and try again."),
    500: ("Something went wrong", "Sorry, something went wrong on our side."),
    502: ("Payments unavailable", "The payment service isn't answering right now."),
    503: ("Busy", "We're very busy right now. Please try again in a moment."),
}

# What is left when even the error template cannot be rendered.
_BARE_ERROR_PAGE = ('<!doctype html><html lang="en-GB"><head><meta charset="utf-8">'
                    '<title>{title} · Ticket Hub</title></head><body><main><h1>{title}</h1>'
                    '<p>{text}</p><p><a href="/">Back to all events</a></p></main></body></html>')


def _roll_back_session(app: Flask) -> None:
    """Leave the session usable (and its connection back in the pool), whatever state it is in."""
    try:
        db.session.rollback()
    except Exception:  # a connection that is already gone cannot even roll back
        app.logger.warning("Could not roll back the session after an error", exc_info=True)


def _error_body(app: Flask, title: str, text: str, code: int, *, with_user: bool) -> str:
    """The error page, or the fragment HTMX asked for. Never raises.

    ``with_user``: render like every other page (the navigation knows who is signed in, which
    may load the user from the database). Without it, or when that fails, the page is rendered
    from the template alone: no context processors, so nothing reads the database.
    """
    fragment = wants_fragment()
    name = "errors/_error.html" if fragment else "errors/error.html"
    values = {"title": title, "text": text, "code": code}
    if with_user and not fragment:
        try:
            return render_template(name, **values)
        except Exception:
            app.logger.warning("Error page %s could not show the user; showing it without",
                               code, exc_info=True)
            _roll_back_session(app)
    try:
        return app.jinja_env.get_template(name).render(user_unknown=True, **values)
    except Exception:
        app.logger.exception("Error page %s could not be rendered", code)
        return _BARE_ERROR_PAGE.format(title=escape(title), text=escape(text))


def _error_response(app: Flask, code: int, title: str, text: str, *, with_user: bool = True):
    response = app.make_response(
        (_error_body(app, title, text, code, with_user=with_user), code))
    if code == 503:
        response.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
    if wants_fragment():
        # A poll keeps what is on screen and asks again later; after an action the message
        # goes above the widget, which stays so the action can be tried again.
        response.headers["HX-Reswap"] = "none" if request.method == "GET" else "beforebegin"
    return response


def _register_error_pages(app: Flask) -> None:
    def handler(error):
        code = getattr(error, "code", 500) or 500
        original = getattr(error, "original_exception", None)
        if isinstance(original, DATABASE_UNAVAILABLE):
            return database_unavailable(original)
        title, text = ERROR_MESSAGES.get(code, ERROR_MESSAGES[500])
        description = getattr(error, "description", None)
        if code in (400, 429) and description and isinstance(description, str):
            text = description
        if code >= 500:
            # Whatever failed may have left the session broken: undo it before anything else,
            # and show the page without the user rather than risk the database again.
            _roll_back_session(app)
            return _error_response(app, code, title, text, with_user=False)
        return _error_response(app, code, title, text)

    for code in ERROR_MESSAGES:
        app.register_error_handler(code, handler)

    def database_unavailable(error):
        """The database is unreachable, overloaded or dropped the connection: 503, try again."""
        _roll_back_session(app)
        if isinstance(error, sa_exc.PendingRollbackError):
            # Some code carried on after a failed flush without rolling back: a bug to fix,
            # even though the person is only told to try again.
            app.logger.error("Session used after a failed flush, answered 503", exc_info=error)
        else:
            app.logger.warning("Database unavailable, answered 503: %s: %s", type(error).__name__,
                               (str(error).splitlines() or [""])[0])
        return _error_response(app, 503, *ERROR_MESSAGES[503], with_user=False)

    for error_type in DATABASE_UNAVAILABLE:
        app.register_error_handler(error_type, database_unavailable)

    @app.errorhandler(ServiceError)
    def service_refused(error: ServiceError):
        """A service refused and its view had nothing better to show: the error page (or
        fragment) with the refusal's status and message, so views just call the service.
        An id that leads nowhere gets the one not-found page, like any unknown address."""
        _roll_back_session(app)  # nothing was changed; leave no transaction open either
        code = error.status_code
        title, text = ERROR_MESSAGES.get(code, ERROR_MESSAGES[500 if code >= 500 else 400])
        if code != 404:
            text = error.message
        return _error_response(app, code, title, text, with_user=code < 500)

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        """Usually a session that expired while the page stayed open: reload it for HTMX
        (a fresh page carries a fresh token), explain it on a plain form post."""
        text = "Your session expired while the page was open. Go back, reload it and try again."
        response = _error_response(app, 400, "Please try again", text)
        if request.headers.get("HX-Request") == "true":
            response.headers["HX-Refresh"] = "true"
        return response


# Pages for one signed-in person: tickets (the QR is a bearer token), the account, and
# every organizer page (attendee names and emails); and the pages of emailed links, whose
# address is itself a secret. No cache may keep or share them.
PRIVATE_PATHS = ("/tickets", "/seller", "/account", "/password", "/verify")
# Chrome and Firefox check form-action on the redirects that follow a form post too: the
# "Buy now" and Connect forms post here and are answered with a 303 to Stripe.
STRIPE_FORM_TARGETS = "https://checkout.stripe.com https://connect.stripe.com"


def _is_private(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PRIVATE_PATHS)


def _register_security_headers(app: Flask) -> None:
    form_action = "'self'"
    if app.config["PAYMENTS"] == "stripe":
        form_action += " " + STRIPE_FORM_TARGETS
    policy = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
              "script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
              f"form-action {form_action}")
    hsts_seconds = app.config.get("HSTS_SECONDS") or 0

    @app.after_request
    def headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", policy)
        if hsts_seconds:
            response.headers.setdefault("Strict-Transport-Security", f"max-age={hsts_seconds}")
        if _is_private(request.path):
            response.headers["Cache-Control"] = "private, no-store"
        elif request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "public, max-age=3600")
        return response
