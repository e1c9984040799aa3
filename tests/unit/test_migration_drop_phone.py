"""0003 drops ``users.phone`` from a database in use: people, their events and tickets stay."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from extensions import db
from models import Event, User
from tests.support.buying import buy_directly
from tests.support.factories import make_event, make_user


def user_columns() -> set[str]:
    return {column["name"] for column in inspect(db.engine).get_columns("users")}


def test_dropping_the_phone_column_keeps_everyone_and_everything_they_own(any_db_app):
    db.drop_all()
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(revision="0002_outbox")
    try:
        event = make_event(make_user(name="Olive"))
        buy_directly(event, make_user(name="Ann"))
        event_id = event.id
        with db.engine.begin() as connection:  # rows that reference users, and a phone set
            connection.execute(text("UPDATE users SET phone = '07700 900000'"))
        db.session.remove()

        upgrade()
        assert "phone" not in user_columns()
        assert sorted(db.session.scalars(db.select(User.name))) == ["Ann", "Olive"]
        assert db.session.get(Event, event_id).sold_count == 1
        db.session.remove()

        downgrade(revision="0002_outbox")
        assert "phone" in user_columns()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 2
    finally:
        db.session.remove()
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.create_all()
