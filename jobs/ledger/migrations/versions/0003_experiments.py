"""Experiments: each customer's allocation, each wave's shares per segment, payments imported from the books.

Revision 0003, after 0002; a database from before Alembic at schema version 3
is taken over as this revision. ``allocations`` holds one row per customer an
experiment covers (wave, segment, arm or NULL for the holdout, propensity);
``experiment_shares`` a wave's shares per segment, computed once and reused by
every re-run; ``experiment_outcomes`` payments from the creditor's own books,
imported once each by their reference, to measure every group alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)  # what schema.UTCDateTime stores


def upgrade() -> None:
    op.create_table(
        "allocations",
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("segment", sa.String(300), nullable=False),
        sa.Column("arm", sa.String(32)),
        sa.Column("propensity", sa.Float, nullable=False),
        sa.Column("allocated_at", _TIME, nullable=False))
    op.create_index("ix_allocations_campaign_segment_wave", "allocations", ["campaign_id", "segment", "wave"])
    op.create_table(
        "experiment_shares",
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), primary_key=True),
        sa.Column("wave", sa.Integer, primary_key=True),
        sa.Column("segment", sa.String(300), primary_key=True),
        sa.Column("shares", sa.String(2000), nullable=False),
        sa.Column("computed_at", _TIME, nullable=False))
    op.create_table(
        "experiment_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("paid_at", _TIME, nullable=False),
        sa.Column("amount", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.UniqueConstraint("campaign_id", "reference", name="uq_experiment_outcomes_reference"))
    op.create_index("ix_experiment_outcomes_customer", "experiment_outcomes", ["campaign_id", "customer_id"])


def downgrade() -> None:
    for table in ("experiment_outcomes", "experiment_shares", "allocations"):
        op.drop_table(table)
