"""The link probe's bookkeeping (backend/ingest/link_probe.py), with a clock the test moves."""

from __future__ import annotations

from backend.ingest.link_probe import LinkProbe


def test_one_probe_at_a_time_every_half_timeout() -> None:
    probe = LinkProbe(timeout_s=4.0)
    assert probe.due(100.0)
    probe.sent(1, 100.0)
    assert not probe.due(103.0)  # one pending
    probe.answered(1)
    assert not probe.due(101.0)  # answered, but the interval (2 s) has not passed
    assert probe.due(102.0)


def test_an_answer_late_by_the_timeout_gives_the_link_up() -> None:
    probe = LinkProbe(timeout_s=4.0)
    probe.sent(7, 10.0)
    assert probe.overdue(13.9) is None
    assert probe.overdue(14.5) == 4.5
    probe.answered(7)
    assert probe.overdue(30.0) is None


def test_an_answer_before_the_sender_noted_the_probe_counts() -> None:
    probe = LinkProbe(timeout_s=4.0)
    probe.answered(3)  # paho's thread was quicker than the sender
    probe.sent(3, 10.0)
    assert probe.overdue(20.0) is None
    assert probe.due(12.0)


def test_an_answer_to_an_older_probe_does_not_clear_the_pending_one() -> None:
    probe = LinkProbe(timeout_s=4.0)
    probe.sent(5, 10.0)
    probe.answered(4)
    assert probe.overdue(14.0) == 4.0


def test_reset_forgets_the_pending_probe() -> None:
    probe = LinkProbe(timeout_s=4.0)
    probe.sent(9, 10.0)
    probe.reset()  # a new connection
    assert probe.overdue(100.0) is None
    assert probe.due(10.5)
