"""An ingest worker whose session is taken over says so at ERROR, and names a loop."""

from __future__ import annotations

import logging

import pytest

from backend.ingest import IngestWorker
from backend.ingest.takeover import (
    KEEPALIVE_TIMEOUT,
    SESSION_TAKEN_OVER,
    DropWatch,
    describe_disconnect,
)
from simulators.broker import MosquittoBroker
from tests.backend.conftest import ingest_settings
from tests.backend.helpers import WAIT_S
from tests.broker.helpers import Probe
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER
from tests.waiting import wait_until

LOGGER = "backend.ingest.mqtt"


def _errors(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == LOGGER and r.levelno >= logging.ERROR and text in r.getMessage()]


def test_takeover_is_an_error_and_three_drops_in_a_minute_a_loop() -> None:
    watch = DropWatch()
    level, fmt, _ = describe_disconnect("nx-ingest-0", SESSION_TAKEN_OVER, stopping=False,
                                        watch=watch, now=0.0)
    assert level == logging.ERROR
    assert "taken over" in fmt
    # Mosquitto 2.0.11 closes the older connection without a reason (128 in paho).
    level, _, _ = describe_disconnect("nx-ingest-0", 128, stopping=False, watch=watch, now=10.0)
    assert level == logging.WARNING
    level, fmt, args = describe_disconnect("nx-ingest-0", 128, stopping=False,
                                           watch=watch, now=20.0)
    assert level == logging.ERROR
    assert "reconnect loop" in fmt % args
    assert args[1] == 3
    # Outside the window the count starts again; a deliberate stop is never counted.
    level, _, _ = describe_disconnect("nx-ingest-0", 128, stopping=False, watch=watch, now=500.0)
    assert level == logging.WARNING
    level, _, _ = describe_disconnect("nx-ingest-0", 128, stopping=True, watch=watch, now=501.0)
    assert level == logging.INFO


def test_keepalive_timeouts_are_a_dead_link_not_a_loop() -> None:
    # A partition or a half-open link: paho gives up on its own, again and again
    # while it lasts (tests/faults); no other client is involved.
    watch = DropWatch()
    for now in (0.0, 10.0, 20.0, 30.0):
        level, fmt, _ = describe_disconnect("nx-ingest-0", KEEPALIVE_TIMEOUT, stopping=False,
                                            watch=watch, now=now)
        assert level == logging.WARNING
        assert "keepalive" in fmt
    level, _, _ = describe_disconnect("nx-ingest-0", 128, stopping=False, watch=watch, now=40.0)
    assert level == logging.WARNING  # the first drop that counts


@pytest.mark.allow_logged_errors
def test_a_second_client_with_the_worker_id_is_logged_as_a_takeover_loop(
    migrated_url: str, mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    worker = IngestWorker(ingest_settings(migrated_url, mosquitto))
    worker.start()
    intruder = Probe(mosquitto.host, mosquitto.port, BACKEND_USER, BACKEND_PASSWORD,
                     client_id="nx-ingest-0")
    try:
        assert worker.wait_subscribed(WAIT_S)
        # paho reconnects both sides on its own, as a misconfigured second worker would.
        assert not intruder.connect().is_failure
        wait_until(lambda: bool(_errors(caplog, "reconnect loop")),
                   what="the takeover loop named at ERROR")
    finally:
        intruder.close()
        worker.stop()
