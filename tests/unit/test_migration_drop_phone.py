"""0003 drops ``users.phone`` from a database in use: people, their events and tickets stay."""

from __future__ import annotations

from datetime import datetime

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from extensions import db
from tests.support.migrations import schema_at

AT = datetime(2026, 12, 1, 19, 30)


def user_columns() -> set[str]:
    return {column["name"] for column in inspect(db.engine).get_columns("users")}


def test_dropping_the_phone_column_keeps_everyone_and_everything_they_own(any_db_app):
    with schema_at("0002_outbox"):
        # Rows written as the 0002 schema has them (the models describe the newest one).
        with db.engine.begin() as connection:
            for user_id, name in ((1, "Olive"), (2, "Ann")):
                connection.execute(text(
                    "INSERT INTO users (id, name, email, password_hash, phone, "
                    "stripe_details_submitted, stripe_charges_enabled, created_at) VALUES "
                    "(:id, :name, :email, 'x', '07700 900000', false, false, :at)"),
                    {"id": user_id, "name": name, "email": f"{name.lower()}@example.com",
                     "at": AT})
            connection.execute(text(
                "INSERT INTO events (id, organizer_id, name, description, location, starts_at, "
                "price_pence, total_tickets, created_at, updated_at, sold_count, offered_count, "
                "waiting_count, last_seq, queue_version) VALUES (1, 1, 'Gig', '', 'Soho', :at, "
                "1250, 10, :at, :at, 1, 0, 0, 1, 2)"), {"at": AT})
            connection.execute(text(
                "INSERT INTO waiting_list_entries (id, event_id, user_id, seq, status, joined_at,"
                " offered_at, offer_expires_at, ended_at, end_reason) VALUES (1, 1, 2, 1, "
                "'purchased', :at, :at, :at, :at, 'purchased')"), {"at": AT})
            connection.execute(text(
                "INSERT INTO tickets (id, event_id, user_id, entry_id, status, purchased_at, "
                "amount_pence) VALUES (1, 1, 2, 1, 'valid', :at, 1250)"), {"at": AT})
        event_id = 1

        upgrade(revision="0003_drop_user_phone")
        assert "phone" not in user_columns()
        with db.engine.connect() as connection:
            names = connection.execute(text("SELECT name FROM users ORDER BY name")).scalars()
            assert list(names) == ["Ann", "Olive"]
            assert connection.execute(text("SELECT sold_count FROM events WHERE id = :id"),
                                      {"id": event_id}).scalar() == 1
            assert connection.execute(text("SELECT count(*) FROM tickets")).scalar() == 1
        db.session.remove()

        downgrade(revision="0002_outbox")
        assert "phone" in user_columns()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 2
