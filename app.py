"""Ticket Hub: the application factory.

``create_app()`` builds a configured app from the environment (see ``config.py``);
``create_app({...})`` overrides settings, as the tests do.
"""

from __future__ import annotations

import sqlite3

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

import cli
import tasks
from config import PROJECT_DIR, load_config
from extensions import csrf, db, limiter, login_manager, migrate


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
    options.setdefault("pool_pre_ping", True)
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


def _register_error_pages(app: Flask) -> None:
    messages = {
        400: ("Bad request", "The request could not be understood."),
        403: ("Not allowed", "You don't have permission to do that."),
        404: ("Not found", "We couldn't find that page."),
        405: ("Not allowed", "That action isn't available here."),
        413: ("Upload too large", "That upload is too large. Images can be at most 5 MB."),
        429: ("Too many requests", "You're going a bit fast. Please wait and try again."),
        500: ("Something went wrong", "Sorry, something went wrong on our side."),
        503: ("Busy", "We're very busy right now. Please try again in a moment."),
    }

    def handler(error):
        code = getattr(error, "code", 500) or 500
        title, text = messages.get(code, messages[500])
        description = getattr(error, "description", None)
        if code in (400, 429) and description and isinstance(description, str):
            text = description
        return render_template("errors/error.html", title=title, text=text, code=code), code

    for code in messages:
        app.register_error_handler(code, handler)

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        """Usually a session that expired while the page stayed open: reload it for HTMX
        (a fresh page carries a fresh token), explain it on a plain form post."""
        text = "Your session expired while the page was open. Go back, reload it and try again."
        response = app.make_response(
            (render_template("errors/error.html", title="Please try again", text=text, code=400), 400))
        if request.headers.get("HX-Request") == "true":
            response.headers["HX-Refresh"] = "true"
        return response


def _register_security_headers(app: Flask) -> None:
    @app.after_request
    def headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
        )
        if request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "public, max-age=3600")
        return response
