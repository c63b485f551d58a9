"""The weekly situation report as one self-contained HTML page (pure: from a WeeklyReport).

Inline CSS and SVG only: no scripts, fonts or images from elsewhere, so the
file opens offline, prints, and survives being mailed.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from backend.hotspots.wording import recurrence_sentence
from backend.report.svg import line_chart_svg, map_svg
from backend.report.weekly import WeeklyReport

MOST_AREAS_CHARTED = 6

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 900px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.figures { display: flex; gap: 1.5em; flex-wrap: wrap; }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 1em; }
.figure b { font-size: 1.5em; display: block; }
.hotspot { border-left: 4px solid #d73027; padding: 0.2em 0.9em; margin: 0.8em 0; }
.note { font-size: 0.9em; color: #555; }
"""


def shown(count: int | None, small: bool, k: int) -> str:
    """Return a count as the report prints it: the number, ``<k`` or ``suppressed``."""
    if count is not None:
        return f"{count:,}"
    return f"&lt;{k}" if small else "suppressed"


def _figures(report: WeeklyReport) -> str:
    items = "".join(
        f'<div class="figure"><b>{shown(value, True, report.k)}</b>{escape(label)}</div>'
        for label, value in report.totals.items())
    return f'<div class="figures">{items}</div>'


def _area_table(report: WeeklyReport) -> str:
    pub = report.by_area
    head = "".join(f"<th>{d:%d %b}</th>" for d in report.weeks)
    rows = []
    for i, key in enumerate(pub.table.groups):
        cells = "".join(f"<td>{shown(v, s, report.k)}</td>"
                        for v, s in zip(pub.cells[i], pub.small[i], strict=True))
        rows.append(f"<tr><td>{escape(key)}</td>{cells}"
                    f"<td>{shown(pub.row_totals[i], pub.row_small[i], report.k)}</td></tr>")
    totals = "".join(f"<td><b>{shown(v, s, report.k)}</b></td>"
                     for v, s in zip(pub.col_totals, pub.col_small, strict=True))
    rows.append(f"<tr><td><b>All areas</b></td>{totals}"
                f"<td><b>{shown(pub.total, pub.total_small, report.k)}</b></td></tr>")
    return (f"<table><tr><th>area (week starting)</th>{head}<th>total</th></tr>"
            f"{''.join(rows)}</table>")


def _trend_chart(report: WeeklyReport) -> str:
    pub = report.by_area
    labels = [f"{d:%d %b}" for d in report.weeks]
    series: list[tuple[str, list[int | None]]] = [("all areas", list(pub.col_totals))]
    if report.last_year is not None:
        series.append(("all areas, a year earlier", list(report.last_year.col_totals)))
    ranked = sorted(range(len(pub.table.groups)), key=lambda i: -(pub.row_totals[i] or 0))
    for i in ranked[:MOST_AREAS_CHARTED]:
        series.append((pub.table.groups[i], list(pub.cells[i])))
    return line_chart_svg(labels, series, y_title="naloxone dispenses per week")


def _hotspot(feature: dict[str, Any]) -> str:
    props = feature["properties"]
    p_value = props.get("p_value")
    sentence = props.get("explanation") or recurrence_sentence(
        p_value if isinstance(p_value, float) else None, None)
    status = escape(str(props.get("status") or ""))
    return (f'<div class="hotspot"><p><b>#{feature["id"]}</b> ({status}): '
            f'{escape(str(props.get("summary") or ""))}</p>'
            f"<p>{escape(str(sentence))}</p></div>")


def _empty_table(report: WeeklyReport) -> str:
    if not report.empty:
        return "<p>No machine was out of naloxone at the end of the week.</p>"
    rows = "".join(
        f"<tr><td>{escape(e.name)} ({escape(e.machine_id)})</td>"
        f"<td>{escape(e.area or '(no area)')}</td><td>{e.since:%Y-%m-%d %H:%M} UTC</td>"
        f"<td>{e.days:g}</td><td>{', '.join(map(str, e.slots))}</td></tr>"
        for e in report.empty[:15])
    return ("<table><tr><th>machine</th><th>area</th><th>empty since</th><th>days</th>"
            f"<th>slots</th></tr>{rows}</table>")


def report_title(report: WeeklyReport) -> str:
    """Return the report's title, as its page and a mail's subject say it."""
    return f"Naloxone situation report, {report.start:%d %B} – {report.end:%d %B %Y}"


def render(report: WeeklyReport, *, generated_at: dt.datetime) -> str:
    """Return the report as a complete HTML document."""
    hotspots = "".join(_hotspot(f) for f in report.hotspots) or (
        "<p>No dispense cluster was flagged during the week.</p>")
    history = ("" if report.last_year is not None else
               "<p class='note'>No dispenses are recorded for the same weeks a year earlier: "
               "no comparison yet.</p>")
    title = report_title(report)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="note">Days of {escape(report.timezone)}. Generated {generated_at:%Y-%m-%d %H:%M} UTC by
NaloxNet from the dispenses of its machines (naloxone products only).</p>
{_figures(report)}
<h2>Where</h2>
{map_svg(report.areas, report.machines, report.circles)}
<p class="note">Shaded: neighbourhoods with a flagged cluster; red rings: the clusters;
dots: machines (green: stocked, red: out of naloxone at the end of the week).
Outlines drawn by the team, not official boundaries.</p>
<h2>Trends</h2>
{_trend_chart(report)}
{history}
{_area_table(report)}
<h2>Clusters flagged this week</h2>
{hotspots}
<p class="note">A cluster is a neighbourhood where more naloxone went out in a few days than its
usual share of the city's dispenses (space-time permutation scan, Kulldorff 2005). The sentence
under each says how often chance alone would produce one so unusual.</p>
<h2>Machines out of naloxone longest</h2>
{_empty_table(report)}
<h2>About small counts</h2>
<p>To protect the people who take naloxone, counts from 1 to {report.k - 1} are printed as
“&lt;{report.k}”, and a few larger ones as “suppressed” so that a small count cannot be worked
out from a row or column total. Zero is printed: an empty week identifies no one. No single
dispense appears in this report.</p>
</body></html>
"""
