"""Remember which door and temperature events a machine's state comes from.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Two ingest workers can commit a machine's door "open" after its "closed"; the
# event keys let the later-committed, older event change nothing.
COLUMNS = ("door_event_boot_id", "door_event_seq", "temperature_event_boot_id",
           "temperature_event_seq")


def upgrade() -> None:
    """Add the event key columns."""
    with op.batch_alter_table("machine") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("machine") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
