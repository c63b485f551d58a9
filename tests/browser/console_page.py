"""Driving the Streamlit console in Debian's chromium with Playwright, and reading what it shows.

Only what a person sees counts here: text on the page, the pixels of the map
canvas, and whether anything needs scrolling sideways.
"""

from __future__ import annotations

import io
import math
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Playwright
from playwright.sync_api import Error as PlaywrightError
from scipy import ndimage

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's package (tests/browser/ensure-chromium.sh installs it); never Playwright's builds."""
CHROMIUM_ARGS = [
    # No GPU here: deck.gl's WebGL runs on SwiftShader, which chromium now enables only on request.
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
]
NARROW_PX = 640
"""Streamlit's phone layout starts below this width."""
STEP_MS = 60_000
"""Two shared cores under several test suites: a click may take this long to be acted on."""
SIDEBAR_OPENER = ('[data-testid="stExpandSidebarButton"], '
                  '[data-testid="stSidebarCollapsedControl"] button')
LOOPBACK = re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "browser"


def missing_chromium() -> str | None:
    """Return why the browser test cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return (f"Debian's chromium is not installed at {CHROMIUM}: `make test` installs it with "
                "apt-get where apt can run (tests/browser/ensure-chromium.sh)")
    if shutil.which("node") is None and not _driver_ships():
        return "Playwright's driver is missing from the playwright package"
    return None


def _driver_ships() -> bool:
    from playwright._impl._driver import compute_driver_executable

    node, _ = compute_driver_executable()
    return Path(node).exists()


def launch(playwright: Playwright) -> Browser:
    """Start headless chromium from Debian's package."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)


def offline_context(browser: Browser, width: int, height: int) -> BrowserContext:
    """Return a browser context that reaches loopback only, as an office without internet.

    The basemap tiles then never load, which is exactly the case the area layer is for.
    """
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(STEP_MS)
    context.route(LOOPBACK, lambda route: route.abort())
    return context


def sign_in(page: Page, console: str, token: str) -> None:
    """Open the console and sign in with ``token`` on its sign-in page."""
    page.goto(console)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()


def is_narrow(page: Page) -> bool:
    """Say whether the window is phone-sized (Streamlit's narrow layout)."""
    return page.viewport_size is not None and page.viewport_size["width"] < NARROW_PX


def open_page(page: Page, title: str) -> None:
    """Open a page by its title in the sidebar navigation, as a person does."""
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title)
    narrow = is_narrow(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    if narrow and sidebar.get_attribute("aria-expanded") != "true":
        page.locator(SIDEBAR_OPENER).first.click()  # a phone-sized window folds it away
    link.click()
    # Only the title: live tiles re-run every few seconds and on two busy cores a page may
    # never look idle; each check waits for what it reads.
    page.get_by_role("heading", name=title, level=1).wait_for()
    if narrow:
        collapse = page.locator('[data-testid="stSidebarCollapseButton"] button')
        if collapse.is_visible():
            collapse.click()


def problems(page: Page) -> list[str]:
    """Return the texts of Streamlit exception boxes and error messages on the page."""
    boxes = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return [text.strip()[:300] for text in boxes.all_inner_texts()]


SIDEWAYS_JS = """() => {
  const wide = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > root.clientWidth) {
    wide.push(`the page: ${root.scrollWidth} px wide in ${root.clientWidth} px`);
  }
  for (const el of document.querySelectorAll('[data-testid="stMain"] *')) {
    const style = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(style.overflowX)) continue;
    if (!el.getClientRects().length || el.clientWidth === 0) continue;  // not shown
    if (el.scrollWidth > el.clientWidth + 1) {
      const owner = el.closest('[data-testid^="st"]');
      const name = owner ? owner.dataset.testid : el.tagName;
      wide.push(`${name}: ${el.scrollWidth} px of content in ${el.clientWidth} px`);
    }
  }
  return wide;
}"""


def sideways(page: Page) -> list[str]:
    """Return what needs horizontal scrolling: the page itself or a scrolling box in it.

    Streamlit's dataframes scroll inside their own box, so a page can fit the
    screen while a table's last columns sit out of sight; both count.
    """
    found: list[str] = page.evaluate(SIDEWAYS_JS)
    return found


def grid_rows(page: Page, index: int = 0) -> list[list[str]]:
    """Return the data rows a dataframe shows (its grid's accessible table, visible columns)."""
    table = page.locator('[data-testid="stDataFrame"]').nth(index).locator("table[role=grid]")
    table.wait_for(state="attached")
    rows: list[list[str]] = table.evaluate(
        "t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText))")
    return rows


def element_png(page: Page, selector: str) -> bytes:
    """Return a screenshot of the first element matching ``selector``, as the page shows it.

    A clip of the page rather than an element screenshot: live tiles redraw every
    few seconds, and an element screenshot waits for the element to hold still.
    """
    element = page.locator(selector).first
    # Streamlit scrolls its main block, not the document: a chart below the fold lies
    # outside any clip of the page until it is scrolled into the window.
    element.scroll_into_view_if_needed()
    box = element.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return page.screenshot(clip=box)


def chart_marks(page: Page, index: int = 0) -> int:
    """Return how many coloured pixels a Vega-Lite (Altair) chart draws: its marks, not its axes.

    Axes, grid and labels are grey; a chart with data draws coloured bars, lines or areas.
    """
    selector = '[data-testid="stVegaLiteChart"]'
    page.locator(selector).nth(index).wait_for()
    image = np.asarray(Image.open(io.BytesIO(element_png(page, selector))).convert("RGB"))
    rgb = image.astype(np.int16)
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)  # 0 for white, black and greys
    return int((spread > 40).sum())


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact; return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    try:
        page.screenshot(path=path, full_page=True)
    except PlaywrightError as error:
        # While Streamlit reruns, the document can measure zero high for a moment and
        # Chromium refuses a full-page clip of it; the visible screen still says what
        # the page showed, which is all an artefact is for.
        if "Clipped area" not in error.message:
            raise
        page.screenshot(path=path)
    return path


