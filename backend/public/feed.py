"""Read the public listing of the fleet and render it as JSON and GeoJSON bytes.

The one place that decides which fields leave the building: ``public_fields``
(and its GeoJSON twin) name every field, so a new column on the machine table
never reaches the public by accident. Rows are read as plain tuples, as the
fleet snapshot does, because the feed is rebuilt every second or so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, select

from backend.models import Machine, Product, Slot
from backend.public.availability import Availability, naloxone_availability


@dataclass(frozen=True)
class PublicMachine:
    """What the public may know of one machine."""

    public_id: str
    name: str
    lat: float
    lon: float
    opening_hours: str | None
    naloxone: Availability


def _tables() -> tuple[Table, Table, Table]:
    return (
        Machine.__table__,  # type: ignore[attr-defined]
        Slot.__table__,  # type: ignore[attr-defined]
        Product.__table__,  # type: ignore[attr-defined]
    )


def read_listing(
    connection: Connection, *, now: datetime, silent_after: timedelta
) -> list[PublicMachine]:
    """Return every listed machine (active, in service, with a public name and id).

    Sorted by public name, then public id: a stable order keeps the ETag the
    same while nothing changes, and says nothing about when machines were added.
    """
    m, s, p = _tables()
    listed = (
        m.c.active.is_(True),
        m.c.in_service.is_(True),
        m.c.public_name.is_not(None),
        m.c.public_id.is_not(None),
    )
    machines = connection.execute(
        select(
            m.c.id, m.c.public_id, m.c.public_name, m.c.lat, m.c.lon, m.c.opening_hours,
            m.c.status, m.c.last_seen,
        ).where(*listed)
    ).all()
    # Which products are naloxone is the catalogue's is_naloxone flag (seeded by
    # migration 0002); a slot whose product is not in the catalogue is not naloxone.
    counts: dict[str, list[int]] = defaultdict(list)
    for machine_id, count in connection.execute(
        select(s.c.machine_id, s.c.count)
        .join(p, p.c.code == s.c.product)
        .join(m, m.c.id == s.c.machine_id)
        .where(p.c.is_naloxone.is_(True), *listed)
    ).all():
        counts[machine_id].append(count)
    out = [
        PublicMachine(
            public_id=row.public_id,
            name=row.public_name,
            lat=row.lat,
            lon=row.lon,
            opening_hours=row.opening_hours,
            naloxone=naloxone_availability(
                status=row.status,
                last_seen=row.last_seen,
                now=now,
                silent_after=silent_after,
                naloxone_counts=counts.get(row.id, ()),
            ),
        )
        for row in machines
    ]
    out.sort(key=lambda x: (x.name, x.public_id))
    return out


def public_fields(machine: PublicMachine) -> dict[str, Any]:
    """Return the JSON object of one machine: these keys and no others."""
    return {
        "id": machine.public_id,
        "name": machine.name,
        "lat": machine.lat,
        "lon": machine.lon,
        "opening_hours": machine.opening_hours,
        "naloxone": machine.naloxone.value,
    }


def geojson_feature(machine: PublicMachine) -> dict[str, Any]:
    """Return one machine as a GeoJSON Point feature (RFC 7946: longitude first)."""
    return {
        "type": "Feature",
        "id": machine.public_id,
        "geometry": {"type": "Point", "coordinates": [machine.lon, machine.lat]},
        "properties": {
            "name": machine.name,
            "opening_hours": machine.opening_hours,
            "naloxone": machine.naloxone.value,
        },
    }


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class FeedRenderer:
    """Render the feed as JSON and GeoJSON, encoding only machines that changed.

    The feed is rebuilt every second; encoding 2,000 machines twice took
    about 15 ms of it. Between two rebuilds few machines change, so each
    machine's two fragments are kept, keyed by all that the public sees of
    it, and the bodies are joined from them.
    """

    JSON_HEAD = b'{"machines":['
    GEOJSON_HEAD = b'{"type":"FeatureCollection","features":['
    TAIL = b"]}"

    def __init__(self) -> None:
        self._fragments: dict[PublicMachine, tuple[bytes, bytes]] = {}

    def render(self, machines: list[PublicMachine]) -> tuple[bytes, bytes]:
        """Return the JSON and the GeoJSON body (one builder at a time: not thread-safe)."""
        known = self._fragments
        fragments: dict[PublicMachine, tuple[bytes, bytes]] = {}
        for machine in machines:
            pair = known.get(machine) or fragments.get(machine)
            if pair is None:
                pair = (_dump(public_fields(machine)), _dump(geojson_feature(machine)))
            fragments[machine] = pair
        self._fragments = fragments  # machines gone or changed are forgotten
        plain = self.JSON_HEAD + b",".join(fragments[m][0] for m in machines) + self.TAIL
        geo = self.GEOJSON_HEAD + b",".join(fragments[m][1] for m in machines) + self.TAIL
        return plain, geo
