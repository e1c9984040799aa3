"""Counting the SQL statements a piece of work sends (after pretix's ``assert_num_queries``).

Every statement the engine hands to the database driver counts, transaction control
included (SQLite's ``BEGIN IMMEDIATE``, a PostgreSQL ``SELECT ... FOR UPDATE``); the driver's
own ``BEGIN``/``COMMIT`` and the connection pool's ping do not pass through the engine's
cursor and are not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine

from extensions import db


@contextmanager
def recorded_queries(engine: Engine | None = None) -> Iterator[list[str]]:
    """Yield a list that fills with every SQL statement sent on ``engine`` (the app's by
    default) until the block ends."""
    engine = engine or db.engine
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def assert_num_queries(expected: int, engine: Engine | None = None) -> Iterator[list[str]]:
    """Fail unless the block sends exactly ``expected`` SQL statements; the message lists
    them, so a new query shows where it came from."""
    with recorded_queries(engine) as statements:
        yield statements
    numbered = "\n".join(f"{n}. {sql[:300]}" for n, sql in enumerate(statements, 1))
    assert len(statements) == expected, (
        f"{len(statements)} SQL statements, expected {expected}:\n{numbered}")