# -- the map canvas ---------------------------------------------------------------------

WORLD_PX = 512
"""deck.gl's web-mercator world is 512 px wide at zoom 0."""
EARTH_M = 40_075_016.686


def marker_radius_px(zoom: float, lat: float, radius_m: float, lo: float, hi: float) -> float:
    """Return a marker's radius on screen: metres at this zoom, clamped as deck.gl does."""
    metres_per_px = EARTH_M * math.cos(math.radians(lat)) / (WORLD_PX * 2**zoom)
    return min(hi, max(lo, radius_m / metres_per_px))


def _mercator(lat: float, lon: float, zoom: float) -> tuple[float, float]:
    scale = WORLD_PX * 2**zoom / (2 * math.pi)
    north = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
    return scale * math.radians(lon), scale * north


def expected_markers(places: Sequence[tuple[float, float]], zoom: float, radius_px: float) -> int:
    """Return how many separate dots ``places`` make on screen (touching dots merge into one)."""
    xy = [_mercator(lat, lon, zoom) for lat, lon in places]
    parent = list(range(len(xy)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, (xi, yi) in enumerate(xy):
        for j in range(i):
            if math.dist((xi, yi), xy[j]) < 2 * radius_px + 2:  # + the white outlines
                parent[root(i)] = root(j)
    return len({root(i) for i in range(len(xy))})


def colour_mask(image: np.ndarray[Any, Any], colours: Iterable[Sequence[int]], tol: int = 8
                ) -> np.ndarray[Any, Any]:
    """Return where the image has one of ``colours`` (RGB, within ``tol`` per channel)."""
    rgb = image[..., :3].astype(np.int16)
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    for colour in colours:
        mask |= (np.abs(rgb - np.array(colour[:3], dtype=np.int16)) <= tol).all(axis=-1)
    return mask


def count_dots(png: bytes, colours: Iterable[Sequence[int]], min_px: int = 30) -> int:
    """Return how many dots of ``colours`` a screenshot shows.

    An opening first removes one-pixel rims (anti-aliased text edges can pass
    through a marker's grey); a dot of seven pixels' radius survives it.
    """
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    mask = ndimage.binary_opening(colour_mask(image, colours), structure=np.ones((3, 3)))
    labels, found = ndimage.label(mask)
    sizes = ndimage.sum(mask, labels, range(1, found + 1))
    return int((np.asarray(sizes) >= min_px).sum())


def colour_pixels(png: bytes, colour: Sequence[int], tol: int = 12) -> int:
    """Return how many pixels of a screenshot have ``colour``."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return int(colour_mask(image, [colour], tol).sum())
