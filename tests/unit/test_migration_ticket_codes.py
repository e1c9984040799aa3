"""0006 gives every ticket already sold a door code of its own, which then checks it in."""

from __future__ import annotations

from datetime import datetime, timezone

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from extensions import db
from models import DOOR_CODE_ALPHABET, DOOR_CODE_LENGTH
from services import tickets
from tests.support.migrations import schema_at

AT = datetime(2026, 12, 1, 19, 30)


def test_tickets_sold_before_the_migration_get_distinct_codes_the_door_accepts(any_db_app):
    with schema_at("0004_fair_start"):
        # Rows as the 0004 schema has them (the models describe the newest one).
        with db.engine.begin() as connection:
            for user_id, name in ((1, "Olive"), (2, "Ann"), (3, "Bob"), (4, "Cat")):
                connection.execute(text(
                    "INSERT INTO users (id, name, email, password_hash, "
                    "stripe_details_submitted, stripe_charges_enabled, created_at) VALUES "
                    "(:id, :name, :email, 'x', false, false, :at)"),
                    {"id": user_id, "name": name, "email": f"{name.lower()}@example.com",
                     "at": AT})
            connection.execute(text(
                "INSERT INTO events (id, organizer_id, name, description, location, starts_at, "
                "price_pence, total_tickets, created_at, updated_at, sold_count, offered_count, "
                "waiting_count, last_seq, queue_version, timezone, published_at, lobby_count, "
                "lobby_seq) VALUES (1, 1, 'Gig', '', 'Soho', :at, 1250, 10, :at, :at, 3, 0, 0, "
                "0, 3, 'UTC', :at, 0, 0)"), {"at": AT})
            for ticket_id in (1, 2, 3):
                connection.execute(text(
                    "INSERT INTO tickets (id, event_id, user_id, status, purchased_at, "
                    "amount_pence) VALUES (:id, 1, :id + 1, 'valid', :at, 1250)"),
                    {"id": ticket_id, "at": AT})

        upgrade(revision="0006_ticket_codes")

        with db.engine.connect() as connection:
            codes = list(connection.execute(
                text("SELECT door_code FROM tickets ORDER BY id")).scalars())
            opted_in = connection.execute(text("SELECT daily_sales_email FROM users")).scalars()
            assert not any(opted_in)  # nobody is sent a daily email they did not ask for
        assert len(set(codes)) == 3
        assert all(len(code) == DOOR_CODE_LENGTH and set(code) <= set(DOOR_CODE_ALPHABET)
                   for code in codes)
        result = tickets.check_in(event_id=1, token=codes[1], now=datetime.now(timezone.utc))
        assert result.admitted and result.ticket.id == 2
        db.session.remove()

        downgrade(revision="0004_fair_start")
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM tickets")).scalar() == 3
