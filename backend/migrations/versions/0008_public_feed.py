"""What the public locator feed shows of a machine: public id and name, opening hours, in service.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# No machine is published by this migration: public_name stays empty until an
# admin sets it (`nx-backend public set`), so nothing becomes public by upgrading.


def upgrade() -> None:
    """Add the public columns; every existing machine stays in service and unlisted."""
    with op.batch_alter_table("machine") as batch:
        batch.add_column(sa.Column("public_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("public_name", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("opening_hours", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("in_service", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.create_unique_constraint("uq_machine_public_id", ["public_id"])


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("machine") as batch:
        batch.drop_constraint("uq_machine_public_id", type_="unique")
        batch.drop_column("in_service")
        batch.drop_column("opening_hours")
        batch.drop_column("public_name")
        batch.drop_column("public_id")
