"""Inline SVG for the weekly report: a map of areas and machines, and a line chart (pure).

No tiles, scripts or fonts from elsewhere: the report opens offline and in a
mail client. Longitude is scaled by cos(latitude) so a city looks its shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

Ring = Sequence[tuple[float, float]]
"""(lon, lat) corners."""

STATE_COLOURS = {"ok": "#1a9850", "low_stock": "#fdae61", "empty": "#d73027",
                 "offline": "#878787", "alarm": "#762a83"}
SERIES_COLOURS = ("#b2182b", "#2166ac", "#1b7837", "#762a83", "#e08214", "#35978f",
                  "#8c510a", "#c51b7d")


@dataclass(frozen=True)
class MapArea:
    name: str
    rings: tuple[Ring, ...]
    highlighted: bool = False


@dataclass(frozen=True)
class MapMachine:
    machine_id: str
    lat: float
    lon: float
    state: str


@dataclass(frozen=True)
class MapCircle:
    label: str
    lat: float
    lon: float
    radius_km: float


class _Projection:
    """Equirectangular, longitude scaled at the mean latitude, fitted to a box with a margin."""

    def __init__(self, points: Sequence[tuple[float, float]], width: float, height: float,
                 margin: float = 16.0) -> None:
        lons = [p[0] for p in points] or [0.0]
        lats = [p[1] for p in points] or [0.0]
        self.kx = math.cos(math.radians((min(lats) + max(lats)) / 2))
        self.x0, self.y1 = min(lons), max(lats)
        span_x = max((max(lons) - min(lons)) * self.kx, 1e-6)
        span_y = max(max(lats) - min(lats), 1e-6)
        self.scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
        self.margin = margin

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return (self.margin + (lon - self.x0) * self.kx * self.scale,
                self.margin + (self.y1 - lat) * self.scale)

    def km(self, km: float) -> float:
        return km / 111.0 * self.scale


def map_svg(areas: Sequence[MapArea], machines: Sequence[MapMachine],
            circles: Sequence[MapCircle], *, width: int = 720, height: int = 560) -> str:
    """Return an SVG map: area outlines with names, hotspot circles, machines by state."""
    points = [p for a in areas for ring in a.rings for p in ring]
    points += [(m.lon, m.lat) for m in machines]
    project = _Projection(points, width, height)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="Map of areas, '
             f'machines and hotspots">',
             f'<rect width="{width}" height="{height}" fill="#fbfbf8"/>']
    for area in areas:
        fill = "#fddbc7" if area.highlighted else "#eef2f6"
        for ring in area.rings:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (project(*p) for p in ring))
            parts.append(f'<polygon points="{path}" fill="{fill}" stroke="#666" '
                         f'stroke-width="0.8"><title>{escape(area.name)}</title></polygon>')
    for circle in circles:
        x, y = project(circle.lon, circle.lat)
        r = max(project.km(circle.radius_km), 8.0)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="#d73027" '
                     f'fill-opacity="0.15" stroke="#d73027" stroke-width="2">'
                     f'<title>{escape(circle.label)}</title></circle>')
    for machine in machines:
        x, y = project(machine.lon, machine.lat)
        colour = STATE_COLOURS.get(machine.state, "#333")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}" '
                     f'stroke="#fff" stroke-width="0.8"><title>{escape(machine.machine_id)} '
                     f'({escape(machine.state)})</title></circle>')
    for area in areas:
        ring = max(area.rings, key=len, default=())
        if ring:
            cx = sum(p[0] for p in ring) / len(ring)
            cy = sum(p[1] for p in ring) / len(ring)
            x, y = project(cx, cy)
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="9" text-anchor="middle" '
                         f'fill="#333">{escape(area.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart_svg(labels: Sequence[str], series: Sequence[tuple[str, Sequence[int | None]]],
                   *, width: int = 720, height: int = 300, y_title: str = "") -> str:
    """Return an SVG line chart; a None value breaks its line (a suppressed count)."""
    left, right, top, bottom = 48.0, 150.0, 12.0, 40.0
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    top_value = max(values, default=1) or 1
    step = _nice_step(top_value)
    y_max = step * math.ceil(top_value / step)

    def x(i: int) -> float:
        return left + (plot_w * i / max(len(labels) - 1, 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(y_title)}">']
    tick = 0.0
    while tick <= y_max + 1e-9:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 3:.1f}" font-size="10" '
                     f'text-anchor="end">{tick:g}</text>')
        tick += step
    every = max(1, math.ceil(len(labels) / 10))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" font-size="10" '
                         f'text-anchor="middle">{escape(label)}</text>')
    for n, (name, vs) in enumerate(series):
        colour = SERIES_COLOURS[n % len(SERIES_COLOURS)]
        run: list[str] = []
        for i, v in enumerate(vs):
            if v is None:
                parts.append(_polyline(run, colour))
                run = []
                continue
            run.append(f"{x(i):.1f},{y(v):.1f}")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.2" fill="{colour}">'
                         f'<title>{escape(name)} {escape(labels[i])}: {v}</title></circle>')
        parts.append(_polyline(run, colour))
        parts.append(f'<text x="{left + plot_w + 10}" y="{top + 14 * n + 10}" font-size="11" '
                     f'fill="{colour}">{escape(name)}</text>')
    if y_title:
        parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="10" '
                     f'transform="rotate(-90 12 {top + plot_h / 2:.1f})" text-anchor="middle">'
                     f'{escape(y_title)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _polyline(points: list[str], colour: str) -> str:
    if len(points) < 2:
        return ""
    return (f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.8"/>')


def _nice_step(top: float) -> float:
    """Return a round grid step giving about five lines up to ``top``."""
    raw = top / 5
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)
