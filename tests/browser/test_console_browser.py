"""The console in a real browser: the demo, headless chromium, every page, what a person sees.

One demo and one browser serve the whole module. Every page of the
navigation (console/navigation.py PAGE_SPECS) is visited, so a page added
there is visited too; what to check on it beyond "renders without an error"
goes in PAGE_CHECKS with one line. Screenshots of every page land in
var/test-artifacts/browser/ (docs/for-officials.md uses some of them).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator

import pytest

from tests.browser.console_page import missing_chromium

if (reason := missing_chromium()) is not None:
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from console import fleet_view
from console.api_models import Health, MachinePublic
from console.area_view import OUTLINE_COLOUR
from console.map_deck import MARKER_MAX_PX, MARKER_MIN_PX, MARKER_RADIUS_M
from console.navigation import PAGE_SPECS
from tests.browser import console_page as ui
from tests.browser.demo_run import DemoRun, running_demo
from tests.waiting import wait_until

DESKTOP = (1400, 1000)
PHONE = (390, 844)
PHONE_PAGES = ("restock", "alerts")
"""Pages an outreach worker opens on a phone in the van (by PageKey)."""
MAP_DRAWN_S = 180.0
HOTSPOT_SCAN_S = 90.0
"""SwiftShader draws WebGL on the CPU, which two shared cores make slow."""

pytestmark = pytest.mark.timeout(900)
"""The demo and a CPU-drawn WebGL map on two cores shared with other suites: minutes, not s."""

Check = Callable[[Page, DemoRun], None]
expect.set_options(timeout=ui.STEP_MS)


def check_fleet_map(page: Page, demo: DemoRun) -> None:
    """The map canvas shows one dot per machine and the area outlines; an alert row is listed."""
    machines = demo.machines()
    points = fleet_view.machine_points(
        MachinePublic.model_validate(m) for m in machines)
    centre = fleet_view.view_centre(points)
    radius = ui.marker_radius_px(centre.zoom, centre.lat, MARKER_RADIUS_M, MARKER_MIN_PX,
                                 MARKER_MAX_PX)
    wanted = ui.expected_markers([(p["lat"], p["lon"]) for p in points], centre.zoom, radius)
    canvas = '[data-testid="stDeckGlJsonChart"]'
    marker_colours = [fleet_view.HEALTH_COLOURS[h] for h in Health]
    seen: list[int] = []

    def dots_drawn() -> bool:
        try:
            seen.append(ui.count_dots(ui.element_png(page, canvas), marker_colours))
        except PlaywrightTimeoutError:  # a starved browser; the deadline below still holds
            return False
        return seen[-1] == wanted

    try:
        wait_until(dots_drawn, MAP_DRAWN_S, f"{wanted} machine markers on the map")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; counted {seen[-5:]}") from None
    # Without basemap tiles (this browser reaches loopback only) the areas say where things are.
    assert ui.colour_pixels(ui.element_png(page, canvas), OUTLINE_COLOUR) > 300
    # The heat layer counts to the demo's day (its clock runs an hour a second), not ours.
    before = dt.date.fromisoformat(_stats_today(demo))
    caption = page.get_by_text(re.compile(r"^Dispenses \d\d \w{3} – \d\d \w{3} \d{4}\. "))
    expect(caption).to_be_visible()
    shown = dt.datetime.strptime(caption.inner_text().split(" – ")[1][:11], "%d %b %Y").date()
    after = dt.date.fromisoformat(_stats_today(demo))
    # The map redraws every few seconds: what it shows may be a simulated day old.
    assert before - dt.timedelta(days=1) <= shown <= after, (before, shown, after)
    # Any count above 0: alerts open and close while we look.
    expect(page.get_by_role("heading", name=re.compile(r"^Open alerts \([1-9]\d*\)$"))
           ).to_be_visible()
    assert ui.grid_rows(page, 0), "the open alerts table shows no row"


def _stats_today(demo: DemoRun) -> str:
    answer = demo.get("/api/v1/stats/today")
    assert answer["clock"] == "data", answer  # the API shares the fleet's clock
    return str(answer["today"])


def check_alerts(page: Page, demo: DemoRun) -> None:
    """The alert list shows rows: a table on a desk, one card per alert on a phone."""
    shown = page.get_by_text(re.compile(r"^\d+ of \d+ alerts$"))
    expect(shown).to_be_visible()
    if ui.is_narrow(page):
        # The demo's outreach team keeps machines stocked, so an outreach phone may find
        # nothing open: then the page must say so; otherwise one card per alert.
        if shown.inner_text().startswith("0 of "):
            expect(page.get_by_text("No alerts match.")).to_be_visible()
            return
        expect(page.locator(".st-key-alerts-narrow").get_by_text(re.compile(r"^#\d+ ")).first
               ).to_be_visible()
        return
    if shown.inner_text().startswith("0 of "):
        # Alerts open and close while we look (the map page saw one open a moment ago):
        # with none open now, the alerts of every status still make rows.
        expect(page.get_by_text("No alerts match.")).to_be_visible()
        page.get_by_test_id("stSelectbox").filter(has_text="Status").click()
        page.get_by_role("option", name="all", exact=True).click()
        expect(page.get_by_text(re.compile(r"^[1-9]\d* of \d+ alerts$"))).to_be_visible()
    rows = ui.grid_rows(page, 0)
    assert rows, "the alerts table shows no row"
    assert rows[0][1] in {"critical", "high", "warning", "medium", "info"}, rows


def check_restock(page: Page, demo: DemoRun) -> None:
    """The shift's route: a van's stops and how far it got (or that nobody needs a visit)."""
    expect(page.get_by_text(re.compile(r"^\d+ of \d+ stops done$|No machine needs a visit"))
           ).to_be_visible()


def check_hotspots(page: Page, demo: DemoRun) -> None:
    """A cluster in plain words ("about once in N days") and its chart with data.

    The demo's surge is found by a scan every 30 s on its own clock; when none has
    been found yet the page must say so, as the API does.
    """
    def found() -> bool:
        return bool(demo.get("/api/v1/hotspots", include_resolved="true")["features"])

    try:
        wait_until(found, HOTSPOT_SCAN_S, "the demo's hotspot scan to find its surge")
    except AssertionError:
        expect(page.get_by_text("No dispense clusters")).to_be_visible()
        return
    ui.open_page(page, "Hotspots")  # again: the first visit may have come before the scan
    # The page shows one cluster's plain-words explanation, as the API words it: "about
    # once in N days" for a scan cluster, what the surge rule means for a surge one.
    explanations = [f["properties"]["explanation"] for f in
                    demo.get("/api/v1/hotspots", include_resolved="true")["features"]]
    assert all(explanations), "a cluster without its plain-words explanation"
    sentence = re.compile("|".join(re.escape(text) for text in explanations))
    expect(page.get_by_test_id("stAlertContentInfo").filter(has_text=sentence)).to_be_visible()
    assert ui.chart_marks(page) > 0, "the cluster's chart draws no data"
    # Back to the top for the screenshot (docs/img/hotspots.png): the cluster in words.
    page.get_by_role("heading", name="Hotspots", level=1).scroll_into_view_if_needed()


def check_trends(page: Page, demo: DemoRun) -> None:
    """Dispenses over time: a chart with data."""
    assert ui.chart_marks(page) > 0, "the trends chart draws no data"


def check_machine(page: Page, demo: DemoRun) -> None:
    """One machine's state tiles and slots."""
    expect(page.get_by_test_id("stMetricLabel").filter(has_text="State")).to_be_visible()
    assert ui.grid_rows(page, 0), "the slots table shows no row"


