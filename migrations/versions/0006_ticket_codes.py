"""Tickets people can carry, organizers told: a short door code per ticket (older tickets get
theirs here), the organizer's daily sales email opt-in, and the record of summaries sent.

Revision ID: 0006_ticket_codes
Revises: 0005_accounts
Create Date: 2026-11-26 10:00:00

"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = '0006_ticket_codes'
down_revision = '0005_accounts'
branch_labels = None
depends_on = None

# As models.py has them at this revision (a migration never imports the models).
DOOR_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DOOR_CODE_LENGTH = 10


def _new_code(taken: set[str]) -> str:
    while True:
        code = "".join(secrets.choice(DOOR_CODE_ALPHABET) for _ in range(DOOR_CODE_LENGTH))
        if code not in taken:
            taken.add(code)
            return code


# Columns and tables are only added (never a batch "copy and move" of a table in use; see
# 0004's comment).
def upgrade():
    with op.batch_alter_table('tickets', recreate='never') as batch_op:
        batch_op.add_column(sa.Column('door_code', sa.String(length=12), nullable=True))
    tickets = sa.table('tickets', sa.column('id', sa.Integer),
                       sa.column('door_code', sa.String))
    connection = op.get_bind()
    taken: set[str] = set()
    ids = [row[0] for row in connection.execute(sa.select(tickets.c.id).order_by(tickets.c.id))]
    for ticket_id in ids:
        connection.execute(tickets.update().where(tickets.c.id == ticket_id)
                           .values(door_code=_new_code(taken)))
    with op.batch_alter_table('tickets', recreate='never') as batch_op:
        batch_op.create_index('uq_ticket_door_code', ['door_code'], unique=True)

    with op.batch_alter_table('users', recreate='never') as batch_op:
        batch_op.add_column(sa.Column('daily_sales_email', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))

    op.create_table('sales_summaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organizer_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organizer_id'], ['users.id'], name=op.f('fk_sales_summaries_organizer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_summaries')),
    sa.UniqueConstraint('organizer_id', 'day', name='uq_summary_organizer_day')
    )


def downgrade():
    op.drop_table('sales_summaries')
    with op.batch_alter_table('users', recreate='never') as batch_op:
        batch_op.drop_column('daily_sales_email')
    with op.batch_alter_table('tickets', recreate='never') as batch_op:
        batch_op.drop_index('uq_ticket_door_code')
        batch_op.drop_column('door_code')
