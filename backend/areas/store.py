"""Named areas in the database: replace the set, and keep each machine's area in step."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from backend.areas.features import AreaShape, area_of
from backend.audit import record_audit
from backend.models import Machine, NamedArea
from backend.models.types import utcnow
from backend.notify.geo import parse_area


@dataclass(frozen=True)
class LoadReport:
    """What loading a set of areas changed."""

    areas: int
    removed: int
    machines_moved: int
    machines_outside: int


def stored_shapes(session: Session) -> list[AreaShape]:
    """Return the stored areas, sorted by name."""
    rows = session.exec(select(NamedArea).order_by(col(NamedArea.name))).all()
    return [AreaShape(a.name, a.geometry, parse_area(a.geometry)) for a in rows]


def locate(session: Session, lat: float, lon: float, fallback: str | None) -> str | None:
    """Return the area a machine at (lat, lon) belongs to.

    With areas loaded, containment decides (None outside every polygon);
    with none loaded, ``fallback`` (the area given at registration) stands.
    """
    shapes = stored_shapes(session)
    if not shapes:
        return fallback
    return area_of(shapes, lat, lon)


def assign_machines(session: Session, shapes: list[AreaShape]) -> tuple[int, int]:
    """Set every machine's area from containment; return (moved, outside every area)."""
    moved = outside = 0
    for machine in session.exec(select(Machine).order_by(col(Machine.id))).all():
        area = area_of(shapes, machine.lat, machine.lon)
        outside += area is None
        if area != machine.area:
            machine.area = area
            session.add(machine)
            moved += 1
    return moved, outside


def replace_areas(
    session: Session, shapes: list[AreaShape], *, actor: str, source: str | None
) -> LoadReport:
    """Make ``shapes`` the whole set of areas, re-place every machine, audit; caller commits."""
    before = sorted(session.exec(select(NamedArea.name)).all())
    wanted = {s.name for s in shapes}
    removed = 0
    for area in session.exec(select(NamedArea)).all():
        if area.name not in wanted:
            session.delete(area)
            removed += 1
    now = utcnow()
    for shape in shapes:
        row = session.get(NamedArea, shape.name) or NamedArea(name=shape.name, geometry={})
        row.geometry, row.source, row.loaded_at = shape.geometry, source, now
        session.add(row)
    session.flush()
    moved, outside = assign_machines(session, shapes)
    record_audit(
        session, actor=actor, action="areas.load", object_type="named_area", object_id="*",
        before={"areas": before},
        after={"areas": sorted(wanted), "source": source, "machines_moved": moved,
               "machines_outside": outside},
    )
    return LoadReport(len(shapes), removed, moved, outside)
