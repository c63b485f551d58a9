"""Turn the broker's dropped-message reports into a delivery-gap alert in the database."""

from __future__ import annotations

from collections.abc import Callable

from backend.alerts.rules import AlertSpec
from backend.alerts.store import open_alert
from backend.config import Settings
from backend.db import make_engine, session_scope
from backend.models import AlertType
from backend.models.alerts import Severity
from backend.provisioning.broker_monitor import DropReport

BROKER_SUBJECT = "broker/queue-overflow"
"""One alert subject for the whole broker: a full queue is not one machine's fault."""


def drop_alert_spec(report: DropReport) -> AlertSpec:
    """Return the alert a drop report calls for (pure)."""
    restarted = " (counter since a broker restart)" if report.broker_restarted else ""
    return AlertSpec(
        type=AlertType.DELIVERY_GAP,
        severity=Severity.CRITICAL,
        subject=BROKER_SUBJECT,
        machine_id=None,
        message=(f"The broker dropped {report.new_drops} acknowledged messages "
                 f"({report.total} in total{restarted}): a client queue overflowed, most "
                 "likely during a backend outage longer than max_queued_messages covers. "
                 "The lost events show as per-machine delivery gaps."),
    )


def make_drop_alert_handler(settings: Settings) -> Callable[[DropReport], None]:
    """Return an ``on_drop`` callback that opens the alert (once, until resolved)."""
    engine = make_engine(settings.database_url,
                         dead_link_s=settings.database_dead_link_s)

    def on_drop(report: DropReport) -> None:
        with session_scope(engine) as session:
            open_alert(session, drop_alert_spec(report),
                       details={"new_drops": report.new_drops, "total": report.total,
                                "broker_restarted": report.broker_restarted})

    return on_drop
