"""The plain-words sentences of hotspots (backend/hotspots/wording.py): pure, table-tested."""

from __future__ import annotations

import pytest

from backend.hotspots.series import scan_expected, usual_level
from backend.hotspots.wording import (
    cluster_summary,
    days_text,
    recurrence_sentence,
    round_days,
    window_text,
)


@pytest.mark.parametrize(("days", "rounded"), [
    (1.2, 1), (33.3, 33), (99.6, 100), (270.3, 270), (274.9, 270), (999.0, 1000),
    (1000.0, 1000), (1234.0, 1200), (12_345.0, 12_000),
])
def test_days_are_rounded_as_people_say_them(days: float, rounded: int) -> None:
    assert round_days(days) == rounded


def test_long_intervals_also_say_years() -> None:
    assert days_text(270) == "270 days"
    assert days_text(1) == "1 day"
    assert days_text(1000) == "1,000 days (about 2.7 years)"


@pytest.mark.parametrize(("p", "ri", "replicates", "sentence"), [
    (None, 270.0, 999,
     "A cluster this unusual would arise by chance about once in 270 days."),
    (1 / 270, None, None,
     "A cluster this unusual would arise by chance about once in 270 days."),
    (0.004, 250.0, 999,
     "A cluster this unusual would arise by chance about once in 250 days."),
    (0.001, 1000.0, 999,
     "A cluster this unusual would arise by chance less often than once in 1,000 days "
     "(about 2.7 years): none of the 999 reshuffled histories produced one as strong."),
    (0.8, 1.25, 999,
     "A cluster like this would arise by chance about every day: on its own it is not "
     "unusual."),
])
def test_recurrence_sentence(p: float | None, ri: float | None, replicates: int | None,
                             sentence: str) -> None:
    assert recurrence_sentence(p, ri, replicates=replicates) == sentence


def test_surge_rules_say_they_give_no_chance_estimate() -> None:
    text = recurrence_sentence(None, None, detector="ears-c2-area")
    assert text.startswith("This alert comes from a surge rule (ears-c2-area)")
    assert recurrence_sentence(0.0, float("inf")).startswith("This alert comes from")


def test_summary_never_states_a_suppressed_count() -> None:
    shown = cluster_summary(observed=14, expected=3.24, start="2026-03-29", end="2026-03-31",
                            machines=2, areas=["Kensington", "Fishtown"], k=5)
    assert shown == ("14 naloxone dispenses at 2 machines (Kensington, Fishtown) from "
                     "2026-03-29 to 2026-03-31 (3 days), where about 3.2 were expected.")
    hidden = cluster_summary(observed=None, expected=0.7, start="2026-03-31", end="2026-03-31",
                             machines=1, areas=[], k=5)
    assert hidden == ("<5 naloxone dispenses at 1 machine (no named area) on 2026-03-31, "
                      "where about 0.7 were expected.")
    assert window_text(None, "2026-03-31") == "on days not recorded"


def test_scan_expectation_adds_up_to_the_clusters_share_of_each_day() -> None:
    city = [10, 20, 30, 40]
    cluster = [1, 2, 3, 14]
    expected = scan_expected(cluster, city)
    assert sum(expected) == pytest.approx(sum(cluster))
    assert expected == pytest.approx([2.0, 4.0, 6.0, 8.0])  # a 20% share of each day
    assert scan_expected([0, 0], [0, 0]) == [0.0, 0.0]
    assert usual_level([2, 4, 9, 9], 2) == [3.0, 3.0, 3.0, 3.0]
    assert usual_level([5], 0) == [0.0]
