"""The admin side's sign-in, and one checkout session per idempotency key.

Revision 0005, after 0004. New tables: ``signin_attempts`` (sign-in attempts
counted per client, a keyed hash of its address) and ``admin_sessions``
(server-side admin sessions). On ``payments`` a unique index on
``idempotency_key``, so that simultaneous clicks settle on one checkout session.

A ledger written before this revision may hold several payments with one key
(simultaneous first clicks each opened a session). Every row is kept; in each
such group the first row (lowest id, the one the pay link has been reusing)
keeps the key and the others get it with ``~<id>`` appended, so the index can
be made and no session is lost.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)  # what schema.UTCDateTime stores
_DUPLICATES = sa.text(
    "SELECT p.id, p.idempotency_key FROM payments p WHERE p.idempotency_key IS NOT NULL AND EXISTS "
    "(SELECT 1 FROM payments q WHERE q.idempotency_key = p.idempotency_key AND q.id < p.id)")


def upgrade() -> None:
    bind = op.get_bind()
    for row_id, key in bind.execute(_DUPLICATES).all():
        bind.execute(sa.text("UPDATE payments SET idempotency_key = :key WHERE id = :id"),
                     {"key": f"{key[:240]}~{row_id}", "id": row_id})
    op.create_index("uq_payments_idempotency_key", "payments", ["idempotency_key"], unique=True)
    op.create_table(
        "signin_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", _TIME, nullable=False))
    op.create_index("ix_signin_attempts_client_at", "signin_attempts", ["client", "at"])
    op.create_index("ix_signin_attempts_at", "signin_attempts", ["at"])
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("token_mac", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_seen_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME))
    op.create_index("ix_admin_sessions_expires", "admin_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("admin_sessions")
    op.drop_table("signin_attempts")
    op.drop_index("uq_payments_idempotency_key", "payments")
