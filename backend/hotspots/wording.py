"""Hotspot figures said in plain words for officials (pure: the API, console and report use it).

The recurrence interval is docs/hotspots.md's: with one analysis a day, a
cluster as strong as this one would turn up by chance once every 1 / p days.
With R replicates the p-value cannot go below 1 / (R + 1): a cluster that no
shuffle matched is *at least* that rare, and the sentence says so.
"""

from __future__ import annotations

import datetime as dt
import math

NOT_UNUSUAL_DAYS = 2.0
"""Below this recurrence interval a cluster is what chance gives almost every day."""


def round_days(days: float) -> int:
    """Round a number of days as a person would say it: to two significant figures from 100."""
    if days < 100:
        return max(1, round(days))
    digits = math.floor(math.log10(days)) - 1
    return int(round(days / 10**digits) * 10**digits)


def days_text(days: float) -> str:
    """Return ``"270 days"`` or ``"1,000 days (about 2.7 years)"`` for a recurrence interval."""
    rounded = round_days(days)
    text = f"{rounded:,} day" + ("" if rounded == 1 else "s")
    if rounded >= 365:
        text += f" (about {rounded / 365.25:.1f} years)"
    return text


def recurrence_days(p_value: float | None, recurrence: float | None) -> float | None:
    """Return the recurrence interval in days: the scan's own, else 1 / p."""
    if recurrence is not None and math.isfinite(recurrence) and recurrence > 0:
        return recurrence
    if p_value is not None and 0 < p_value <= 1:
        return 1.0 / p_value
    return None


def recurrence_sentence(
    p_value: float | None,
    recurrence: float | None = None,
    *,
    replicates: int | None = None,
    detector: str | None = None,
) -> str:
    """Say how often chance alone would make a cluster this unusual, in one sentence.

    ``replicates`` (the scan's R) lets the sentence say "at least" when the
    p-value is the smallest R shuffles can give.
    """
    days = recurrence_days(p_value, recurrence)
    if days is None:
        rule = f" ({detector})" if detector else ""
        return (f"This alert comes from a surge rule{rule}, not the scan: it gives no estimate "
                "of how often chance alone would raise it.")
    if days < NOT_UNUSUAL_DAYS:
        return ("A cluster like this would arise by chance about every day: "
                "on its own it is not unusual.")
    floor = replicates is not None and p_value is not None and p_value <= 1.0 / (replicates + 1)
    if floor:
        return (f"A cluster this unusual would arise by chance less often than once in "
                f"{days_text(days)}: none of the {replicates:,} reshuffled histories "
                f"produced one as strong.")
    return f"A cluster this unusual would arise by chance about once in {days_text(days)}."


def window_text(start: str | None, end: str | None) -> str:
    """Return the cluster's days as ``"from 2026-03-29 to 2026-03-31 (3 days)"``."""
    if not start or not end:
        return "on days not recorded"
    if start == end:
        return f"on {start}"
    try:
        length = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days + 1
    except ValueError:
        return f"from {start} to {end}"
    return f"from {start} to {end} ({length} days)"


def count_text(observed: int | None, k: int | None) -> str:
    """Return an observed count as shown: the number, or ``"<k"`` when it is suppressed."""
    if observed is None:
        return f"<{k}" if k is not None else "suppressed"
    return str(observed)


def cluster_summary(
    *,
    observed: int | None,
    expected: float | None,
    start: str | None,
    end: str | None,
    machines: int,
    areas: list[str],
    k: int | None,
) -> str:
    """Say what was seen where and when, without any count under the suppression threshold."""
    where = ", ".join(areas) if areas else "no named area"
    seen = count_text(observed, k)
    expect = f"{expected:.1f}" if expected is not None else "an unknown number of"
    machine_word = "machine" if machines == 1 else "machines"
    return (f"{seen} naloxone dispenses at {machines} {machine_word} ({where}) "
            f"{window_text(start, end)}, where about {expect} were expected.")
