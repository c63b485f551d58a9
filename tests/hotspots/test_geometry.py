"""Distances, neighbour order and circle caps, as SaTScan defines them."""

from __future__ import annotations

import numpy as np
import pytest

from backend.hotspots.geometry import (
    EARTH_RADIUS_KM,
    CoordinateSystem,
    build_cylinders,
    neighbour_order,
    to_points,
)


def test_latlon_becomes_chord_distance_on_a_6367_km_sphere() -> None:
    pts = to_points(np.array([[0.0, 0.0], [0.0, 90.0], [90.0, 0.0]]), CoordinateSystem.LATLON)
    assert np.linalg.norm(pts, axis=1) == pytest.approx([EARTH_RADIUS_KM] * 3)
    # A quarter turn of the equator: the chord is R * sqrt(2), not the arc.
    assert np.linalg.norm(pts[0] - pts[1]) == pytest.approx(EARTH_RADIUS_KM * np.sqrt(2))
    one_degree = to_points(np.array([[40.0, -74.0], [41.0, -74.0]]), CoordinateSystem.LATLON)
    chord = 2 * EARTH_RADIUS_KM * np.sin(np.radians(0.5))
    assert np.linalg.norm(one_degree[0] - one_degree[1]) == pytest.approx(chord)


def test_cartesian_points_pass_through() -> None:
    coords = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.array_equal(to_points(coords, CoordinateSystem.CARTESIAN), coords)
    with pytest.raises(ValueError, match="two columns"):
        to_points(np.zeros((2, 3)), CoordinateSystem.LATLON)


def test_ties_join_in_ascending_coordinate_order() -> None:
    # Four neighbours at distance 1 from the centre: order by x, then y.
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    order, dist = neighbour_order(pts, 0)
    assert order.tolist() == [0, 3, 4, 2, 1]
    assert dist.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]


def test_circles_stop_at_the_radius_and_at_the_share_of_cases() -> None:
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    totals = np.array([1, 1, 1, 5])
    cyl = build_cylinders(pts, totals, max_radius=1.5, max_share=0.5)
    assert cyl.locations(int(cyl.centre_starts[1]) - 1) == [0, 1]
    # Around location 2: 2 (1 case), then 1 (1) and 3 (5) tie at 1 km; x breaks
    # the tie, so 1 joins; 3 would take the circle past half of the 8 cases.
    lo, hi = int(cyl.centre_starts[2]), int(cyl.centre_starts[3])
    assert [cyl.locations(r) for r in range(lo, hi)] == [[2], [2, 1]]
    # Location 3 alone has more than half of all cases: no circle at all.
    assert cyl.centre_starts[4] == cyl.centre_starts[3]
    # A neighbour exactly on the radius is inside.
    on_edge = build_cylinders(pts, np.ones(4), max_radius=1.0, max_share=0.5)
    assert on_edge.locations(int(on_edge.centre_starts[1]) - 1) == [0, 1]
