"""The four network faults of issue 16, each run on one link of a ``Rig``.

Each scenario makes ``VENDS`` vends through the broken link, heals it, waits
for the database to catch up, checks that every vend is stored exactly once
(``Rig.check_exactly_once``) and returns the figures it measured.
"""

from __future__ import annotations

import time

from tests.faultproxy import Direction, End, FaultProxy, Mode
from tests.faults.rig import Rig, noticed
from tests.waiting import wait_until

VENDS = 1000
PARTITION_KEEPALIVES = 3
"""A black-hole partition this many keepalives long (the issue's 60 s is 2 of the default
30 s). A client notices within 2 keepalives (a PINGREQ, then no PINGRESP for another
keepalive), Mosquitto within 1.5; 3 leave room for both."""
HALF_OPEN_KEEPALIVES = 3
RESETS = 4
"""Connection resets spread through one burst."""
LATENCY_S = 2.0


def _after(started: float, seconds: float, what: str) -> None:
    wait_until(lambda: time.monotonic() >= started + seconds, timeout=seconds + 10, what=what)


def _settle(rig: Rig, proxy: FaultProxy, healed_at: float, duplicates_before: float
            ) -> dict[str, object]:
    rig.wait_stored()
    recovered = time.monotonic() - healed_at
    ledger = rig.check_exactly_once()
    return {
        "vends_total": ledger.rows,
        "recovery_s": round(recovered, 2),
        "duplicates_dropped": rig.ingest_counter("nx_ingest_duplicates_total")
        - duplicates_before,
        "connections_accepted": proxy.accepted,
    }


def blackhole(rig: Rig, proxy: FaultProxy) -> dict[str, object]:
    """Partition the link for several keepalives while the machine keeps vending."""
    duplicates = rig.ingest_counter("nx_ingest_duplicates_total")
    partition_s = PARTITION_KEEPALIVES * rig.keepalive_s
    live = proxy.open_ids()
    assert live, "nothing connected through the link before the partition"
    started = time.monotonic()
    proxy.set_mode(Mode.BLACKHOLE)
    rig.vend(VENDS, over_s=partition_s * 0.75)
    _after(started, partition_s, "the end of the partition")
    client = noticed(proxy, live, started, End.CLIENT)
    server = noticed(proxy, live, started, End.SERVER)
    proxy.heal()
    figures = _settle(rig, proxy, time.monotonic(), duplicates)
    # Nothing but keepalives could notice: both ends must have, within the partition.
    assert client is not None, "the client never noticed the partition"
    assert server is not None, "the broker never noticed the partition"
    return {**figures, "partition_s": partition_s, "keepalive_s": rig.keepalive_s,
            "client_noticed_s": round(client, 2), "broker_noticed_s": round(server, 2)}


def resets(rig: Rig, proxy: FaultProxy) -> dict[str, object]:
    """Reset every connection of the link (TCP RST) several times in one burst."""
    duplicates = rig.ingest_counter("nx_ingest_duplicates_total")
    hit = 0
    for _ in range(RESETS):
        # The next burst starts on a fresh connection (the client reconnects after >= 1 s).
        wait_until(lambda: proxy.open_connections() > 0, what="the link reconnected")
        rig.vend(VENDS // (RESETS + 1))
        hit += proxy.reset_all()
    rig.vend(VENDS - RESETS * (VENDS // (RESETS + 1)))
    figures = _settle(rig, proxy, time.monotonic(), duplicates)
    assert hit >= RESETS, "the resets found no connection to break"
    return {**figures, "connections_reset": hit}


def ingest_resets(rig: Rig) -> dict[str, object]:
    """``resets`` on the ingest link, which its reconnect-loop warning is expected to name.

    Mosquitto 2.0.11 closes a taken-over session's socket without a reason, so
    ingest counts every dropped connection: three in 60 s are logged at ERROR
    as a likely reconnect loop (backend/ingest/takeover.py). Resets look the
    same; the alarm is the price of seeing a real loop on that broker.
    """
    rig.tolerated.add("a reconnect loop")
    figures = resets(rig, rig.ingest_link)
    looped = any("a reconnect loop" in line for line in rig.ingest.lines)
    return {**figures, "reconnect_loop_logged": looped}


def latency(rig: Rig, proxy: FaultProxy) -> dict[str, object]:
    """Deliver every chunk both ways 2 s late for a whole burst."""
    duplicates = rig.ingest_counter("nx_ingest_duplicates_total")
    proxy.set_mode(Mode.LATENCY, latency_s=LATENCY_S)
    started = time.monotonic()
    rig.vend(VENDS)
    rig.wait_stored()
    through = time.monotonic() - started
    proxy.heal()
    figures = _settle(rig, proxy, time.monotonic(), duplicates)
    return {**figures, "latency_s": LATENCY_S, "burst_through_s": round(through, 2)}


def half_open(rig: Rig, proxy: FaultProxy, stalled: Direction) -> dict[str, object]:
    """Stall the direction that carries the acknowledgements while the other flows."""
    duplicates = rig.ingest_counter("nx_ingest_duplicates_total")
    stall_s = HALF_OPEN_KEEPALIVES * rig.keepalive_s
    live = proxy.open_ids()
    started = time.monotonic()
    proxy.set_mode(Mode.HALF_OPEN, stalled=stalled)
    rig.vend(VENDS, over_s=stall_s * 0.75)
    _after(started, stall_s, "the end of the stall")
    # One end's keepalive catches it: the client's when its PUBACKs and PINGRESPs
    # stall, the broker's when the client's acks and PINGREQs do. The other end
    # hears of it through the direction that still flows.
    either = noticed(proxy, live, started, End.CLIENT, End.SERVER)
    client = noticed(proxy, live, started, End.CLIENT)
    server = noticed(proxy, live, started, End.SERVER)
    first = min((c.at - started for c in proxy.closures_since(started)
                 if c.connection in live and c.by is not End.PROXY), default=None)
    unnoticed = sum(1 for ident in live
                    if noticed(proxy, {ident}, started, End.CLIENT, End.SERVER) is None)
    proxy.heal()
    figures = _settle(rig, proxy, time.monotonic(), duplicates)
    # Every connection must have been given up within the stall, by one end or the
    # other. Ingest's retained reader, still fed by the broker, once outlived a 15 s
    # stall: paho 2.2 keeps a link that brings bytes, and Mosquitto 2.0 looks at
    # keepalives only every 5 s; ingest's link probe now gives it up (docs/faults.md).
    assert first is not None, f"no stalled connection was noticed: {proxy.closures}"
    assert unnoticed == 0, f"{unnoticed} stalled connection(s) outlived the stall: {proxy.closures}"
    return {**figures, "stalled": stalled.value, "stall_s": stall_s,
            "keepalive_s": rig.keepalive_s, "first_noticed_s": round(first, 2),
            "all_noticed_s": None if either is None else round(either, 2),
            "unnoticed_connections": unnoticed,
            "noticed_by": "client" if client is not None else
            "broker" if server is not None else "some at each end"}
