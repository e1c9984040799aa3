"""Drop users.phone: never asked for, shown or used.

Revision ID: 0003_drop_user_phone
Revises: 0002_outbox
Create Date: 2026-11-25 16:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0003_drop_user_phone'
down_revision = '0002_outbox'
branch_labels = None
depends_on = None


# SQLite (3.35 and later) drops a column in place, as PostgreSQL does. A batch "copy and
# move" would drop and recreate ``users``, which every other table references: with foreign
# keys on (the app turns them on), that fails as soon as anyone has an event or a ticket.
def upgrade():
    with op.batch_alter_table('users', recreate='never') as batch_op:
        batch_op.drop_column('phone')


def downgrade():
    with op.batch_alter_table('users', recreate='never') as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=32), nullable=True))
