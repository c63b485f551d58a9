"""API tokens, machines' named areas, and who acknowledged / who resolved an alert.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_TOKEN_WHERE = "revoked_at IS NULL"  # noqa: S105 - SQL


def upgrade() -> None:
    """Add api_token, machine.area, alert.acknowledged_by/resolved_by (from acted_by)."""
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_api_token_live_name",
        "api_token",
        ["name"],
        unique=True,
        sqlite_where=sa.text(LIVE_TOKEN_WHERE),
        postgresql_where=sa.text(LIVE_TOKEN_WHERE),
    )
    # Plain ALTERs (SQLite >= 3.35 drops columns itself): a batch copy of machine
    # would cascade into its slots, one of alert would lose its partial index.
    op.add_column("machine", sa.Column("area", sa.String(length=64), nullable=True))
    op.create_index("ix_machine_area", "machine", ["area"])
    op.add_column("alert", sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
    op.add_column("alert", sa.Column("resolved_by", sa.String(length=64), nullable=True))
    # acted_by held whoever acted last: the resolver of a resolved alert, else
    # the acknowledger.
    op.execute("UPDATE alert SET resolved_by = acted_by WHERE status = 'resolved'")
    op.execute("UPDATE alert SET acknowledged_by = acted_by WHERE status = 'acknowledged'")
    op.drop_column("alert", "acted_by")


def downgrade() -> None:
    """Fold the two actors back into acted_by; drop machine.area and api_token."""
    op.add_column("alert", sa.Column("acted_by", sa.String(length=64), nullable=True))
    op.execute("UPDATE alert SET acted_by = COALESCE(resolved_by, acknowledged_by)")
    op.drop_column("alert", "resolved_by")
    op.drop_column("alert", "acknowledged_by")
    op.drop_index("ix_machine_area", table_name="machine")
    op.drop_column("machine", "area")
    op.drop_index("uq_api_token_live_name", table_name="api_token")
    op.drop_table("api_token")
