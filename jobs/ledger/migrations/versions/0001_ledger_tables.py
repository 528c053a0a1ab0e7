"""The ledger's tables: campaigns, recipients, payments, webhook events, events.

Revision 0001, the first; a database from before Alembic at schema version 1
is taken over as this revision. The tables are spelled out rather than taken
from ``schema``, so that this revision keeps making what it always made.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)  # what schema.UTCDateTime stores


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("link_days", sa.Integer, nullable=False),
        sa.Column("config_hash", sa.String(128)))
    op.create_table(
        "recipients",
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("storyboard", sa.String(200), nullable=False),
        sa.Column("variant", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_due", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("content_hash", sa.String(128)),
        sa.Column("published_at", _TIME),
        sa.Column("expires_at", _TIME),
        sa.Column("paid_at", _TIME),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.UniqueConstraint("token", name="uq_recipients_token"))
    op.create_index("ix_recipients_campaign_status", "recipients", ["campaign_id", "status"])
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_ref", sa.String(255), nullable=False),
        sa.Column("payment_intent", sa.String(255)),
        sa.Column("amount", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("option", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("flag_reason", sa.String(500)),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.UniqueConstraint("provider_ref", name="uq_payments_provider_ref"))
    op.create_index("ix_payments_campaign", "payments", ["campaign_id"])
    op.create_index("ix_payments_token", "payments", ["token"])
    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("received_at", _TIME, nullable=False))
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Integer),
        sa.Column("at", _TIME, nullable=False))
    op.create_index("ix_events_campaign_kind", "events", ["campaign_id", "kind"])
    op.create_index("ix_events_token", "events", ["token"])


def downgrade() -> None:
    for table in ("events", "webhook_events", "payments", "recipients", "campaigns"):
        op.drop_table(table)
