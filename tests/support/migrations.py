"""Running the migrations on a test database: a schema at an old revision, rows written as
it has them, then the migration under test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask_migrate import upgrade
from sqlalchemy import text

from extensions import db


def _forget_revisions() -> None:
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


@contextmanager
def schema_at(revision: str) -> Iterator[None]:
    """The database emptied and migrated to ``revision``; afterwards, the models' schema
    again (as the ``app`` fixtures made it)."""
    db.drop_all()
    _forget_revisions()
    upgrade(revision=revision)
    try:
        yield
    finally:
        db.session.remove()
        db.drop_all()
        _forget_revisions()
        db.create_all()
