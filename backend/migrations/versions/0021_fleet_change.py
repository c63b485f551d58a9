"""The fleet change log and the triggers that fill it (backend/models/changes.py).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MACHINE_COLUMNS = ("name", "lat", "lon", "site", "area", "active", "status", "last_seen",
                   "firmware", "tags")
"""The machine columns the fleet snapshot shows: writes to others (max_seq,
outbox_depth, door...) are not changes to it and would only make the log grow."""

# (table, machine id column, extra WHEN condition): alerts of areas have no machine.
WATCHED = (("machine", "id", None), ("slot", "machine_id", None),
           ("alert", "machine_id", "machine_id IS NOT NULL"))


# Every name put into the SQL below is one of the constants above, never input.


def _sqlite_triggers() -> None:
    for table, column, only in WATCHED:
        for op_name, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            event = op_name
            if table == "machine" and op_name == "UPDATE":
                event = f"UPDATE OF {', '.join(MACHINE_COLUMNS)}"
            when = f" WHEN {row}.{only}" if only else ""
            op.execute(
                f"CREATE TRIGGER fleet_change_{table}_{op_name.lower()} AFTER {event} ON {table}"  # noqa: S608
                f"{when} BEGIN INSERT INTO fleet_change (machine_id) VALUES ({row}.{column}); END"
            )
            if table != "machine" and op_name == "UPDATE":
                # A row moved to another machine changes the old one's snapshot too.
                op.execute(
                    f"CREATE TRIGGER fleet_change_{table}_move AFTER UPDATE OF {column} ON {table}"  # noqa: S608
                    f" WHEN OLD.{column} IS NOT NULL AND OLD.{column} IS NOT NEW.{column}"
                    f" BEGIN INSERT INTO fleet_change (machine_id) VALUES (OLD.{column}); END"
                )


def _postgres_triggers() -> None:
    for table, column, _only in WATCHED:
        # The transaction id, not a sequence: several writers commit in any order,
        # and a reader compares it with its snapshots (backend/api/snapshot.py).
        op.execute(f"""
            CREATE FUNCTION fleet_change_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'INSERT' AND OLD.{column} IS NOT NULL THEN
                    INSERT INTO fleet_change (machine_id, txid)
                    VALUES (OLD.{column}, pg_current_xact_id()::text::bigint);
                END IF;
                IF TG_OP <> 'DELETE' AND NEW.{column} IS NOT NULL
                        AND (TG_OP = 'INSERT' OR NEW.{column} IS DISTINCT FROM OLD.{column}) THEN
                    INSERT INTO fleet_change (machine_id, txid)
                    VALUES (NEW.{column}, pg_current_xact_id()::text::bigint);
                END IF;
                RETURN NULL;
            END $$""")  # noqa: S608
        events = "INSERT OR DELETE OR UPDATE"
        if table == "machine":
            events = f"INSERT OR DELETE OR UPDATE OF {', '.join(MACHINE_COLUMNS)}"
        op.execute(f"CREATE TRIGGER fleet_change_{table} AFTER {events} ON {table}"
                   f" FOR EACH ROW EXECUTE FUNCTION fleet_change_{table}()")


def upgrade() -> None:
    """Create fleet_change and its triggers on machine, slot and alert."""
    op.create_table(
        "fleet_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_fleet_change_txid", "fleet_change", ["txid"])
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    """Drop the triggers and the table."""
    if op.get_bind().dialect.name == "postgresql":
        for table, _column, _only in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS fleet_change_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS fleet_change_{table}()")
    else:
        for table, _column, _only in WATCHED:
            for name in ("insert", "update", "delete", "move"):
                op.execute(f"DROP TRIGGER IF EXISTS fleet_change_{table}_{name}")
    op.drop_index("ix_fleet_change_txid", table_name="fleet_change")
    op.drop_table("fleet_change")
