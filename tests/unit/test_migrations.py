"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from extensions import db


def test_migrations_match_the_models(any_db_app):
    db.drop_all()
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade()
    try:
        with db.engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diffs == []
        indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("waiting_list_entries")}
        assert {"uq_entry_active_user", "ix_entry_active_seq", "ix_entry_waiting_seq"} <= indexes
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    finally:
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.drop_all()
        db.create_all()
