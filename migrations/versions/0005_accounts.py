"""Accounts a ticket site can trust: a person key per account (one account per person),
verified addresses, a pending address change, deleted accounts, and sign-in sessions that
can be ended.

Revision ID: 0005_accounts
Revises: 0004_fair_start
Create Date: 2026-11-26 10:00:00

"""
import sqlalchemy as sa
from alembic import op

from services.accounts import person_key

revision = '0005_accounts'
down_revision = '0004_fair_start'
branch_labels = None
depends_on = None


def _user_columns():
    return (
        sa.Column('person_key', sa.String(length=254), nullable=True),
        sa.Column('email_verified_at', sa.DateTime(), nullable=True),
        sa.Column('pending_email', sa.String(length=254), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
    )


def backfilled_keys(rows) -> dict[int, str]:
    """``{user id: person key}`` for ``rows`` of (id, email): the oldest account (lowest id)
    of a person keeps the key, and any later one gets it suffixed with its own id (``#17``;
    no address has ``#`` in its domain), so the unique index can be made. Those later
    accounts still sign in; a new one for the same person is refused."""
    keys, taken = {}, set()
    for user_id, email in sorted(rows):
        key = person_key(email)
        if key in taken:
            key = f"{key}#{user_id}"
        taken.add(key)
        keys[user_id] = key
    return keys


# Columns and tables are only added (never a batch "copy and move", which fails on SQLite
# once other tables reference these rows; see 0003). Accounts made before verification
# existed start unverified: they confirm their address (the event page offers the link)
# before their next join. What they already hold is untouched.
def upgrade():
    with op.batch_alter_table('users', recreate='never') as batch_op:
        for column in _user_columns():
            batch_op.add_column(column)
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('email', sa.String),
                     sa.column('person_key', sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.email)).all()
    for user_id, key in backfilled_keys(rows).items():
        connection.execute(users.update().where(users.c.id == user_id).values(person_key=key))
    with op.batch_alter_table('users', recreate='never') as batch_op:
        batch_op.create_index('uq_users_person_key', ['person_key'], unique=True)
    op.create_table(
        'sign_in_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_sign_in_sessions_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_sessions')),
    )
    with op.batch_alter_table('sign_in_sessions', recreate='never') as batch_op:
        batch_op.create_index('ix_sign_in_sessions_user', ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sign_in_sessions', recreate='never') as batch_op:
        batch_op.drop_index('ix_sign_in_sessions_user')
    op.drop_table('sign_in_sessions')
    with op.batch_alter_table('users', recreate='never') as batch_op:
        batch_op.drop_index('uq_users_person_key')
        for column in reversed(_user_columns()):
            batch_op.drop_column(column.name)
