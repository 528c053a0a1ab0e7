"""What the payment service needs: a recipient's plan and days past due, a session's expiry and idempotency key.

Revision 0002, after 0001; a database from before Alembic at schema version 2
is taken over as this revision. ``recipients.plan_installments`` and
``recipients.days_past_due`` come from the record's debt; ``payments.expires_at``
and ``payments.idempotency_key`` are the checkout session's as created (a second
click reuses the open session with the very same parameters). All are nullable:
rows already there keep their values and have none of these.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (("recipients", "plan_installments", sa.Integer), ("recipients", "days_past_due", sa.Integer),
            ("payments", "expires_at", sa.DateTime(timezone=True)), ("payments", "idempotency_key", sa.String(255)))


def upgrade() -> None:
    for table, name, kind in _COLUMNS:
        op.add_column(table, sa.Column(name, kind))


def downgrade() -> None:
    for table, name, _kind in reversed(_COLUMNS):
        op.drop_column(table, name)
