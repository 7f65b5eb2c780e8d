"""The decision pages read at a glance in a real browser at 1600x1000 (Playwright driving
Debian's chromium; never a downloaded one).

Before the server starts, `python -m replyassets.demo` (what `make demo` runs) materializes the
whole graph of the session's ``sample_demo`` project (ui/conftest.py: the sample's six queries, the
default recipe, short trainings). Then,
against a real `dg dev`, for each of eval_report, leaderboard, champion and lora_adapter:

1. the first screen (no scroll, no click) shows the page's key entry (the verdict, the decision,
   the loss plot...) and at least one plot: a decoded data-URI PNG inside the viewport;
2. how far a typed table value or an inline plot runs past the part of the page that shows it
   is printed (not asserted yet: long path links still widen the metadata table);

and the HTML report of eval_report opens as a file with every image decoded and no horizontal
scroll at 1600 px. Screenshots of every page go to
test-artifacts/ui/pages/ (git-ignored, written by the run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from replyassets_tests.ui import test_browser as browser
from replyassets_tests.ui.conftest import ARTIFACTS, SAMPLE_DEMO_GROUP
from replyassets_tests.ui.test_browser import goto

chromium_path = browser.chromium_path  # the fixture: Debian's chromium, or a failure naming why

pytestmark = [pytest.mark.browser, pytest.mark.slow, SAMPLE_DEMO_GROUP]

PAGES_DIR = ARTIFACTS / "pages"
# The entry each page must show on its first screen.
KEY_ENTRY = {"eval_report": "verdict", "leaderboard": "win_rates", "champion": "decision", "lora_adapter": "loss"}

# The metadata tables inside the page's metadata table (a table value) and the inline plots
# whose right edge lies past what their clipping ancestors (or the viewport) show: hidden
# columns; and the page's own horizontal scroll.
OVERFLOW_JS = """() => {
  const out = [];
  const clipRight = el => {
    let right = window.innerWidth;
    for (let a = el.parentElement; a; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX !== 'visible') right = Math.min(right, a.getBoundingClientRect().right);
    }
    return right;
  };
  const rowKey = el => { const tr = el.closest('td') && el.closest('td').closest('tr');
                         return tr ? (tr.querySelector('td') || tr).innerText.trim().slice(0, 40) : '?'; };
  // a table value (a typed table: "Show schema" above it) inside the page's metadata table
  const nested = [...document.querySelectorAll('td table')].filter(
    t => (t.closest('td').innerText || '').includes('Show schema'));
  const plots = [...document.querySelectorAll("td img[src^='data:image/png;base64,']")];
  for (const el of [...nested, ...plots]) {
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    const right = clipRight(el);
    if (r.right > right + 2)
      out.push(`${rowKey(el)}: ${el.tagName.toLowerCase()} ends at ${Math.round(r.right)} px, shown to ${Math.round(right)}`);
  }
  const doc = document.scrollingElement;
  if (doc.scrollWidth > window.innerWidth + 2) out.push(`page ${doc.scrollWidth}>${window.innerWidth}`);
  return out;
}"""


# The page's metadata table (its header row starts with "Key") against the column it sits in:
# wider means a value (or a key) too long to break pushes it past the column's right edge.
METADATA_WIDTH_JS = """() => {
  const t = [...document.querySelectorAll('table')].find(t => (t.innerText || '').trim().startsWith('Key'));
  if (!t) return ['no metadata table on the page'];
  const w = t.getBoundingClientRect().width, col = t.parentElement.getBoundingClientRect().width;
  if (w <= col + 2) return [];
  // which rows widen it: the table's width without each one
  const rows = [...t.querySelectorAll(':scope > tbody > tr, :scope > thead > tr')], culprits = [];
  for (const r of rows) {
    const d = r.style.display; r.style.display = 'none';
    const without = t.getBoundingClientRect().width; r.style.display = d;
    if (without < w - 1) culprits.push(`${(r.querySelector('td') || r).innerText.trim().slice(0, 40)} +${Math.round(w - without)} px`);
  }
  return [`metadata table ${Math.round(w)} px wide in a ${Math.round(col)} px column; widened by: ${culprits.join(', ')}`];
}"""


@pytest.fixture(scope="module")
def ui_project(sample_demo):
    """The session's `make demo` project (ui/conftest.py)."""
    return sample_demo


@pytest.fixture(scope="module")
def dagster_ui(sample_demo_ui):
    return sample_demo_ui


@pytest.fixture(scope="module")
def page(chromium_path, dagster_ui, tmp_path_factory):
    PAGES_DIR.mkdir(parents=True, exist_ok=True)
    for old in PAGES_DIR.glob("*.png"):
        old.unlink()
    with browser.chromium_page(chromium_path, tmp_path_factory.mktemp("chromium_profile_pages")) as pg:
        yield pg


def _metadata_row(page, label: str):
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=label, exact=True)).first


def _first_screen_images(page) -> list[dict]:
    """The decoded data-URI images whose box lies inside the viewport (no scroll)."""
    return page.evaluate("""() => [...document.querySelectorAll("img[src^='data:image/png;base64,']")]
      .filter(img => img.complete && img.naturalWidth > 0)
      .map(img => { const r = img.getBoundingClientRect();
                    return {x: r.x, y: r.y, w: r.width, h: r.height, nw: img.naturalWidth}; })
      .filter(r => r.w > 0 && r.h > 0 && r.y >= 0 && r.y + r.h <= window.innerHeight
                   && r.x >= 0 && r.x + r.w <= window.innerWidth)""")


@pytest.mark.timeout(2400)  # the first test also pays for the module fixtures: a demo and `dg dev`
@pytest.mark.parametrize("asset", list(KEY_ENTRY))
def test_first_screen_shows_the_key_entry_and_a_plot(page, dagster_ui, asset):
    server = dagster_ui
    with browser.step(page, server, f"pages-{asset}"):
        goto(page, server, f"/assets/{asset}")
        page.get_by_text("Latest materialization").first.wait_for()
        row = _metadata_row(page, KEY_ENTRY[asset])
        row.wait_for()
        page.wait_for_function(
            "() => [...document.querySelectorAll(\"img[src^='data:image/png;base64,']\")]"
            ".some(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(PAGES_DIR / f"{asset}.png"), full_page=False)
        box = row.bounding_box()
        viewport = page.viewport_size
        assert viewport == {"width": 1600, "height": 1000}, viewport
        assert box and 0 <= box["y"] and box["y"] + min(box["height"], 60) <= viewport["height"], (asset, box)
        images = _first_screen_images(page)
        print(f"{asset}: key entry at {box}; images on the first screen: {images}")
        assert images, f"{asset}: no plot on the first screen"
        # Nothing runs past the page's metadata column: a long unbreakable value (a path, a hash,
        # a one-line text) widens the whole metadata table, and every table value with it.
        overflow = page.evaluate(OVERFLOW_JS) + page.evaluate(METADATA_WIDTH_JS)
        assert not overflow, f"{asset}: horizontal overflow: {overflow}"


def test_html_report_opens_with_its_plots(page, dagster_ui, ui_project):
    report = sorted(Path(ui_project.data, "reports").glob("*/report.html"))
    assert report, "no report.html under the project's data/reports"
    page.goto(report[-1].as_uri())
    images = page.evaluate("() => [...document.images].map(i => [i.complete, i.naturalWidth])")
    page.screenshot(path=str(PAGES_DIR / "report-html.png"), full_page=True)
    assert images and all(ok and w > 0 for ok, w in images), images
    overflow = page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth + 2")
    assert overflow, "the HTML report scrolls horizontally at 1600 px"
