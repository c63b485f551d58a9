"""Export naloxone dispenses as SaTScan case and coordinate files, for officials' own runs."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from backend.db import session_scope
from backend.hotspots.areas import Site
from backend.hotspots.satscan_io import CaseRecord, Location, cas_text, geo_text
from backend.hotspots.settings import HotspotSettings
from backend.hotspots.store import load_dispenses, load_sites, naloxone_products


def satscan_records(
    sites: Sequence[Site],
    dispense_days: Iterable[tuple[str, dt.date]],
) -> tuple[list[CaseRecord], list[Location]]:
    """Aggregate dispenses to one case record per machine and day, plus the coordinates."""
    known = {s.machine_id for s in sites}
    tally = Counter((m, d) for m, d in dispense_days if m in known)
    cases = [CaseRecord(m, n, d) for (m, d), n in sorted(tally.items())]
    locations = [Location(s.machine_id, (s.lat, s.lon)) for s in sites]
    return cases, locations


def satscan_texts(
    session: Session,
    settings: HotspotSettings,
    *,
    today: dt.date,
    sites: Sequence[Site] | None = None,
) -> tuple[str, str, int]:
    """Return the .cas and .geo text for the study period ending `today`, and the cases.

    ``sites`` limits the files to those machines (an area-limited caller's).
    """
    first = today - dt.timedelta(days=settings.study_days - 1)
    zone = ZoneInfo(settings.timezone)
    if sites is None:
        sites = load_sites(session)
    dispenses = load_dispenses(session, naloxone_products(session, settings), first, today, zone)
    days = [(m, t.astimezone(zone).date()) for m, t in dispenses]
    cases, locations = satscan_records(sites, days)
    return cas_text(cases), geo_text(locations), sum(c.count for c in cases)


def export_satscan(
    engine: Engine,
    settings: HotspotSettings,
    out_dir: Path,
    *,
    today: dt.date,
    prefix: str = "naloxnet",
) -> tuple[Path, Path, int]:
    """Write <prefix>.cas and <prefix>.geo for the study period ending `today`."""
    with session_scope(engine) as session:
        cas_body, geo_body, total = satscan_texts(session, settings, today=today)
    out_dir.mkdir(parents=True, exist_ok=True)
    cas, geo = out_dir / f"{prefix}.cas", out_dir / f"{prefix}.geo"
    cas.write_text(cas_body, encoding="utf-8")
    geo.write_text(geo_body, encoding="utf-8")
    return cas, geo, total
