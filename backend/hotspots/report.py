"""Turn scan clusters into plain dictionaries and text for people and other tools."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from backend.hotspots.satscan_io import Location, format_date
from backend.hotspots.stpscan import Cluster


def cluster_dict(
    cluster: Cluster,
    locations: Sequence[Location],
    study_start: dt.date,
    rank: int,
) -> dict[str, Any]:
    """Describe one cluster by location ids, calendar dates and its statistics."""
    centre = locations[cluster.centre]
    return {
        "rank": rank,
        "centre": centre.location_id,
        "centre_coordinates": list(centre.coords),
        "locations": [locations[i].location_id for i in cluster.locations],
        "radius_km": round(cluster.radius_km, 6),
        "start": format_date(study_start + dt.timedelta(days=cluster.start_day)),
        "end": format_date(study_start + dt.timedelta(days=cluster.end_day)),
        "days": cluster.end_day - cluster.start_day + 1,
        "observed": cluster.observed,
        "expected": cluster.expected,
        "observed_over_expected": cluster.observed_over_expected,
        "test_statistic": cluster.llr,
        "p_value": cluster.p_value,
        "recurrence_interval_days": cluster.recurrence_days,
    }


def clusters_text(rows: Sequence[dict[str, Any]]) -> str:
    """Lay clusters out the way SaTScan's results file does, one block each."""
    if not rows:
        return "No clusters were found.\n"
    blocks: list[str] = []
    for row in rows:
        title = "Most likely cluster" if row["rank"] == 1 else "Secondary cluster"
        p = "n/a" if row["p_value"] is None else f"{row['p_value']:.3f}"
        ri = row["recurrence_interval_days"]
        ri_text = "n/a" if ri is None else f"{ri:.1f} days"
        blocks.append(
            f"{row['rank']}. {title}\n"
            f"  Location IDs included.: {', '.join(row['locations'])}\n"
            f"  Centre / radius.......: {row['centre']} / {row['radius_km']:.2f} km\n"
            f"  Time frame............: {row['start']} to {row['end']}\n"
            f"  Observed / expected...: {row['observed']} / {row['expected']:.2f}"
            f" ({row['observed_over_expected']:.2f} x)\n"
            f"  Test statistic........: {row['test_statistic']:.6f}\n"
            f"  P-value...............: {p}\n"
            f"  Recurrence interval...: {ri_text}\n"
        )
    return "\n".join(blocks)
