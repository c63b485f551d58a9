"""Lots loaded by visits, idempotent visits, temperature readings.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add lot and visit columns and the temperature_reading table."""
    with op.batch_alter_table("naloxone_lot") as batch:
        batch.add_column(sa.Column("visit_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("emptied_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("restock_visit") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("request_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
        batch.create_unique_constraint(
            "uq_restock_visit_idempotency", ["visited_by", "idempotency_key"]
        )
    op.create_table(
        "temperature_reading",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("celsius", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_temperature_reading_machine_at", "temperature_reading", ["machine_id", "at"]
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_temperature_reading_machine_at", table_name="temperature_reading")
    op.drop_table("temperature_reading")
    with op.batch_alter_table("restock_visit") as batch:
        batch.drop_constraint("uq_restock_visit_idempotency", type_="unique")
        batch.drop_column("details")
        batch.drop_column("request_digest")
        batch.drop_column("idempotency_key")
    with op.batch_alter_table("naloxone_lot") as batch:
        batch.drop_column("emptied_at")
        batch.drop_column("visit_id")