def check_tokens(page: Page, demo: DemoRun) -> None:
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    assert any("demo-health" in " ".join(row) for row in ui.grid_rows(page, 0))


def check_account(page: Page, demo: DemoRun) -> None:
    expect(page.get_by_test_id("stMain").get_by_text("demo-admin").first).to_be_visible()


PAGE_CHECKS: dict[str, Check] = {
    "fleet_map": check_fleet_map,
    "alerts": check_alerts,
    "hotspots": check_hotspots,
    "trends": check_trends,
    "restock": check_restock,
    "machine": check_machine,
    "tokens": check_tokens,
    "account": check_account,
}
"""Per page (keyed by its PageKey value), what a person must see besides no error."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    with running_demo(tmp_path_factory.mktemp("browser-demo")) as run:
        yield run


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = ui.launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


def test_every_page_renders_what_a_person_needs(demo: DemoRun, browser: Browser) -> None:
    context = ui.offline_context(browser, *DESKTOP)
    try:
        page = context.new_page()
        ui.sign_in(page, demo.console, demo.tokens["admin"])
        ui.screenshot(page, "sign-in-done")
        failures: dict[str, str] = {}
        for key, spec in PAGE_SPECS.items():  # admin sees every page
            ui.open_page(page, spec.title)
            check = PAGE_CHECKS.get(key.value)
            try:
                if check is not None:
                    check(page, demo)
                shown = ui.problems(page)
                assert not shown, f"error boxes: {shown}"
            except AssertionError as exc:
                failures[spec.title] = str(exc).splitlines()[0]
            finally:
                ui.screenshot(page, spec.url_path)
        assert not failures, failures
    finally:
        context.close()


def test_phone_pages_fit_the_screen(demo: DemoRun, browser: Browser) -> None:
    context = ui.offline_context(browser, *PHONE)
    try:
        page = context.new_page()
        ui.sign_in(page, demo.console, demo.tokens["outreach"])
        for key in PHONE_PAGES:
            spec = next(s for k, s in PAGE_SPECS.items() if k.value == key)
            ui.open_page(page, spec.title)
            PAGE_CHECKS[key](page, demo)
            ui.screenshot(page, f"phone-{spec.url_path}")
            assert not ui.problems(page)
            assert not ui.sideways(page), f"{spec.title} at 390 px: {ui.sideways(page)}"
    finally:
        context.close()
