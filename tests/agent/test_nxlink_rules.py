"""docs/nxlink.md's rules as the agent's driver applies them, with frames written by hand on a pty.

The test plays the controller byte for byte, so each rule is checked with
exactly the frame the spec names (``$1,VEND,3,ok*47B2``, ``jam,1``, a STOCK
in parts), not with what the virtual controller happens to send.
"""

from __future__ import annotations

import os
import select
import time
import tty
from collections.abc import Iterator

import pytest

from firmware_agent.drivers.base import Batch, Hello, Key, Observation, StockReport, Vend
from firmware_agent.drivers.nxlink import NxlinkDriver
from firmware_agent.nxlink.link import LinkTiming
from firmware_agent.nxlink.messages import decode_message
from firmware_agent.wire.crc import crc16_ccitt_false
from firmware_agent.wire.frames import Ack, Frame, FrameReader, Packet, encode
from firmware_agent.wire.payloads import VendResult
from tests.waiting import wait_until

LINK = LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3)
READ_S = 0.05
DEADLINE_S = 10.0


class HandController:
    """The controller end of a pty, driven frame by frame by the test."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self._reader = FrameReader()
        self.received: list[Packet] = []

    def send(self, raw: bytes) -> None:
        os.write(self.master, raw)

    def send_frame(self, seq: int, kind: str, *fields: str) -> None:
        self.send(encode(Frame(seq, kind, fields)))

    def pump(self) -> None:
        """Take what the agent wrote so far."""
        while select.select([self.master], [], [], 0)[0]:
            self.received.extend(self._reader.feed(os.read(self.master, 4096)))

    def acks(self) -> set[int]:
        self.pump()
        return {p.seq for p in self.received if isinstance(p, Ack)}

    def ack_count(self, seq: int) -> int:
        self.pump()
        return sum(isinstance(p, Ack) and p.seq == seq for p in self.received)

    def frames(self, kind: str) -> list[Frame]:
        self.pump()
        return [p for p in self.received if isinstance(p, Frame) and p.type == kind]

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def line() -> Iterator[tuple[HandController, NxlinkDriver]]:
    hand = HandController()
    driver = NxlinkDriver(hand.port, timing=LINK, boot_id=52)
    driver.open()
    wait_until(lambda: bool(hand.frames("HELLO")), what="the agent's HELLO")
    hand.send(encode(Ack(hand.frames("HELLO")[0].seq)))
    hand.send_frame(0, "HELLO", "vc-1.0", "4", "17", "2")
    read_until(driver, hand, 0)
    # The agent answers the controller's new counter with a second HELLO (docs/nxlink.md 6).
    wait_until(lambda: len(hand.frames("HELLO")) == 2, what="the agent's answering HELLO")
    hand.send(encode(Ack(hand.frames("HELLO")[1].seq)))
    try:
        yield hand, driver
    finally:
        driver.close()
        hand.close()


def read_until(driver: NxlinkDriver, hand: HandController, seq: int,
               state: list[str] | None = None) -> list[Observation]:
    """Read and commit until the agent ACKs controller frame ``seq`` once more; return what
    it saw (the test sends the frame just before calling this)."""
    seen: list[Observation] = []
    deadline = time.monotonic() + DEADLINE_S
    before = hand.ack_count(seq)
    while hand.ack_count(seq) == before:
        assert time.monotonic() < deadline, f"frame {seq} never acknowledged"
        batch: Batch = driver.read(READ_S)
        seen += batch.observations
        driver.commit(batch)
        if state is not None and batch.state is not None:
            state.append(batch.state)
    return [o for o in seen if not isinstance(o, Hello)]


def test_the_agent_says_hello_with_its_protocol(line: tuple[HandController, NxlinkDriver]
                                                ) -> None:
    hand, driver = line
    hello = decode_message(hand.frames("HELLO")[0])
    assert hello == Hello("nx-agent-0.1", 0, 52, 2)
    assert driver.peer_protocol == 2


def test_a_vend_with_a_missing_field_is_acknowledged_and_not_counted(
    line: tuple[HandController, NxlinkDriver],
) -> None:
    hand, driver = line
    hand.send(b"$1,VEND,3,ok*47B2\r\n")
    assert read_until(driver, hand, 1) == []
    assert driver.counters()["bad_messages"] == 1


@pytest.mark.parametrize("fields", [("3", "jam", "1"), ("3", "empty", "1"),
                                    ("3", "no-drop", "1"), ("3", "refused", "1")])
def test_a_drop_without_an_ok_is_invalid(line: tuple[HandController, NxlinkDriver],
                                         fields: tuple[str, ...]) -> None:
    hand, driver = line
    hand.send_frame(1, "VEND", *fields)
    assert read_until(driver, hand, 1) == []
    assert driver.counters()["bad_messages"] == 1


def test_ok_without_a_drop_is_an_unconfirmed_dispense_and_refused_is_reported(
    line: tuple[HandController, NxlinkDriver],
) -> None:
    hand, driver = line
    hand.send_frame(1, "VEND", "3", "ok", "0")
    seen = read_until(driver, hand, 1)
    hand.send_frame(2, "VEND", "3", "refused", "0")
    seen += read_until(driver, hand, 2)
    assert seen == [Vend(3, VendResult.OK, False), Vend(3, VendResult.REFUSED, False)]


def test_the_star_key_travels_as_s(line: tuple[HandController, NxlinkDriver]) -> None:
    hand, driver = line
    hand.send_frame(1, "KEY", "S12#")
    assert read_until(driver, hand, 1) == [Key("*12#")]


def test_a_stock_report_in_parts_is_handed_on_only_when_whole(
    line: tuple[HandController, NxlinkDriver],
) -> None:
    hand, driver = line
    hand.send_frame(1, "STOCK", "1/2", "1:8", "2:20", "E17.1")
    assert read_until(driver, hand, 1) == []  # ACKed (it is durable) but not yet a report
    hand.send_frame(2, "STOCK", "2/2", "3:0", "4:5", "E17.2")
    assert read_until(driver, hand, 2) == [StockReport({1: 8, 2: 20, 3: 0, 4: 5})]
    hand.send_frame(3, "STOCK")  # empty: the controller senses no slot
    assert read_until(driver, hand, 3) == [StockReport({})]


def test_stock_parts_survive_an_agent_restart(line: tuple[HandController, NxlinkDriver]
                                              ) -> None:
    hand, driver = line
    states: list[str] = []
    # The second part arrives first (the first was garbled and is resent): order is free.
    hand.send_frame(2, "STOCK", "2/2", "3:0", "E17.2")
    assert read_until(driver, hand, 2, states) == []
    driver.close()
    again = NxlinkDriver(hand.port, timing=LINK, boot_id=53)
    again.restore_state(states[-1])
    again.open()
    try:
        hand.send_frame(1, "STOCK", "1/2", "1:8", "E17.1")
        assert read_until(again, hand, 1) == [StockReport({1: 8, 3: 0})]
    finally:
        again.close()


def test_a_new_report_abandons_an_unfinished_one(line: tuple[HandController, NxlinkDriver]
                                                 ) -> None:
    hand, driver = line
    hand.send_frame(1, "STOCK", "1/2", "1:8")
    assert read_until(driver, hand, 1) == []
    hand.send_frame(5, "STOCK", "1/2", "1:7")
    seen = read_until(driver, hand, 5)
    hand.send_frame(6, "STOCK", "2/2", "2:3")
    seen += read_until(driver, hand, 6)
    assert seen == [StockReport({1: 7, 2: 3})]


def test_an_event_resent_after_a_controller_reboot_is_acked_and_not_counted(
    line: tuple[HandController, NxlinkDriver],
) -> None:
    hand, driver = line
    hand.send_frame(1, "VEND", "3", "ok", "1", "E17.1")
    assert read_until(driver, hand, 1) == [Vend(3, VendResult.OK, True)]
    hand.send_frame(0, "HELLO", "vc-1.0", "4", "18", "2")
    hand.send_frame(1, "VEND", "3", "ok", "1", "E17.1")  # the ACK was lost: sent again
    hand.send_frame(2, "VEND", "3", "ok", "1", "E18.2")
    seen = read_until(driver, hand, 2)
    assert seen == [Vend(3, VendResult.OK, True)]
    assert driver.counters()["repeated_events"] == 1


def test_a_frame_of_256_bytes_counts_the_dollar(line: tuple[HandController, NxlinkDriver]
                                                ) -> None:
    hand, driver = line
    # An unknown type is ACKed and ignored: a long field of it makes frames of any size.
    longest = _long(1, 256)
    assert encode(Frame(1, "ZZ", (longest[6:-7].decode(),))) == longest
    hand.send(longest)
    hand.send(_long(2, 257))
    read_until(driver, hand, 1)
    hand.send_frame(3, "PING")
    read_until(driver, hand, 3)
    assert 2 not in hand.acks()


def _long(seq: int, size: int) -> bytes:
    """Frame ``seq`` correctly, except that it is ``size`` bytes long."""
    body = f"{seq},ZZ," + "x" * (size - 8 - len(f"{seq},ZZ,"))
    data = b"$" + body.encode() + b"*" + f"{crc16_ccitt_false(body.encode()):04X}".encode()
    assert len(data + b"\r\n") == size
    return data + b"\r\n"


def test_the_agent_answers_only_a_hello_with_a_new_counter(
    line: tuple[HandController, NxlinkDriver],
) -> None:
    hand, driver = line
    # The fixture's exchange (docs/nxlink.md 8): the agent's start-up HELLO and its answer.
    assert [decode_message(f) for f in hand.frames("HELLO")] == [
        Hello("nx-agent-0.1", 0, 52, 2)] * 2
    hand.send_frame(1, "HELLO", "vc-1.0", "4", "17", "2")  # a counter it knows
    read_until(driver, hand, 1)
    assert len(hand.frames("HELLO")) == 2
    hand.send_frame(0, "HELLO", "vc-1.0", "4", "18", "2")  # the controller rebooted
    read_until(driver, hand, 0)
    assert len(hand.frames("HELLO")) == 3


def test_an_event_without_an_id_from_a_protocol_2_controller_is_counted_and_flagged(
    line: tuple[HandController, NxlinkDriver],
) -> None:
    hand, driver = line
    hand.send_frame(1, "VEND", "3", "ok", "1")  # the fixture's controller announced 2
    assert read_until(driver, hand, 1) == [Vend(3, VendResult.OK, True)]
    hand.send_frame(2, "VEND", "3", "ok", "1", "E17.2")
    assert read_until(driver, hand, 2) == [Vend(3, VendResult.OK, True)]
    assert driver.counters()["events_without_id"] == 1
