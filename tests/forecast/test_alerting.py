"""The predicted_stockout rule: thresholds with a gap, visits, empty slots."""

from __future__ import annotations

import pytest

from backend.forecast.alerting import Decision, Reason, Thresholds, decide

T = Thresholds(open_at=0.5, resolve_below=0.3)


@pytest.mark.parametrize(
    ("active", "probability", "count", "visited", "expected"),
    [
        (False, 0.49, 5, False, (Decision.NOTHING, None)),
        (False, 0.5, 5, False, (Decision.OPEN, None)),
        (True, 0.49, 5, False, (Decision.KEEP, None)),  # inside the gap: stays open
        (True, 0.31, 5, False, (Decision.KEEP, None)),
        (True, 0.29, 5, False, (Decision.RESOLVE, Reason.RECOVERED)),
        (True, 0.45, 5, True, (Decision.RESOLVE, Reason.VISIT)),
        (True, 0.6, 5, True, (Decision.KEEP, None)),  # the visit did not load enough
        (True, 1.0, 0, False, (Decision.RESOLVE, Reason.RAN_OUT)),
        (False, 1.0, 0, False, (Decision.NOTHING, None)),
    ],
)
def test_decide(active: bool, probability: float, count: int, visited: bool,
                expected: tuple[Decision, Reason | None]) -> None:
    assert decide(active=active, probability=probability, count=count,
                  visited_since_open=visited, thresholds=T) == expected


def test_thresholds_must_leave_a_gap_the_right_way_round() -> None:
    with pytest.raises(ValueError, match="resolve_below"):
        Thresholds(open_at=0.3, resolve_below=0.5)
