"""Initial schema: users, events, waiting-list entries and their departure counts,
tickets, checkout sessions, webhook events, the local payment ledger and the audit
trail. Times are naive UTC; money is integer pence.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25 08:52:13.015195

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0001_initial'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('stripe_connect_id', sa.String(length=64), nullable=True),
    sa.Column('stripe_details_submitted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('stripe_charges_enabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('stripe_connect_id', name=op.f('uq_users_stripe_connect_id'))
    )
    op.create_table('webhook_events',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events'))
    )
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organizer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('price_pence', sa.Integer(), nullable=False),
    sa.Column('total_tickets', sa.Integer(), nullable=False),
    sa.Column('image_filename', sa.String(length=64), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('sold_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('offered_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('waiting_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_seq', sa.Integer(), server_default='0', nullable=False),
    sa.Column('queue_version', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint('price_pence >= 0', name=op.f('ck_events_price_not_negative')),
    sa.CheckConstraint('sold_count + offered_count <= total_tickets', name=op.f('ck_events_never_oversold')),
    sa.CheckConstraint('sold_count >= 0 AND offered_count >= 0 AND waiting_count >= 0', name=op.f('ck_events_counts_not_negative')),
    sa.CheckConstraint('total_tickets BETWEEN 1 AND 100000', name=op.f('ck_events_capacity_range')),
    sa.ForeignKeyConstraint(['organizer_id'], ['users.id'], name=op.f('fk_events_organizer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_organizer_id'), ['organizer_id'], unique=False)
        batch_op.create_index('ix_events_starts_at', ['starts_at'], unique=False)

    op.create_table('queue_departures',
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('block', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('departed', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_queue_departures_event_id_events')),
    sa.PrimaryKeyConstraint('event_id', 'block', name=op.f('pk_queue_departures'))
    )
    op.create_table('waiting_list_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('joined_at', sa.DateTime(), nullable=False),
    sa.Column('offered_at', sa.DateTime(), nullable=True),
    sa.Column('offer_expires_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.CheckConstraint("end_reason IS NULL OR end_reason IN ('purchased', 'offer_expired', 'declined', 'left', 'event_cancelled')", name=op.f('ck_waiting_list_entries_end_reason_known')),
    sa.CheckConstraint("status <> 'offered' OR offer_expires_at IS NOT NULL", name=op.f('ck_waiting_list_entries_offer_has_expiry')),
    sa.CheckConstraint("status IN ('waiting', 'offered', 'purchased', 'expired')", name=op.f('ck_waiting_list_entries_status_known')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_waiting_list_entries_event_id_events')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_waiting_list_entries_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waiting_list_entries')),
    sa.UniqueConstraint('event_id', 'seq', name='uq_entry_event_seq')
    )
    with op.batch_alter_table('waiting_list_entries', schema=None) as batch_op:
        batch_op.create_index('ix_entry_active_seq', ['event_id', 'seq'], unique=False, sqlite_where=sa.text("status IN ('waiting', 'offered')"), postgresql_where=sa.text("status IN ('waiting', 'offered')"))
        batch_op.create_index('ix_entry_offer_ended', ['event_id', 'ended_at'], unique=False, sqlite_where=sa.text('offered_at IS NOT NULL'), postgresql_where=sa.text('offered_at IS NOT NULL'))
        batch_op.create_index('ix_entry_offer_expiry', ['event_id', 'offer_expires_at'], unique=False, sqlite_where=sa.text("status = 'offered'"), postgresql_where=sa.text("status = 'offered'"))
        batch_op.create_index('ix_entry_user_event', ['user_id', 'event_id'], unique=False)
        batch_op.create_index('ix_entry_waiting_seq', ['event_id', 'seq'], unique=False, sqlite_where=sa.text("status = 'waiting'"), postgresql_where=sa.text("status = 'waiting'"))
        batch_op.create_index('uq_entry_active_user', ['event_id', 'user_id'], unique=True, sqlite_where=sa.text("status IN ('waiting', 'offered')"), postgresql_where=sa.text("status IN ('waiting', 'offered')"))

    op.create_table('tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('purchased_at', sa.DateTime(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('payment_reference', sa.String(length=255), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(), nullable=True),
    sa.Column('refunded_at', sa.DateTime(), nullable=True),
    sa.Column('refund_settled_at', sa.DateTime(), nullable=True),
    sa.Column('refund_reference', sa.String(length=255), nullable=True),
    sa.CheckConstraint("status IN ('valid', 'used', 'refunded', 'cancelled')", name=op.f('ck_tickets_status_known')),
    sa.CheckConstraint('amount_pence >= 0', name=op.f('ck_tickets_amount_not_negative')),
    sa.ForeignKeyConstraint(['entry_id'], ['waiting_list_entries.id'], name=op.f('fk_tickets_entry_id_waiting_list_entries')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_tickets_event_id_events')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_tickets_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_tickets_entry_id')),
    sa.UniqueConstraint('payment_reference', name=op.f('uq_tickets_payment_reference'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_event_status', ['event_id', 'status'], unique=False)
        batch_op.create_index('ix_tickets_user', ['user_id'], unique=False)
        batch_op.create_index('uq_ticket_live_user', ['event_id', 'user_id'], unique=True, sqlite_where=sa.text("status IN ('valid', 'used')"), postgresql_where=sa.text("status IN ('valid', 'used')"))

    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_entries_actor_id_users')),
    sa.ForeignKeyConstraint(['entry_id'], ['waiting_list_entries.id'], name=op.f('fk_audit_entries_entry_id_waiting_list_entries')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_audit_entries_event_id_events')),
    sa.ForeignKeyConstraint(['subject_id'], ['users.id'], name=op.f('fk_audit_entries_subject_id_users')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_audit_entries_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_time', ['event_id', 'created_at'], unique=False)

    op.create_table('checkout_sessions',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('fee_pence', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'paid', 'not_charged', 'refunded', 'expired')", name=op.f('ck_checkout_sessions_status_known')),
    sa.CheckConstraint('amount_pence >= 0 AND fee_pence >= 0', name=op.f('ck_checkout_sessions_amounts_not_negative')),
    sa.ForeignKeyConstraint(['entry_id'], ['waiting_list_entries.id'], name=op.f('fk_checkout_sessions_entry_id_waiting_list_entries')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_checkout_sessions_event_id_events')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_checkout_sessions_ticket_id_tickets')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_checkout_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkout_sessions')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_checkout_sessions_entry_id')),
    sa.UniqueConstraint('payment_intent_id', name=op.f('uq_checkout_sessions_payment_intent_id'))
    )
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkout_sessions_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkout_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('local_payments',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('refunded_pence', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('requires_capture', 'succeeded', 'canceled')", name=op.f('ck_local_payments_status_known')),
    sa.ForeignKeyConstraint(['checkout_session_id'], ['checkout_sessions.id'], name=op.f('fk_local_payments_checkout_session_id_checkout_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_local_payments')),
    sa.UniqueConstraint('checkout_session_id', name=op.f('uq_local_payments_checkout_session_id'))
    )



def downgrade():

    op.drop_table('local_payments')
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkout_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_checkout_sessions_event_id'))

    op.drop_table('checkout_sessions')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_time')

    op.drop_table('audit_entries')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('uq_ticket_live_user', sqlite_where=sa.text("status IN ('valid', 'used')"), postgresql_where=sa.text("status IN ('valid', 'used')"))
        batch_op.drop_index('ix_tickets_user')
        batch_op.drop_index('ix_tickets_event_status')

    op.drop_table('tickets')
    with op.batch_alter_table('waiting_list_entries', schema=None) as batch_op:
        batch_op.drop_index('uq_entry_active_user', sqlite_where=sa.text("status IN ('waiting', 'offered')"), postgresql_where=sa.text("status IN ('waiting', 'offered')"))
        batch_op.drop_index('ix_entry_waiting_seq', sqlite_where=sa.text("status = 'waiting'"), postgresql_where=sa.text("status = 'waiting'"))
        batch_op.drop_index('ix_entry_user_event')
        batch_op.drop_index('ix_entry_offer_expiry', sqlite_where=sa.text("status = 'offered'"), postgresql_where=sa.text("status = 'offered'"))
        batch_op.drop_index('ix_entry_offer_ended', sqlite_where=sa.text('offered_at IS NOT NULL'), postgresql_where=sa.text('offered_at IS NOT NULL'))
        batch_op.drop_index('ix_entry_active_seq', sqlite_where=sa.text("status IN ('waiting', 'offered')"), postgresql_where=sa.text("status IN ('waiting', 'offered')"))

    op.drop_table('waiting_list_entries')
    op.drop_table('queue_departures')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_starts_at')
        batch_op.drop_index(batch_op.f('ix_events_organizer_id'))

    op.drop_table('events')
    op.drop_table('webhook_events')
    op.drop_table('users')

