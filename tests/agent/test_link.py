"""The link state machine: ACKs, retransmits, duplicates, windows, peer restarts (pure)."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_agent.nxlink.link import Link, LinkTiming, Reception
from firmware_agent.wire.frames import Ack, Frame, FrameReader, decode, encode

TIMING = LinkTiming(ack_timeout_s=1.0, max_tries=3, link_down_retry_s=5.0, window=4,
                    dedupe_window=16)


def frames_of(data: list[bytes]) -> list[Frame]:
    out = []
    for raw in data:
        packet = decode(raw)
        assert isinstance(packet, Frame)
        out.append(packet)
    return out


def test_window_bounds_frames_in_flight_and_acks_open_it() -> None:
    link = Link(TIMING)
    for n in range(10):
        link.submit("VEND", (str(n % 9 + 1), "ok", "1"), persistent=True)
    first = frames_of(link.due(0.0))
    assert [f.seq for f in first] == [0, 1, 2, 3]
    assert link.due(0.5) == []
    assert link.handle_ack(Ack(1))
    assert [f.seq for f in frames_of(link.due(0.5))] == [4]
    assert not link.handle_ack(Ack(1))
    assert link.counters.stray_acks == 1


def test_retransmit_until_tries_run_out() -> None:
    link = Link(TIMING)
    seq = link.submit("LOCK", persistent=False)
    assert len(link.due(0.0)) == 1
    assert len(link.due(1.0)) == 1
    assert len(link.due(2.0)) == 1
    assert link.due(3.0) == []
    assert link.take_failed() == [seq]
    assert not link.is_outstanding(seq)
    assert link.counters.retransmits == 2


def test_persistent_frames_wait_for_the_link_and_try_again() -> None:
    link = Link(TIMING)
    link.submit("VEND", ("1", "ok", "1"), persistent=True)
    for t in (0.0, 1.0, 2.0):
        assert len(link.due(t)) == 1
    assert link.due(3.0) == []
    assert link.due(7.9) == []
    assert len(link.due(8.0)) == 1
    assert link.take_failed() == []


def test_ack_only_after_mark_handled_and_duplicates_are_acked_again() -> None:
    link = Link(TIMING)
    frame = Frame(7, "VEND", ("1", "ok", "1"))
    assert link.receive(frame) is Reception.NEW
    assert link.receive(frame) is Reception.PENDING
    assert [decode(a) for a in link.mark_handled([7])] == [Ack(7)]
    assert link.receive(frame) is Reception.DUPLICATE
    assert link.counters.duplicates == 1


def test_abandoned_frames_are_new_again() -> None:
    link = Link(TIMING)
    frame = Frame(3, "DOOR", ("open",))
    assert link.receive(frame) is Reception.NEW
    link.abandon([3])
    assert link.receive(frame) is Reception.NEW


def test_new_peer_boot_resets_the_receive_window() -> None:
    link = Link(TIMING)
    assert link.peer_booted(1)
    link.receive(Frame(0, "HELLO", ("fw", "1", "1")))
    link.mark_handled([0])
    assert not link.peer_booted(1)
    assert link.receive(Frame(0, "HELLO", ("fw", "1", "1"))) is Reception.DUPLICATE
    assert link.peer_booted(2)
    assert link.receive(Frame(0, "HELLO", ("fw", "1", "2"))) is Reception.NEW
    assert link.counters.peer_restarts == 1


def test_receive_state_survives_a_restart() -> None:
    link = Link(TIMING)
    link.peer_booted(9)
    for seq in range(20):
        link.receive(Frame(seq, "KEY", ("1",)))
        link.mark_handled([seq])
    again = Link(TIMING)
    again.restore_rx_state(link.rx_state())
    assert again.peer_boot == 9
    assert again.receive(Frame(19, "KEY", ("1",))) is Reception.DUPLICATE
    # Only the last dedupe_window numbers are remembered.
    assert again.receive(Frame(0, "KEY", ("1",))) is Reception.NEW


def test_state_stored_with_a_batch_covers_that_batch() -> None:
    link = Link(TIMING)
    frame = Frame(5, "VEND", ("1", "ok", "1"))
    assert link.receive(frame) is Reception.NEW
    # Stored before the ACK goes out; a crash right after must not forget frame 5.
    state = link.rx_state([5])
    after_crash = Link(TIMING)
    after_crash.restore_rx_state(state)
    assert after_crash.receive(frame) is Reception.DUPLICATE


def test_sequence_numbers_wrap() -> None:
    link = Link(TIMING, next_tx_seq=65534)
    seqs = [link.submit("PING", persistent=False) for _ in range(3)]
    assert seqs == [65534, 65535, 0]


@settings(max_examples=60, deadline=None)
@given(
    n_frames=st.integers(1, 60),
    loss=st.floats(0.0, 0.5),
    dup=st.floats(0.0, 0.5),
    noise=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**32 - 1),
)
def test_lossy_line_delivers_every_frame_exactly_once(
    n_frames: int, loss: float, dup: float, noise: float, seed: int
) -> None:
    """Two link ends over a line that drops, duplicates and garbles: each frame acted on once."""
    rng = random.Random(seed)
    timing = LinkTiming(ack_timeout_s=1.0, max_tries=4, link_down_retry_s=2.0, window=8,
                        dedupe_window=64)
    sender, receiver = Link(timing), Link(timing)
    reader_at_receiver, reader_at_sender = FrameReader(), FrameReader()
    for n in range(n_frames):
        sender.submit("KEY", (str(n),), persistent=True)

    def line(chunks: list[bytes]) -> bytes:
        out = bytearray()
        for chunk in chunks:
            for _ in range(2 if rng.random() < dup else 1):
                if rng.random() < noise:
                    out.extend(rng.randbytes(rng.randint(1, 10)))
                if rng.random() >= loss:
                    out.extend(chunk)
        return bytes(out)

    handled: list[str] = []
    now = 0.0
    while sender.unacked and now < 10_000:
        for packet in reader_at_receiver.feed(line(sender.due(now))):
            assert isinstance(packet, Frame)
            reception = receiver.receive(packet)
            if reception is Reception.NEW:
                handled.append(packet.fields[0])
            acks = receiver.mark_handled([packet.seq]) if reception is not Reception.PENDING else []
            for ack in reader_at_sender.feed(line(acks)):
                assert isinstance(ack, Ack)
                sender.handle_ack(ack)
        now += 0.5
    assert sender.unacked == 0
    # Order may differ (a lost frame overtaken by the next one); the set and count may not.
    assert sorted(handled, key=int) == [str(n) for n in range(n_frames)]


@settings(deadline=None)  # no per-example deadline on a shared, loaded machine
@given(st.binary(max_size=400), st.integers(0, 65535))
def test_next_good_frame_is_read_after_any_noise(noise: bytes, seq: int) -> None:
    good = Frame(seq, "VEND", ("1", "ok", "1"))
    reader = FrameReader()
    list(reader.feed(noise))
    assert list(reader.feed(encode(good))) == [good]


def test_hello_is_a_barrier_until_acked() -> None:
    link = Link(TIMING)
    hello = link.submit("HELLO", ("fw", "1", "3"), persistent=True)
    link.submit("VEND", ("1", "ok", "1"), persistent=True)
    assert [f.type for f in frames_of(link.due(0.0))] == ["HELLO"]
    assert link.due(0.5) == []
    assert link.next_deadline() == 1.0
    link.handle_ack(Ack(hello))
    assert [f.type for f in frames_of(link.due(0.6))] == ["VEND"]


def test_first_hello_keeps_frames_already_handled() -> None:
    # The HELLO was lost and retransmitted after later frames: they stay handled.
    link = Link(TIMING)
    vend = Frame(1, "VEND", ("1", "ok", "1"))
    link.receive(vend)
    link.mark_handled([1])
    assert link.peer_booted(4)
    assert link.receive(vend) is Reception.DUPLICATE


def test_cancelled_frames_are_never_sent() -> None:
    link = Link(TIMING)
    hello = link.submit("HELLO", ("fw", "0", "1"), persistent=True)
    lock = link.submit("LOCK", persistent=False)
    link.due(0.0)
    link.cancel(lock)
    link.handle_ack(Ack(hello))
    assert link.due(0.1) == []
    assert not link.is_outstanding(lock)


def test_an_event_resent_after_a_peer_reboot_is_a_repeat() -> None:
    link = Link(TIMING)
    link.peer_booted(17)
    assert link.receive(Frame(4, "VEND", ("1", "ok", "1", "E17.4")), (17, 4)) is Reception.NEW
    link.mark_handled([4])
    link.peer_booted(18)  # the sequence window goes, the event ids stay
    resent = Frame(1, "VEND", ("1", "ok", "1", "E17.4"))
    assert link.receive(resent, (17, 4)) is Reception.REPEAT
    assert [decode(a) for a in link.mark_handled([1])] == [Ack(1)]
    assert link.receive(resent, (17, 4)) is Reception.DUPLICATE
    assert link.receive(Frame(2, "VEND", ("1", "ok", "1", "E18.2")), (18, 2)) is Reception.NEW
    assert link.counters.repeated_events == 1


def test_event_ids_survive_an_agent_restart_and_a_failed_store() -> None:
    link = Link(TIMING)
    link.peer_booted(17)
    assert link.receive(Frame(4, "DOOR", ("open", "E17.4")), (17, 4)) is Reception.NEW
    stored = link.rx_state([4])
    assert link.receive(Frame(5, "DOOR", ("closed", "E17.5")), (17, 5)) is Reception.NEW
    link.abandon([5])  # not stored: its resend is new, under any number
    later = Link(TIMING)
    later.restore_rx_state(stored)
    later.peer_booted(18)
    assert later.receive(Frame(1, "DOOR", ("open", "E17.4")), (17, 4)) is Reception.REPEAT
    assert later.receive(Frame(2, "DOOR", ("closed", "E17.5")), (17, 5)) is Reception.NEW
    assert link.receive(Frame(9, "DOOR", ("closed", "E17.5")), (17, 5)) is Reception.NEW


def test_events_pending_when_the_peer_reboots_are_remembered_with_the_batch() -> None:
    link = Link(TIMING)
    link.peer_booted(17)
    assert link.receive(Frame(4, "KEY", ("1", "E17.4")), (17, 4)) is Reception.NEW
    link.peer_booted(18)  # in the same burst: frame 4's data is stored, its ACK never sent
    assert json.loads(link.rx_state([]))["events"] == [[17, 4, 1]]
    assert link.receive(Frame(1, "KEY", ("1", "E17.4")), (17, 4)) is Reception.REPEAT
    link.mark_handled([1])
    assert link.receive(Frame(2, "KEY", ("1", "E17.4")), (17, 4)) is Reception.REPEAT


def test_event_memory_is_bounded() -> None:
    link = Link(TIMING)
    for seq in range(TIMING.event_window + 1):
        link.receive(Frame(seq, "KEY", ("1",)), (1, seq))
        link.mark_handled([seq])
    link.peer_booted(2)
    assert link.receive(Frame(0, "KEY", ("1",)), (1, 0)) is Reception.NEW
    assert link.receive(Frame(1, "KEY", ("1",)), (1, 1)) is Reception.REPEAT


def test_rounds_are_per_frame_and_new_frames_go_out_during_a_pause() -> None:
    link = Link(TIMING)
    link.submit("VEND", ("1", "ok", "1"), persistent=True)
    for t in (0.0, 1.0, 2.0):
        assert [f.seq for f in frames_of(link.due(t))] == [0]
    assert link.due(3.0) == []  # frame 0's round ended one timeout after its last try
    link.submit("DOOR", ("open",), persistent=True)
    assert [f.seq for f in frames_of(link.due(4.0))] == [1]  # not held up by the pause
    assert [f.seq for f in frames_of(link.due(5.0))] == [1]
    assert [f.seq for f in frames_of(link.due(6.0))] == [1]
    assert link.due(7.0) == []  # frame 1 pauses now, on its own clock
    assert [f.seq for f in frames_of(link.due(8.0))] == [0]  # frame 0's new round


def test_hello_is_retried_for_ever_and_holds_back_only_new_frames() -> None:
    link = Link(TIMING)
    link.submit("LOCK", persistent=False)
    assert [f.seq for f in frames_of(link.due(0.0))] == [0]
    link.submit("HELLO", ("nx-agent-0.1", "0", "52", "2"), persistent=True)
    link.submit("PING", persistent=False)
    assert [f.type for f in frames_of(link.due(0.0))] == ["HELLO"]
    # LOCK (sent before the HELLO) keeps its own retransmissions; PING waits.
    assert [f.type for f in frames_of(link.due(1.0))] == ["LOCK", "HELLO"]
    t, hellos = 1.0, 2
    while t < 100.0:
        t += 1.0
        hellos += sum(f.type == "HELLO" for f in frames_of(link.due(t)))
    assert hellos > 3 * TIMING.max_tries
    assert link.is_outstanding(1)
    assert link.take_failed() == [0]
