"""Widen boot ids, sequence numbers and revisions to 64 bits.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A device counter that outgrows 32 bits must not turn into a database error
# that stalls ingest.
COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {
    "dispense_event": (("boot_id", False), ("seq", False)),
    "machine_event": (("boot_id", False), ("seq", False)),
    "stock_snapshot": (("boot_id", False), ("revision", False)),
    "delivery_gap": (("from_seq", False), ("to_seq", False)),
    "machine": (
        ("boot_id", True),
        ("outbox_depth", True),
        ("seq_watermark", True),
        ("max_seq", True),
    ),
}


def _alter(
    to_type: type[sa.types.TypeEngine[int]], from_type: type[sa.types.TypeEngine[int]]
) -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, nullable in columns:
                batch.alter_column(
                    name, type_=to_type(), existing_type=from_type(), existing_nullable=nullable
                )


def upgrade() -> None:
    """Make the columns BIGINT."""
    _alter(sa.BigInteger, sa.Integer)


def downgrade() -> None:
    """Make the columns INTEGER again."""
    _alter(sa.Integer, sa.BigInteger)
