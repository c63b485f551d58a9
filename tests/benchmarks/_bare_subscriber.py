"""A bare paho QoS 1 subscriber, the yardstick of the ingest benchmark.

Run as ``python tests/benchmarks/_bare_subscriber.py HOST PORT USER PASSWORD TOPIC COUNT
RECEIVE_MAX``; prints "ready" once subscribed, then one JSON line with the wall-clock time
of the first and last of COUNT messages.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def main() -> None:
    """Subscribe, count COUNT messages, report their timing."""
    host, port, user, password, topic, count, receive_max = sys.argv[1:8]
    wanted = int(count)
    state = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        client.subscribe(topic, qos=1)

    def on_subscribe(_c: mqtt.Client, _u: Any, _m: Any, _r: Any, _p: Any) -> None:
        print("ready", flush=True)

    def on_message(_c: mqtt.Client, _u: Any, _msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        if state["n"] == 0:
            state["first"] = now
        state["n"] += 1
        state["last"] = now
        if state["n"] >= wanted:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = int(receive_max)
    client.connect(host, int(port), properties=props)
    client.loop_start()
    done.wait()
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"count": state["n"], "first": state["first"], "last": state["last"]}),
          flush=True)


if __name__ == "__main__":
    main()
