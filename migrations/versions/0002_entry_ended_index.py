"""Index waiting-list entries by event and end time (estimated wait).

Revision ID: 0002_entry_ended_index
Revises: 0001_initial
Create Date: 2026-11-25 08:29:20.929603

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002_entry_ended_index'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade():

    with op.batch_alter_table('waiting_list_entries', schema=None) as batch_op:
        batch_op.create_index('ix_entry_event_ended', ['event_id', 'ended_at'], unique=False)




def downgrade():

    with op.batch_alter_table('waiting_list_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entry_event_ended')


