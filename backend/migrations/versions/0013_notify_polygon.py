"""Notification routes may be limited to a GeoJSON polygon.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add notification_route.polygon."""
    with op.batch_alter_table("notification_route") as batch:
        batch.add_column(sa.Column("polygon", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("notification_route") as batch:
        batch.drop_column("polygon")
