"""Issued restock plans and their planned visits (the forecast's next-visit deadlines).

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add restock_plan and planned_visit."""
    op.create_table(
        "restock_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shift_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shift_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "planned_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("van", sa.Integer(), nullable=False),
        sa.Column("stop_order", sa.Integer(), nullable=False),
        sa.Column("arrival", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["restock_plan.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_planned_visit_plan_id", "planned_visit", ["plan_id"])
    op.create_index("ix_planned_visit_machine_arrival", "planned_visit",
                    ["machine_id", "arrival"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_planned_visit_machine_arrival", table_name="planned_visit")
    op.drop_index("ix_planned_visit_plan_id", table_name="planned_visit")
    op.drop_table("planned_visit")
    op.drop_table("restock_plan")
