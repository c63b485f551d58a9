"""``nx-backend ingest`` and ``nx-backend serve`` as processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlmodel import Session

from simulators.broker import MosquittoBroker, free_port
from tests.backend.conftest import bearer, make_token, register
from tests.backend.helpers import WAIT_S, events_topic, machine_publisher, vend, wait_until
from tests.backend.procs import REPO
from tests.conftest import BACKEND_PASSWORD

ALERT_LATENCY_TARGET_S = 1.0
"""DESIGN: a dispense that empties a slot shows as an alert in the API within a second."""


def _env(url: str, broker: MosquittoBroker | None = None) -> dict[str, str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url,
           "NX_MQTT_PASSWORD": BACKEND_PASSWORD}
    if broker is not None:
        env.update({"NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port)})
    return env


def _backend(*args: str) -> list[str]:
    return [sys.executable, "-c", "from backend.cli import main; main()", *args]


def test_ingest_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    done = subprocess.run(_backend("ingest"), cwd=REPO, env=_env(url), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "run `nx-backend migrate` first" in done.stderr


def test_serve_with_ingest_shows_an_empty_slot_alert(
    migrated_url: str, session: Session, mosquitto: MosquittoBroker
) -> None:
    register(session, "test-001", count=1, threshold=0)
    port = free_port()
    server = subprocess.Popen(_backend("serve", "--port", str(port)), cwd=REPO,
                              env=_env(migrated_url, mosquitto), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5,
                          headers=bearer(make_token(migrated_url, "admin"))) as http:
            def up() -> bool:
                try:
                    return http.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return server.poll() is not None
            wait_until(up, what="the API")
            assert server.poll() is None
            publisher = machine_publisher(mosquitto, "test-001")
            try:
                # serve answers only once ingest is subscribed, so nothing is lost here.
                sent = time.monotonic()
                publisher.publish_all([(events_topic("test-001"), vend("test-001", 1).to_bytes())])
                seen: list[float] = []

                def alert_visible() -> bool:
                    body = http.get("/api/v1/alerts", params={"type": "empty_slot"}).json()
                    if body["count"]:
                        seen.append(time.monotonic() - sent)
                    return bool(body["count"])

                wait_until(alert_visible, timeout=WAIT_S, what="the empty-slot alert")
            finally:
                publisher.close()
            print(f"dispense -> alert visible in the API: {seen[0] * 1000:.0f} ms "
                  f"(target {ALERT_LATENCY_TARGET_S * 1000:.0f} ms)")
            machine = http.get("/api/v1/machines/test-001").json()
            assert machine["health"] == "empty"
            assert machine["slots"][0]["count"] == 0
            assert "nx_ingest_messages_committed_total 1.0" in http.get("/metrics").text
    finally:
        server.terminate()
        _, err = server.communicate(timeout=WAIT_S)
    assert " ERROR " not in err, err
