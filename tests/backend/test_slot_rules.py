"""The slot and machine-state rules that ingest, CRUD, the API and the feeds share (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

from backend.alerts.rules import settle_slot_alerts, slot_subject
from backend.api.schemas import MachinePublic
from backend.machine_state import (
    ALARM_TYPES,
    TIMED_OUT,
    Health,
    MachineStatus,
    StatusChange,
    StatusSource,
    from_status_message,
    is_silent,
    machine_health,
    revived_by_telemetry,
)
from backend.models import AlertType
from backend.stock import DEFAULT_LOW_THRESHOLD, effective_low_threshold

counts = st.integers(0, 50)
thresholds = st.integers(0, 50)
levels = st.lists(st.tuples(counts, thresholds), max_size=8)
alert_types = st.sets(st.sampled_from([t.value for t in AlertType]))
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# -- slot rules ------------------------------------------------------------------------


@given(own=st.none() | thresholds, default=thresholds)
def test_a_slot_keeps_its_own_threshold_and_falls_back_to_the_default(
    own: int | None, default: int
) -> None:
    assert effective_low_threshold(own, default) == (default if own is None else own)


def test_the_settings_default_threshold_is_the_rules_default() -> None:
    from backend.config import Settings

    assert Settings.model_fields["default_low_threshold"].default == DEFAULT_LOW_THRESHOLD


@given(count=counts, threshold=thresholds, product=st.none() | st.text(max_size=10))
def test_every_stock_alert_of_a_slot_is_either_opened_or_resolved(
    count: int, threshold: int, product: str | None
) -> None:
    settled = settle_slot_alerts(
        machine_id="m-1", slot=3, product=product, count=count, threshold=threshold
    )
    opened = [spec.type for spec in settled.open]
    assert sorted(opened + list(settled.resolve)) == sorted(
        [AlertType.LOW_STOCK, AlertType.EMPTY_SLOT]
    )
    assert (AlertType.LOW_STOCK in opened) == (count <= threshold)
    assert (AlertType.EMPTY_SLOT in opened) == (count == 0)
    assert settled.subject == slot_subject("m-1", 3)
    assert all(spec.subject == settled.subject for spec in settled.open)
    assert settled.details == {"count": count, "threshold": threshold}


def test_an_empty_slot_opens_a_critical_empty_alert_naming_the_product() -> None:
    settled = settle_slot_alerts(
        machine_id="m-1", slot=2, product="naloxone-nasal-4mg", count=0, threshold=2
    )
    empty = next(s for s in settled.open if s.type is AlertType.EMPTY_SLOT)
    assert empty.severity.value == "critical"
    assert "naloxone-nasal-4mg" in empty.message
    assert settled.resolve == ()


# -- machine status --------------------------------------------------------------------


@given(stored=st.none() | st.text(max_size=12))
def test_a_stored_status_reads_as_online_offline_or_unknown(stored: str | None) -> None:
    status = MachineStatus.of(stored)
    expected = stored if stored in ("online", "offline") else "unknown"
    assert status.value == expected


def test_the_api_schema_offers_exactly_the_status_and_health_values() -> None:
    fields = MachinePublic.model_fields
    assert set(get_args(fields["status"].annotation)) == {s.value for s in MachineStatus}
    assert set(get_args(fields["health"].annotation)) == {h.value for h in Health}


def test_the_status_topic_sets_the_status_and_names_itself() -> None:
    assert from_status_message(online=True) == StatusChange(
        MachineStatus.ONLINE, StatusSource.STATUS
    )
    assert from_status_message(online=False) == StatusChange(
        MachineStatus.OFFLINE, StatusSource.STATUS
    )


def test_telemetry_revives_only_a_timed_out_or_never_heard_machine() -> None:
    revived = revived_by_telemetry("unknown", None)
    assert revived is not None
    assert (revived.status, revived.source) == (MachineStatus.ONLINE, StatusSource.TELEMETRY)
    assert revived_by_telemetry("offline", TIMED_OUT.source.value) == revived
    # The machine's own last will stands until it says it is online again.
    assert revived_by_telemetry("offline", "status") is None
    assert revived_by_telemetry("online", "status") is None
    assert revived_by_telemetry("online", "telemetry") is None
    assert (TIMED_OUT.status, TIMED_OUT.source) == (MachineStatus.OFFLINE, StatusSource.TIMEOUT)


def test_silence_is_not_being_heard_within_the_timeout() -> None:
    timeout = timedelta(minutes=15)
    assert is_silent(None, now=T0, timeout=timeout)
    assert is_silent(T0 - timeout - timedelta(seconds=1), now=T0, timeout=timeout)
    assert not is_silent(T0 - timeout, now=T0, timeout=timeout)
    assert not is_silent(T0, now=T0, timeout=timeout)


# -- machine health --------------------------------------------------------------------


@given(slot_levels=levels, open_types=alert_types)
def test_an_offline_machine_is_offline_whatever_else(
    slot_levels: list[tuple[int, int]], open_types: set[str]
) -> None:
    health = machine_health(status="offline", slot_levels=slot_levels, open_alert_types=open_types)
    assert health is Health.OFFLINE


@given(status=st.sampled_from(["online", "unknown"]), slot_levels=levels, open_types=alert_types)
def test_health_is_the_worst_of_alarm_empty_low_and_ok(
    status: str, slot_levels: list[tuple[int, int]], open_types: set[str]
) -> None:
    health = machine_health(status=status, slot_levels=slot_levels, open_alert_types=open_types)
    if open_types & {t.value for t in ALARM_TYPES}:
        assert health is Health.ALARM
    elif any(count == 0 for count, _ in slot_levels):
        assert health is Health.EMPTY
    elif any(count <= threshold for count, threshold in slot_levels):
        assert health is Health.LOW_STOCK
    else:
        assert health is Health.OK


def test_stock_alerts_alone_do_not_raise_an_alarm() -> None:
    health = machine_health(
        status="online",
        slot_levels=[(5, 2)],
        open_alert_types={AlertType.LOW_STOCK.value, AlertType.MACHINE_OFFLINE.value},
    )
    assert health is Health.OK


def test_health_reads_levels_from_any_iterable_once() -> None:
    # The snapshot passes a generator-friendly sequence; empty and low both look at it.
    health = machine_health(
        status="online", slot_levels=iter([(3, 2), (1, 2)]), open_alert_types=set()
    )
    assert health is Health.LOW_STOCK
