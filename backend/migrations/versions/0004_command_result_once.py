"""One result per command and machine.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The agent acknowledges a command only after handling it, so a command that
# arrives just before a crash is delivered (and answered) again: results are
# at-least-once. The first answer is the one that reflects the first execution.


def upgrade() -> None:
    """Keep each command's first result and refuse a second one."""
    op.execute(
        sa.text(
            "DELETE FROM command_result WHERE id NOT IN "
            "(SELECT min(id) FROM command_result GROUP BY machine_id, command_id)"
        )
    )
    with op.batch_alter_table("command_result") as batch:
        batch.create_unique_constraint("uq_command_result_key", ["machine_id", "command_id"])


def downgrade() -> None:
    """Allow several results per command again."""
    with op.batch_alter_table("command_result") as batch:
        batch.drop_constraint("uq_command_result_key", type_="unique")
