"""Planted surges are found; without one, false alarms stay near the nominal 5%."""

from __future__ import annotations

from backend.hotspots.evaluation import Scenario, evaluate


def test_false_alarm_share_is_close_to_five_percent() -> None:
    result = evaluate(Scenario(), runs=300, replicates=99, seed=11)
    # p = rank / (R + 1) is exact under the null: the share should be 5%
    # up to binomial noise (sd 1.3 points at 300 runs).
    assert 0.015 <= result.share <= 0.095, result
    assert result.ci_low <= 0.05 <= result.ci_high, result


def test_planted_surge_is_found() -> None:
    result = evaluate(Scenario(relative_risk=6.0), runs=80, replicates=99, seed=12)
    assert result.share >= 0.8, result
    # The significant clusters are the planted ones, not chance elsewhere.
    assert result.found >= 0.9 * result.flagged, result
