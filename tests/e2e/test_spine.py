"""One dispense travels from a virtual controller to the API, with every part real.

Virtual controller on a pty -> the agent (pyserial, durable outbox) -> a real
Mosquitto from broker_config/ -> the ingest worker -> SQLite -> the FastAPI
app over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from backend import crud
from backend.app import create_app
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.ingest.worker import IngestWorker
from firmware_agent.agent import Agent
from firmware_agent.config import AgentSettings
from firmware_agent.nxlink.link import LinkTiming
from simulators.broker import MosquittoBroker
from simulators.virtual_controller import VirtualController
from tests.backend.conftest import bearer, make_token
from tests.conftest import BACKEND_PASSWORD, TEST_MACHINES
from tests.http_server import serve_http
from tests.waiting import wait_until

MACHINE = "test-001"
NALOXONE = "naloxone-nasal-4mg"
LOW_THRESHOLD = 2
FAST_LINK = LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3)


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        crud.register_machine(
            session=session, machine_id=MACHINE, name="Kensington & Allegheny", actor="test",
            lat=39.9968, lon=-75.1134,
            slots=[{"slot": 1, "product": NALOXONE, "capacity": 10, "count": 4,
                    "low_threshold": LOW_THRESHOLD}],
        )
    engine.dispose()
    return url


@pytest.fixture
def api(mosquitto: MosquittoBroker, database: str) -> Iterator[httpx.Client]:
    settings = Settings(environment="test", database_url=database, mqtt_host=mosquitto.host,
                        mqtt_port=mosquitto.port, mqtt_password=BACKEND_PASSWORD)
    worker = IngestWorker(settings)
    worker.start()
    try:
        assert worker.wait_subscribed(30), "ingest did not subscribe"
        with serve_http(create_app(settings)) as base_url, \
                httpx.Client(base_url=base_url, timeout=10,
                             headers=bearer(make_token(database, "outreach"))) as client:
            yield client
    finally:
        worker.stop()


@pytest.fixture
def machine(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[VirtualController]:
    controller = VirtualController({1: (NALOXONE, 4, 10)}, timing=FAST_LINK)
    controller.start()
    agent = Agent(AgentSettings(
        machine_id=MACHINE, serial_port=controller.port, mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port, mqtt_password=TEST_MACHINES[MACHINE],
        data_dir=tmp_path / "agent", read_timeout_s=0.05, link_ack_timeout_s=0.3,
        link_down_retry_s=0.3, reconnect_min_s=1, reconnect_max_s=2,
    ))
    agent.start()
    try:
        yield controller
    finally:
        agent.stop()
        controller.stop()


def _machine(api: httpx.Client) -> dict[str, Any]:
    response = api.get(f"/api/v1/machines/{MACHINE}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _slot_count(api: httpx.Client) -> int:
    slots = {s["slot"]: s for s in _machine(api)["slots"]}
    return int(slots[1]["count"])


def _low_stock_alerts(api: httpx.Client, status: str) -> list[dict[str, Any]]:
    response = api.get("/api/v1/alerts", params={"status": status, "type": "low_stock",
                                                 "machine_id": MACHINE})
    response.raise_for_status()
    return list(response.json()["data"])


def test_a_vend_reaches_the_api_and_opens_one_low_stock_alert(
    api: httpx.Client, machine: VirtualController
) -> None:
    wait_until(lambda: _machine(api)["status"] == "online", what="machine online in the API")
    machine.report_stock()  # the controller senses its slots and says so, as at power-up
    wait_until(lambda: machine.unacked == 0, what="stock report acknowledged")
    assert _slot_count(api) == 4

    machine.vend(1)
    wait_until(lambda: _slot_count(api) == 3, what="slot 1 down to 3")
    assert _low_stock_alerts(api, "open") == []

    machine.vend(1)  # 2 left: at the threshold
    wait_until(lambda: _slot_count(api) == 2, what="slot 1 down to 2")
    wait_until(lambda: len(_low_stock_alerts(api, "open")) == 1, what="a low-stock alert")

    machine.vend(1)  # further dispenses do not open more alerts
    wait_until(lambda: _slot_count(api) == 1, what="slot 1 down to 1")
    alerts = _low_stock_alerts(api, "open")
    assert len(alerts) == 1
    assert alerts[0]["machine_id"] == MACHINE
    assert _machine(api)["health"] == "low_stock"

    dispenses = [e for e in _machine(api)["recent_events"] if e.get("kind") == "vend"]
    assert len(dispenses) == 3

    machine.restock(1, 10)  # a restock above the threshold resolves the alert
    wait_until(lambda: _slot_count(api) == 10, what="slot 1 restocked")
    wait_until(lambda: _low_stock_alerts(api, "open") == [], what="alert resolved")
    assert len(_low_stock_alerts(api, "resolved")) == 1
