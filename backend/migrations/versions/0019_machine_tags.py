"""Machines get tags; notification routes may select machines by tag.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add machine.tags and notification_route.machine_tags."""
    with op.batch_alter_table("machine") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))
    with op.batch_alter_table("notification_route") as batch:
        batch.add_column(sa.Column("machine_tags", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("notification_route") as batch:
        batch.drop_column("machine_tags")
    with op.batch_alter_table("machine") as batch:
        batch.drop_column("tags")
