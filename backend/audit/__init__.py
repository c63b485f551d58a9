"""The audit trail: append a record in the writer's transaction, query it, export it."""

from backend.audit.record import cli_actor, record_audit, snapshot

__all__ = ["cli_actor", "record_audit", "snapshot"]
