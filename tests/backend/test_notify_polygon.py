"""Routes limited to a GeoJSON polygon: pure geometry, and the outbox choosing by place."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from backend import crud
from backend.alerts.rules import AlertSpec, slot_alert_spec
from backend.alerts.store import open_alert
from backend.models import AlertType, Notification, NotificationRoute, Severity
from backend.notify.geo import contains, parse_area


def _box(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


SQUARE = {"type": "Polygon", "coordinates": [_box(-75.3, 39.9, -75.1, 40.1),
                                             _box(-75.22, 39.98, -75.18, 40.02)]}


def test_points_inside_the_polygon_and_not_in_its_hole() -> None:
    polygons = parse_area(SQUARE)
    assert contains(polygons, -75.25, 39.95)
    assert not contains(polygons, -75.20, 40.00)  # in the hole
    assert not contains(polygons, -74.0, 40.7)
    multi = parse_area({"type": "MultiPolygon",
                        "coordinates": [[_box(0, 0, 1, 1)], [_box(10, 10, 11, 11)]]})
    assert contains(multi, 10.5, 10.5)
    assert not contains(multi, 5, 5)


@pytest.mark.parametrize(("geometry", "why"), [
    ({"type": "Point", "coordinates": [0, 0]}, "Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "four positions"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "ends where"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 99], [0, 0]]]}, "within range"),
    ({"type": "Polygon", "coordinates": [[["a", 0], [1, 0], [1, 1], ["a", 0]]]}, "position"),
    ("not an object", "geometry object"),
])
def test_bad_geometry_is_refused(geometry: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_area(geometry)


def _machine(session: Session, machine_id: str, lat: float, lon: float) -> None:
    crud.register_machine(session=session, machine_id=machine_id, name=machine_id, lat=lat,
                          lon=lon, actor="test",
                          slots=[{"slot": 1, "product": "naloxone", "capacity": 5, "count": 3}])


def test_the_outbox_routes_by_polygon(engine: Engine) -> None:
    with Session(engine) as session:
        _machine(session, "inside", 39.95, -75.25)
        _machine(session, "outside", 40.70, -74.00)
        session.add(NotificationRoute(name="west-philly", channel="webhook",
                                      target="http://127.0.0.1:9/x", polygon=SQUARE))
        session.commit()
        for machine in ("inside", "outside"):
            open_alert(session, slot_alert_spec(AlertType.EMPTY_SLOT, machine, 1, "n", 0, 2))
        # A hotspot lists no machine of ours here; its centre is inside.
        open_alert(session, AlertSpec(AlertType.OVERDOSE_HOTSPOT, Severity.WARNING, "hs-1",
                                      None, "surge"), details={"lat": 39.92, "lon": -75.28})
        session.commit()
        subjects = sorted(n.payload["alert"]["subject"]
                          for n in session.exec(select(Notification)).all())
        assert subjects == ["hs-1", "inside/slot/1"]
