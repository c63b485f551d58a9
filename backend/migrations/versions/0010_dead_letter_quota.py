"""Dead letters know their machine (for the per-machine quota); drops are counted.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
# Spelled out rather than imported: a migration must not change when the code does.
PREFIX = "nx/v1/machines/"
NO_MACHINE = "?"


def _machine(topic: str) -> str:
    if not topic.startswith(PREFIX):
        return NO_MACHINE
    return topic[len(PREFIX):].partition("/")[0][:63] or NO_MACHINE


def upgrade() -> None:
    """Add dead_letter.machine_id (filled from the topic) and the dead_letter_drops table."""
    with op.batch_alter_table("dead_letter") as batch:
        batch.add_column(sa.Column("machine_id", sa.String(length=63), nullable=True))
        batch.add_column(sa.Column("malformed", sa.Boolean(), nullable=True))
        batch.create_index("ix_dead_letter_machine_received", ["machine_id", "received_at"])
    connection = op.get_bind()
    letters = sa.table("dead_letter", sa.column("id", sa.Integer), sa.column("topic", sa.String),
                       sa.column("machine_id", sa.String))
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(letters.c.id, letters.c.topic)
            .where(letters.c.id > last_id).order_by(letters.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            letters.update().where(letters.c.id == sa.bindparam("row_id"))
            .values(machine_id=sa.bindparam("row_machine")),
            [{"row_id": r.id, "row_machine": _machine(r.topic)} for r in rows],
        )
        last_id = rows[-1].id
    # Valid events of a machine that was not registered yet are the only letters
    # that are not malformed (backend.ingest.store says "unknown machine").
    op.execute(sa.text(
        "UPDATE dead_letter SET malformed = (reason NOT LIKE 'unknown machine%')"))
    with op.batch_alter_table("dead_letter") as batch:
        batch.alter_column("malformed", existing_type=sa.Boolean(), nullable=False)
    op.create_table(
        "dead_letter_drops",
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("dropped_bytes", sa.BigInteger(), nullable=False),
        sa.Column("first_dropped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_dropped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("machine_id"),
    )


def downgrade() -> None:
    """Drop the table and the column (the counts are lost)."""
    op.drop_table("dead_letter_drops")
    with op.batch_alter_table("dead_letter") as batch:
        batch.drop_index("ix_dead_letter_machine_received")
        batch.drop_column("malformed")
        batch.drop_column("machine_id")
