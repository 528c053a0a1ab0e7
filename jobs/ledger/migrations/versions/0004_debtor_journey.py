"""The debtor's journey: opt-outs, disputes, what a run held back, installment plans.

Revision 0004, after 0003; a database from before Alembic at schema version 4
is taken over as this revision. On ``recipients`` the plan's first due date and
the page's locale (nullable), and an index on (customer_id, published_at) for
the weekly message cap across campaigns; on ``payments`` the installment number
(nullable). New tables: ``suppressions`` (the opt-out list), ``disputes``,
``withheld`` (recipients a run did not contact), ``plans`` and their
``installments``. Rows already there keep their values.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)  # what schema.UTCDateTime stores
_COLUMNS = (("recipients", "plan_first_due", sa.Date()), ("recipients", "locale", sa.String(35)),
            ("payments", "installment", sa.Integer()))


def upgrade() -> None:
    for table, name, kind in _COLUMNS:
        op.add_column(table, sa.Column(name, kind))
    op.create_index("ix_recipients_customer", "recipients", ["customer_id", "published_at"])
    op.create_table(
        "suppressions",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("campaign_id", sa.String(200)),
        sa.Column("created_at", _TIME, nullable=False))
    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("details", sa.String(500)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("opened_at", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME))
    op.create_index("ix_disputes_customer_status", "disputes", ["customer_id", "status"])
    op.create_index("ix_disputes_campaign_status", "disputes", ["campaign_id", "status"])
    op.create_table(
        "withheld",
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("storyboard", sa.String(200), nullable=False),
        sa.Column("variant", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("send_after", _TIME),
        sa.Column("at", _TIME, nullable=False))
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(200), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_customer", sa.String(255)),
        sa.Column("payment_method", sa.String(255)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("installment_count", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.UniqueConstraint("token", name="uq_plans_token"))
    op.create_index("ix_plans_campaign_status", "plans", ["campaign_id", "status"])
    op.create_table(
        "installments",
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("amount", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("payment_intent", sa.String(255)),
        sa.Column("claimed_at", _TIME),
        sa.Column("paid_at", _TIME),
        sa.Column("error_code", sa.String(64)),
        sa.Column("updated_at", _TIME, nullable=False))
    op.create_index("ix_installments_status_due", "installments", ["status", "due_date"])


def downgrade() -> None:
    for table in ("installments", "plans", "withheld", "disputes", "suppressions"):
        op.drop_table(table)
    op.drop_index("ix_recipients_customer", "recipients")
    for table, name, _kind in reversed(_COLUMNS):
        op.drop_column(table, name)
