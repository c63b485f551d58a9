"""A dead letter once per message: a digest of topic and payload, unique.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A batch retried after the database dropped mid-way, or a message the broker
# delivered again after a worker crash, used to leave a second dead letter.
# The digest must match backend.ingest.dead_letters.dead_letter_digest; it is
# spelled out here because a migration must not change when the code does.
BATCH = 1000


def _digest(topic: str, payload: bytes) -> str:
    return hashlib.sha256(topic.encode("utf-8", "surrogatepass") + b"\0" + payload).hexdigest()


def upgrade() -> None:
    """Add the digest, fill it, keep each message's first dead letter, make it unique."""
    with op.batch_alter_table("dead_letter") as batch:
        batch.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
    connection = op.get_bind()
    letters = sa.table("dead_letter", sa.column("id", sa.Integer), sa.column("topic", sa.String),
                       sa.column("payload", sa.LargeBinary), sa.column("digest", sa.String))
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(letters.c.id, letters.c.topic, letters.c.payload)
            .where(letters.c.id > last_id).order_by(letters.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            letters.update().where(letters.c.id == sa.bindparam("row_id"))
            .values(digest=sa.bindparam("row_digest")),
            [{"row_id": r.id, "row_digest": _digest(r.topic, bytes(r.payload))} for r in rows],
        )
        last_id = rows[-1].id
    op.execute(sa.text(
        "DELETE FROM dead_letter WHERE id NOT IN "
        "(SELECT min(id) FROM dead_letter GROUP BY digest)"))
    with op.batch_alter_table("dead_letter") as batch:
        batch.alter_column("digest", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint("uq_dead_letter_digest", ["digest"])


def downgrade() -> None:
    """Drop the digest (the duplicates removed on upgrade stay removed)."""
    with op.batch_alter_table("dead_letter") as batch:
        batch.drop_constraint("uq_dead_letter_digest", type_="unique")
        batch.drop_column("digest")
