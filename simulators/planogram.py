"""Send each simulated machine its planogram over MQTT, as an operator's backend would.

The agent learns what each slot holds only from a ``planogram`` command on
its ``cmd`` topic; until then its events name no product. The demo sends
them as the backend's MQTT user and waits for every ``cmd/result``.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_agent.wire.payloads import (
    CommandResult,
    PayloadError,
    PlanogramCommand,
    SlotConfig,
    parse_model,
)
from firmware_agent.wire.topics import Channel, machine_topic, parse_topic, subscription
from simulators.fleet_plan import MachineSpec

log = logging.getLogger(__name__)

RESULT_TIMEOUT_S = 30.0
"""How long to wait for every machine to answer its planogram."""
POLL_S = 0.1


class PlanogramError(RuntimeError):
    """The broker refused us, or machines did not answer in time."""


def planogram_command(spec: MachineSpec, command_id: str) -> PlanogramCommand:
    """Return the planogram command describing ``spec``'s slots."""
    return PlanogramCommand(
        command_id=command_id,
        slots=tuple(
            SlotConfig(
                slot=s.slot,
                product=s.product,
                capacity=s.capacity,
                par=s.par,
                low_threshold=s.low_threshold,
            )
            for s in spec.slots
        ),
    )


def push_planograms(
    specs: Sequence[MachineSpec],
    *,
    host: str,
    port: int,
    username: str,
    password: str,
    timeout_s: float = RESULT_TIMEOUT_S,
) -> dict[str, CommandResult]:
    """Send every machine its planogram; return each machine's result."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        events.put(("connack", reason))

    def on_subscribe(client: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        events.put(("suback", reasons))

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        events.put(("message", (msg.topic, bytes(msg.payload))))

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="nx-sim-planograms"
    )
    client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port)
    client.loop_start()
    try:
        _expect(events, "connack", timeout_s)
        client.subscribe(subscription(Channel.CMD_RESULT), qos=1)
        _expect(events, "suback", timeout_s)
        wanted = {f"planogram-{spec.machine_id}": spec.machine_id for spec in specs}
        for command_id, machine_id in wanted.items():
            spec = next(s for s in specs if s.machine_id == machine_id)
            info = client.publish(
                machine_topic(machine_id, Channel.CMD),
                planogram_command(spec, command_id).to_bytes(),
                qos=1,
            )
            # One at a time: a fleet's worth is small, and paho's queue stays bounded.
            info.wait_for_publish(timeout_s)
        return _collect(events, wanted, timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()


def _expect(events: queue.Queue[tuple[str, Any]], kind: str, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got, value = events.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if got == kind:
            if kind == "connack" and value.is_failure:
                raise PlanogramError(f"the broker refused the planogram sender: {value}")
            return value
    raise PlanogramError(f"no {kind} from the broker within {timeout_s:.0f}s")


def _collect(
    events: queue.Queue[tuple[str, Any]], wanted: dict[str, str], timeout_s: float
) -> dict[str, CommandResult]:
    results: dict[str, CommandResult] = {}
    deadline = time.monotonic() + timeout_s
    while len(results) < len(wanted) and time.monotonic() < deadline:
        try:
            kind, value = events.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if kind != "message":
            continue
        topic, raw = value
        try:
            machine_id, _ = parse_topic(topic)
            result = parse_model(CommandResult, raw)
        except (PayloadError, ValueError) as exc:
            log.warning("ignoring a bad command result on %s: %s", topic, exc)
            continue
        if wanted.get(result.command_id) == machine_id:
            results[machine_id] = result
            if not result.ok:
                log.warning("%s took its planogram with errors: %s", machine_id, result.error)
    missing = sorted(set(wanted.values()) - set(results))
    if missing:
        raise PlanogramError(f"no planogram result from {', '.join(missing)}")
    return results
