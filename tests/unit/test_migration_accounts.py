"""0005 gives accounts in use a person key: one per person, the oldest account keeping it
when one person already has several, so the unique index can be made; nobody is lost."""

from __future__ import annotations

from datetime import datetime

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from extensions import db
from tests.support.migrations import schema_at

AT = datetime(2026, 12, 1, 19, 30)


def test_existing_accounts_get_person_keys_and_later_duplicates_are_told_apart(any_db_app):
    with schema_at("0004_fair_start"):
        # Rows written as the 0004 schema has them: one person twice (a tag, then Gmail's
        # dots and googlemail.com), and someone else.
        with db.engine.begin() as connection:
            for user_id, email in ((1, "ada@example.com"), (2, "ada+gigs@example.com"),
                                   (3, "grace.hopper@googlemail.com"), (4, "gracehopper@gmail.com"),
                                   (5, "alan@example.com")):
                connection.execute(text(
                    "INSERT INTO users (id, name, email, password_hash, "
                    "stripe_details_submitted, stripe_charges_enabled, created_at) VALUES "
                    "(:id, 'Someone', :email, 'x', false, false, :at)"),
                    {"id": user_id, "email": email, "at": AT})

        upgrade(revision="0005_accounts")
        with db.engine.connect() as connection:
            keys = dict(connection.execute(text("SELECT id, person_key FROM users")).all())
            verified = connection.execute(text(
                "SELECT count(*) FROM users WHERE email_verified_at IS NOT NULL")).scalar()
        assert keys == {1: "ada@example.com", 2: "ada@example.com#2",
                        3: "gracehopper@gmail.com", 4: "gracehopper@gmail.com#4",
                        5: "alan@example.com"}
        assert verified == 0  # they confirm their address before their next join
        assert "sign_in_sessions" in inspect(db.engine).get_table_names()
        indexes = {ix["name"]: ix["unique"] for ix in inspect(db.engine).get_indexes("users")}
        assert indexes["uq_users_person_key"]
        db.session.remove()

        downgrade(revision="0004_fair_start")
        assert "person_key" not in {c["name"] for c in inspect(db.engine).get_columns("users")}
        assert "sign_in_sessions" not in inspect(db.engine).get_table_names()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 5
