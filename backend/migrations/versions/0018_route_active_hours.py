"""Notification routes may be limited to times of day (time-of-day routing).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add notification_route.active_from, active_until and active_days."""
    with op.batch_alter_table("notification_route") as batch:
        batch.add_column(sa.Column("active_from", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("active_until", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("active_days", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("notification_route") as batch:
        batch.drop_column("active_days")
        batch.drop_column("active_until")
        batch.drop_column("active_from")
