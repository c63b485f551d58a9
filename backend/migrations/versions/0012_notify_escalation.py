"""Notification routes escalate and keep quiet hours.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the escalation and quiet-hours columns."""
    with op.batch_alter_table("notification_route") as batch:
        batch.add_column(sa.Column("escalate_after_min", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("escalate_to_route_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quiet_start", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("quiet_end", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("quiet_tz", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("notification_route") as batch:
        for name in ("quiet_tz", "quiet_end", "quiet_start", "escalate_to_route_id",
                     "escalate_after_min"):
            batch.drop_column(name)
