"""The hotspot job's pure part: areas from dispense days, and the alert plan."""

from __future__ import annotations

import datetime as dt

import numpy as np

from backend.hotspots.areas import CITYWIDE_DETECTOR
from backend.hotspots.job import (
    CITYWIDE_SUBJECT,
    ActiveAlert,
    Area,
    Site,
    compute_areas,
    count_matrix,
    reconcile,
)
from backend.hotspots.settings import HotspotSettings

TODAY = dt.date(2026, 3, 31)
NOW = dt.datetime(2026, 3, 31, 20, 0, tzinfo=dt.UTC)


def grid_sites(n: int = 6) -> list[Site]:
    """Machines on an n x n grid about 1.1 km apart; the west and east halves are two areas."""
    return [Site(f"m-{r}{c}", 39.95 + 0.01 * r, -75.16 + 0.013 * c,
                 "west" if c < n // 2 else "east")
            for r in range(n) for c in range(n)]


def dispenses(sites: list[Site], *, seed: int, surge: list[str] | None = None,
              days: int = 28) -> list[tuple[str, dt.datetime]]:
    """Poisson background of about one dispense a day per machine, plus an optional surge."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, dt.datetime]] = []
    for site in sites:
        for back in range(days):
            out += [(site.machine_id, NOW - dt.timedelta(days=back, hours=3))] * int(
                rng.poisson(1.0))
    for machine in surge or []:
        out += [(machine, NOW - dt.timedelta(hours=2))] * 6
        out += [(machine, NOW - dt.timedelta(days=1))] * 5
    return out


def settings(**kw: object) -> HotspotSettings:
    return HotspotSettings(study_days=28, replicates=199, seed=3, workers=1, **kw)


def test_count_matrix_skips_unknown_machines_and_days_outside() -> None:
    sites = [Site("a", 0, 0), Site("b", 0, 0.01)]
    start = dt.date(2026, 1, 1)
    counts = count_matrix(sites, [("a", start), ("a", start), ("b", dt.date(2026, 1, 3)),
                                  ("zz", start), ("a", dt.date(2025, 12, 31))], start, 3)
    assert counts.tolist() == [[2, 0, 0], [0, 0, 1]]


def test_planted_surge_becomes_a_rare_area() -> None:
    sites = grid_sites()
    surge = ["m-22", "m-23", "m-32"]
    areas = compute_areas(sites, dispenses(sites, seed=1, surge=surge), NOW, settings())
    top = areas[0]
    assert set(surge) <= set(top.machines)
    assert top.end == TODAY
    assert top.observed > 2 * top.expected
    assert top.recurrence_days is not None
    assert top.recurrence_days >= 100
    details = top.details()
    assert details["machines"] == top.machines
    assert "observed" in details
    assert "device_time" not in str(details)


def test_quiet_fleet_has_no_alarming_area() -> None:
    sites = grid_sites()
    areas = compute_areas(sites, dispenses(sites, seed=2), NOW, settings())
    plan = reconcile([], areas, settings())
    assert plan.open == []


def test_citywide_surge_is_flagged_by_c2() -> None:
    sites = grid_sites(4)
    days = dispenses(sites, seed=4)
    days += [(s.machine_id, NOW - dt.timedelta(hours=1)) for s in sites for _ in range(3)]
    areas = compute_areas(sites, days, NOW, settings())
    city = [a for a in areas if a.subject == CITYWIDE_SUBJECT]
    assert len(city) == 1
    assert city[0].observed > city[0].expected
    assert len(city[0].machines) == len(sites)
    # Both named areas rose too.
    assert {a.subject for a in areas if a.detector == "ears-c2-area"} == {"named-area:west",
                                                                          "named-area:east"}


def test_area_surge_is_flagged_for_its_area_only() -> None:
    sites = grid_sites(4)
    days = dispenses(sites, seed=6)
    west = [s.machine_id for s in sites if s.area == "west"]
    days += [(m, NOW - dt.timedelta(hours=1)) for m in west for _ in range(3)]
    # Spread over the whole west half, so no compact cluster takes it first.
    areas = compute_areas(sites, days, NOW, settings(max_radius_km=0.5))
    flagged = [a for a in areas if a.detector == "ears-c2-area"]
    assert [a.subject for a in flagged] == ["named-area:west"]
    assert sorted(flagged[0].machines) == sorted(west)


def test_fixed_threshold_rule_when_configured() -> None:
    sites = grid_sites(4)
    days = dispenses(sites, seed=7)
    days += [("m-11", NOW - dt.timedelta(hours=5))] * 9
    off = compute_areas(sites, days, NOW, settings())
    assert not [a for a in off if a.detector == "fixed-threshold"]
    on = compute_areas(sites, days, NOW, settings(threshold_dispenses=12,
                                                   threshold_radius_km=1.2))
    hits = [a for a in on if a.detector == "fixed-threshold"]
    assert hits
    assert any("m-11" in a.machines for a in hits)
    assert all(a.observed >= 12 for a in hits)


def area(subject: str, machines: list[str], ri: float | None) -> Area:
    return Area(subject=subject, detector="space-time-permutation", centre_machine=machines[0],
                lat=0.0, lon=0.0, radius_km=1.0, machines=machines, start=TODAY, end=TODAY,
                observed=9, expected=2.0, p_value=None if ri is None else 1 / ri,
                recurrence_days=ri, statistic=5.0)


def test_reconcile_opens_keeps_and_resolves() -> None:
    cfg = settings(alert_recurrence_days=100, keep_recurrence_days=20)
    # New and rare: open. New but only 1 in 50 days: nothing.
    plan = reconcile([], [area("area:a", ["a", "b"], 200), area("area:x", ["x"], 50)], cfg)
    assert [a.subject for a in plan.open] == ["area:a"]
    # Next run, the cluster moved its centre to b and weakened to 1 in 40 days:
    # the same alert is kept and refreshed, not raised again.
    active = [ActiveAlert(7, "area:a", frozenset({"a", "b"}))]
    plan = reconcile(active, [area("area:b", ["b", "c"], 40)], cfg)
    assert plan.open == []
    assert [(i, a.subject) for i, a in plan.update] == [(7, "area:b")]
    assert plan.resolve == []
    # Then it fades below the keep level: resolved.
    plan = reconcile(active, [area("area:b", ["b", "c"], 5)], cfg)
    assert plan.resolve == [7]
    assert plan.open == []


def test_citywide_alert_is_not_confused_with_local_ones() -> None:
    cfg = settings()
    city = Area(subject=CITYWIDE_SUBJECT, detector=CITYWIDE_DETECTOR, centre_machine="a",
                lat=0, lon=0, radius_km=5, machines=["a", "b"], start=TODAY, end=TODAY,
                observed=40, expected=10, p_value=None, recurrence_days=None, statistic=4)
    active = [ActiveAlert(1, "area:a", frozenset({"a"}))]
    plan = reconcile(active, [city], cfg)
    assert plan.resolve == [1]
    assert [a.subject for a in plan.open] == [CITYWIDE_SUBJECT]


def test_cusum_runs_beside_or_instead_of_c2_as_settings_choose() -> None:
    sites = grid_sites(4)
    days = dispenses(sites, seed=6)
    west = [s.machine_id for s in sites if s.area == "west"]
    days += [(m, NOW - dt.timedelta(hours=1)) for m in west for _ in range(3)]

    def flagged(surge: str) -> set[tuple[str, str]]:
        found = compute_areas(sites, days, NOW, settings(max_radius_km=0.5, surge=surge))
        return {(a.detector, a.subject) for a in found if a.subject.startswith("named-area:")}

    assert flagged("c2") == {("ears-c2-area", "named-area:west")}
    assert flagged("cusum") == {("poisson-cusum-area", "named-area:west")}
    assert flagged("both") == flagged("c2") | flagged("cusum")
    cusum = next(a for a in compute_areas(sites, days, NOW, settings(max_radius_km=0.5,
                                                                     surge="cusum"))
                 if a.detector == "poisson-cusum-area")
    assert cusum.statistic > 4.0
    assert cusum.areas == ("west",)
    assert "surged in west" in cusum.message()


def test_per_machine_c2_only_for_machines_with_history() -> None:
    sites = [*grid_sites(), Site("m-new", 39.99, -75.10, None)]
    days = dispenses(sites[:-1], seed=8)
    days += [("m-23", NOW - dt.timedelta(hours=1))] * 9
    days += [("m-new", NOW - dt.timedelta(hours=1))] * 6
    # Clusters never count as "already alarming" here, so every machine is watched.
    found = compute_areas(sites, days, NOW, settings(alert_recurrence_days=1e9))
    machines = [a for a in found if a.detector == "ears-c2-machine"]
    assert [a.subject for a in machines] == ["machine:m-23"]
    assert machines[0].observed == 9 + sum(1 for m, t in days[:-15]
                                           if m == "m-23" and t.date() == TODAY)
    assert "at machine m-23" in machines[0].message()
    assert not any(a.detector == "ears-c2-machine"
                   for a in compute_areas(sites, days, NOW,
                                          settings(alert_recurrence_days=1e9,
                                                   machine_history_days=None)))
