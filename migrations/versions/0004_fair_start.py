"""Fair start and time zones: events get a zone, drafts, an on-sale time with its lobby and
draw; waiting-list entries get a public reference.

Revision ID: 0004_fair_start
Revises: 0003_drop_user_phone
Create Date: 2026-11-25 17:30:00

"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = '0004_fair_start'
down_revision = '0003_drop_user_phone'
branch_labels = None
depends_on = None

def _event_columns():
    return (
        sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
        sa.Column('published_at', sa.DateTime(), nullable=True),
        sa.Column('sale_starts_at', sa.DateTime(), nullable=True),
        sa.Column('draw_seed', sa.String(length=64), nullable=True),
        sa.Column('draw_commitment', sa.String(length=64), nullable=True),
        sa.Column('drawn_at', sa.DateTime(), nullable=True),
        sa.Column('draw_size', sa.Integer(), nullable=True),
        sa.Column('lobby_count', sa.Integer(), server_default='0', nullable=False),
        sa.Column('lobby_seq', sa.Integer(), server_default='0', nullable=False),
    )


# Columns are only added (never a batch "copy and move", which fails on SQLite once other
# tables reference these rows; see 0003).
def upgrade():
    with op.batch_alter_table('events', recreate='never') as batch_op:
        for column in _event_columns():
            batch_op.add_column(column)
    # Events created before drafts existed were published when saved, in UTC.
    op.execute('UPDATE events SET published_at = created_at')
    with op.batch_alter_table('waiting_list_entries', recreate='never') as batch_op:
        batch_op.add_column(sa.Column('ref', sa.String(length=16), nullable=True))
    entries = sa.table('waiting_list_entries', sa.column('id', sa.Integer),
                       sa.column('ref', sa.String))
    connection = op.get_bind()
    ids = [row[0] for row in connection.execute(sa.select(entries.c.id))]
    for entry_id in ids:
        connection.execute(entries.update().where(entries.c.id == entry_id)
                           .values(ref=secrets.token_hex(8)))
    with op.batch_alter_table('waiting_list_entries', recreate='never') as batch_op:
        batch_op.create_index('uq_entry_event_ref', ['event_id', 'ref'], unique=True)


def downgrade():
    with op.batch_alter_table('waiting_list_entries', recreate='never') as batch_op:
        batch_op.drop_index('uq_entry_event_ref')
        batch_op.drop_column('ref')
    with op.batch_alter_table('events', recreate='never') as batch_op:
        for column in reversed(_event_columns()):
            batch_op.drop_column(column.name)
