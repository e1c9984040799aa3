"""Test apps: the app factory with the test settings, on a fresh database.

The ``app`` and ``any_db_app`` fixtures use these; a test that needs an app of its own
(another database, a fake Stripe) calls them directly.
"""

from __future__ import annotations

from flask import Flask

from app import create_app
from extensions import db, limiter


def build_test_config(tmp_path, database_url: str | None = None, **overrides) -> dict:
    """Settings for a test app whose instance folder and SQLite file live in ``tmp_path``."""
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "UPLOAD_FOLDER": str(tmp_path / "instance" / "uploads"),
        "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{tmp_path / 'test.sqlite3'}",
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "tickethub-memory://",
        "HUEY_IMMEDIATE": True,
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return config


def make_app(config: dict) -> Flask:
    """An app on ``config`` with its tables created afresh (and rate limits reset)."""
    app = create_app(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
    if config["RATELIMIT_ENABLED"]:
        with app.app_context():
            limiter.reset()
    return app
