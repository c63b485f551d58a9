"""Initial schema: fleet, events, stock, alerts, dead letters

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "alert",
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acted_by", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_machine_id"), ["machine_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_alert_active",
            ["type", "subject"],
            unique=True,
            sqlite_where=sa.text("status <> 'resolved'"),
            postgresql_where=sa.text("status <> 'resolved'"),
        )

    op.create_table(
        "command_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("command_id", sa.String(length=64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("command_result", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_command_result_command_id"), ["command_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_command_result_machine_id"), ["machine_id"], unique=False
        )

    op.create_table(
        "dead_letter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dead_letter_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "delivery_gap",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("from_seq", sa.Integer(), nullable=False),
        sa.Column("to_seq", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("machine_id", "from_seq", name="uq_delivery_gap_start"),
    )
    with op.batch_alter_table("delivery_gap", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_gap_machine_id"), ["machine_id"], unique=False
        )

    op.create_table(
        "dispense_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("boot_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=48), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("drop_confirmed", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("machine_id", "boot_id", "seq", name="uq_dispense_key"),
    )
    with op.batch_alter_table("dispense_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dispense_event_device_time"), ["device_time"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dispense_event_machine_id"), ["machine_id"], unique=False
        )
        batch_op.create_index("ix_dispense_event_machine_seq", ["machine_id", "seq"], unique=False)

    op.create_table(
        "machine",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("site", sa.String(length=120), nullable=True),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_source", sa.String(length=16), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("boot_id", sa.Integer(), nullable=True),
        sa.Column("firmware", sa.String(length=64), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("door", sa.String(length=16), nullable=True),
        sa.Column("outbox_depth", sa.Integer(), nullable=True),
        sa.Column("stock_as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seq_watermark", sa.Integer(), nullable=True),
        sa.Column("max_seq", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "machine_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("boot_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("machine_id", "boot_id", "seq", name="uq_machine_event_key"),
    )
    with op.batch_alter_table("machine_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_machine_event_machine_id"), ["machine_id"], unique=False
        )
        batch_op.create_index("ix_machine_event_machine_seq", ["machine_id", "seq"], unique=False)

    op.create_table(
        "product",
        sa.Column("code", sa.String(length=48), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("is_naloxone", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "restock_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visited_by", sa.String(length=64), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("restock_visit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_restock_visit_machine_id"), ["machine_id"], unique=False
        )

    op.create_table(
        "stock_discrepancy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stock_discrepancy", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stock_discrepancy_machine_id"), ["machine_id"], unique=False
        )

    op.create_table(
        "stock_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("boot_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slots", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("machine_id", "boot_id", "revision", name="uq_stock_snapshot_key"),
    )
    with op.batch_alter_table("stock_snapshot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stock_snapshot_machine_id"), ["machine_id"], unique=False
        )

    op.create_table(
        "naloxone_lot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=48), nullable=False),
        sa.Column("lot_number", sa.String(length=40), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("machine_id", sa.String(length=63), nullable=True),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product"],
            ["product.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("naloxone_lot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_naloxone_lot_machine_id"), ["machine_id"], unique=False
        )

    op.create_table(
        "slot",
        sa.Column("product", sa.String(length=48), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("par", sa.Integer(), nullable=True),
        sa.Column("low_threshold", sa.Integer(), nullable=True),
        sa.Column("machine_id", sa.String(length=63), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["machine_id"], ["machine.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("machine_id", "slot"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("slot")
    with op.batch_alter_table("naloxone_lot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_naloxone_lot_machine_id"))

    op.drop_table("naloxone_lot")
    with op.batch_alter_table("stock_snapshot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_snapshot_machine_id"))

    op.drop_table("stock_snapshot")
    with op.batch_alter_table("stock_discrepancy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_discrepancy_machine_id"))

    op.drop_table("stock_discrepancy")
    with op.batch_alter_table("restock_visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_restock_visit_machine_id"))

    op.drop_table("restock_visit")
    op.drop_table("product")
    with op.batch_alter_table("machine_event", schema=None) as batch_op:
        batch_op.drop_index("ix_machine_event_machine_seq")
        batch_op.drop_index(batch_op.f("ix_machine_event_machine_id"))

    op.drop_table("machine_event")
    op.drop_table("machine")
    with op.batch_alter_table("dispense_event", schema=None) as batch_op:
        batch_op.drop_index("ix_dispense_event_machine_seq")
        batch_op.drop_index(batch_op.f("ix_dispense_event_machine_id"))
        batch_op.drop_index(batch_op.f("ix_dispense_event_device_time"))

    op.drop_table("dispense_event")
    with op.batch_alter_table("delivery_gap", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_gap_machine_id"))

    op.drop_table("delivery_gap")
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letter_received_at"))

    op.drop_table("dead_letter")
    with op.batch_alter_table("command_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_command_result_machine_id"))
        batch_op.drop_index(batch_op.f("ix_command_result_command_id"))

    op.drop_table("command_result")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alert_active",
            sqlite_where=sa.text("status <> 'resolved'"),
            postgresql_where=sa.text("status <> 'resolved'"),
        )
        batch_op.drop_index(batch_op.f("ix_alert_status"))
        batch_op.drop_index(batch_op.f("ix_alert_machine_id"))

    op.drop_table("alert")
