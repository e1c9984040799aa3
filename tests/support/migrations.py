"""A database taken back to an older schema, for tests of what a migration does to rows
written as that schema had them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask_migrate import upgrade
from sqlalchemy import text

from extensions import db


def _drop_everything() -> None:
    db.session.remove()
    db.drop_all()
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


@contextmanager
def schema_at(revision: str) -> Iterator[None]:
    """The app's database emptied and migrated to ``revision`` (inside an app context of
    ``app``/``any_db_app``); afterwards the models' own schema again, as the test began."""
    _drop_everything()
    upgrade(revision=revision)
    try:
        yield
    finally:
        _drop_everything()
        db.create_all()
