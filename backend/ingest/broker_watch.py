"""The broker-watch role: one ingest worker at a time reads the broker's dropped-message counter.

Mosquitto drops a message for a client whose queue is full (``max_queued_messages``
or ``max_queued_bytes``: ingest's session during a long backend outage, or a
fleet that outruns the workers) after it has already acknowledged it to the
machine, which then forgets it. The broker only logs a NOTICE and counts the
drop in ``$SYS/broker/publish/messages/dropped`` (src/database.c,
``db__message_insert``, Mosquitto 2.0), so before this role nothing running
in production noticed: ``nx-backend device watch-broker`` existed, but no unit
ran it. The worker holding the role runs a ``BrokerMonitor``; each increase
is logged at WARNING, added to ``nx_ingest_broker_dropped_messages_total``
and opens the broker's critical delivery-gap alert (once until resolved).
"""

from __future__ import annotations

import logging

from prometheus_client import Counter
from sqlalchemy import Engine

from backend.alerts.store import open_alert
from backend.config import Settings
from backend.db import session_scope
from backend.provisioning.broker_monitor import BrokerMonitor, DropReport
from backend.provisioning.drop_alert import drop_alert_spec

log = logging.getLogger(__name__)


class BrokerWatch:
    """``take``/``drop`` of the role: a fresh monitor each time the role is won."""

    def __init__(self, settings: Settings, worker_index: int, engine: Engine,
                 dropped: Counter) -> None:
        self._settings = settings
        self._client_id = f"{settings.ingest_client_id_prefix}-{worker_index}-broker-watch"
        self._engine = engine
        self._dropped = dropped
        self.monitor: BrokerMonitor | None = None

    def take(self) -> None:
        """Start watching (the monitor connects in the background)."""
        settings = self._settings
        ca_file = settings.mqtt_tls_ca_file
        self.monitor = BrokerMonitor(
            host=settings.mqtt_host, port=settings.mqtt_port, username=settings.mqtt_username,
            password=settings.mqtt_password.get_secret_value(), on_drop=self.on_drop,
            client_id=self._client_id, ca_file=str(ca_file) if ca_file else None,
            # Ingest's keepalive, so that this connection notices a dead link as soon as the others.
            keepalive_s=settings.mqtt_keepalive_s)
        self.monitor.start()
        log.info("%s watching the broker's dropped-message counter", self._client_id)

    def drop(self) -> None:
        """Stop watching (another worker takes the role)."""
        monitor, self.monitor = self.monitor, None
        if monitor is not None:
            monitor.stop()

    def on_drop(self, report: DropReport) -> None:
        """Count the drops and open the alert (on the monitor's thread, never paho's)."""
        self._dropped.inc(report.new_drops)
        with session_scope(self._engine) as session:
            open_alert(session, drop_alert_spec(report),
                       details={"new_drops": report.new_drops, "total": report.total,
                                "broker_restarted": report.broker_restarted})
