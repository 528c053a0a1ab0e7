"""Beacons counted once: a view, a play and each progress mark once per page link and visitor, and per session.

Revision 0006. On ``events`` three nullable columns: ``once`` (what the event
counts once: ``view``, ``play``, ``progress:25``...; NULL for a click),
``visitor`` (the service's daily keyed hash of the client's address and
User-Agent) and ``session`` (the page's random id for one tab); and two unique
indexes, (token, once, visitor) and (token, once, session), that the beacon's
``INSERT ... ON CONFLICT DO NOTHING`` leans on. Rows already there keep their
values and get NULL in all three: a NULL is never equal to another, so events
recorded before this revision, duplicates included, never stop the upgrade (and
are counted as they always were).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (("once", 16), ("visitor", 16), ("session", 22))


def upgrade() -> None:
    for name, length in _COLUMNS:
        op.add_column("events", sa.Column(name, sa.String(length)))
    op.create_index("uq_events_once_visitor", "events", ["token", "once", "visitor"], unique=True)
    op.create_index("uq_events_once_session", "events", ["token", "once", "session"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_events_once_session", "events")
    op.drop_index("uq_events_once_visitor", "events")
    for name, _length in reversed(_COLUMNS):
        op.drop_column("events", name)
