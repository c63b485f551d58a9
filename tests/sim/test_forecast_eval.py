"""A small run of the forecast evaluation (the full one is tests/benchmarks/test_forecast_bench)."""

from __future__ import annotations

from simulators.forecast_eval import evaluate


def test_forecast_is_calibrated_and_beats_the_naive_rate_on_a_small_fleet() -> None:
    result = evaluate(machines=100, seed=1)
    assert result.slots_scored == 200
    # 200 slots: an 80% interval's coverage has a standard error of about 0.03.
    assert 0.68 <= result.interval_coverage <= 0.92
    assert result.error_ratio_vs_baseline < 0.9
