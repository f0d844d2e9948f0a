"""The staff page's layout at the desk PC's sizes, in Debian's Chromium against a real hub (issue 15).

At 1366×768 and 1024×768, in Danish ("Åbn skranke", "Pause skranke" once wrapped) and Finnish (the longest
words), with a desk chosen and a visitor at it: every button's text is on one line (its text's line boxes
counted in the browser) and shows whole (scrollWidth ≤ clientWidth), no card is wider than its place, and the
page never scrolls sideways. Screenshots of each go to ``$VUORO_STAFF_SCREENSHOTS`` when set
(docs/screenshots/staff), else to a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_USER, RunningHub

pytestmark = [pytest.mark.browser]

SIZES = {"1366": {"width": 1366, "height": 768}, "1024": {"width": 1024, "height": 768}}

# For every visible button: how many lines its text takes (client rects of its text, grouped by line) and
# whether it shows whole; and everything wider than the page or its card.
MEASURE = """() => {
  const lines = (node) => {
    const range = document.createRange();
    range.selectNodeContents(node);
    const tops = [...range.getClientRects()].filter((r) => r.width > 0).map((r) => r.top + r.height / 2);
    const rows = [];
    for (const y of tops.sort((a, b) => a - b)) if (!rows.length || y - rows[rows.length - 1] > 8) rows.push(y);
    return rows.length;
  };
  // A day of the booking card is a date over a count by design: each of its two parts is one line.
  const parts = (b) => (b.classList.contains("day") ? [...b.children] : [b]);
  const buttons = [...document.querySelectorAll("button")].filter((b) => b.offsetParent !== null).map((b) => ({
    text: b.innerText.replace(/\\s+/g, " ").trim(), lines: Math.max(...parts(b).map(lines)),
    clipped: b.scrollWidth > b.clientWidth + 1,
  }));
  const width = document.documentElement.clientWidth;
  const sticking = [...document.querySelectorAll("header *, main *")]
    .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().right > width + 1)
    .map((e) => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className);
  const cards = [...document.querySelectorAll(".card")].filter((c) => c.scrollWidth > c.clientWidth + 1)
    .map((c) => c.getAttribute("aria-labelledby"));
  return { buttons, sticking, cards, page: document.documentElement.scrollWidth, width };
}"""


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("VUORO_STAFF_SCREENSHOTS") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.mark.parametrize("lang", ["da", "fi"])
def test_desk_buttons_stay_on_one_line_and_nothing_overflows(hub_in_process: RunningHub, browser: Any,
                                                            shots: Path, lang: str) -> None:
    from playwright.sync_api import expect

    hub_in_process.issue("kvik", 3)
    for size, viewport in SIZES.items():
        page = browser.new_context(viewport=viewport).new_page()
        page.goto(f"{hub_in_process.url}/staff/login?lang={lang}")
        page.fill("#username", DEMO_USER)
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.select_option("[data-testid=desk]", "kvik1")
        if size == "1366":
            page.click("#act-next")  # a visitor at the desk: every action enabled, the pause button says "pause"
        expect(page.locator("[data-testid=current]")).to_have_text("K001")
        expect(page.locator("[data-testid=waiting] [data-service=kvik] li strong")).to_have_text(["K002", "K003"])
        # The line being served is never offered as the line to transfer to, and the choice is never blank.
        assert page.eval_on_selector("#transfer-to", "s => s.value") not in ("", "kvik")
        page.locator("[data-testid=book-slots] button").first.wait_for()
        seen = page.evaluate(MEASURE)
        page.screenshot(path=str(shots / f"desk-{size}-{lang}.png"))
        page.context.close()

        texts = [b["text"] for b in seen["buttons"]]
        assert any(t.startswith({"da": "Pause skranke", "fi": "Tauko"}[lang]) for t in texts), texts
        wrapped = [b for b in seen["buttons"] if b["lines"] != 1 or b["clipped"]]
        assert not wrapped, f"{lang} at {size} px: buttons on more than one line or cut: {wrapped}"
        assert seen["page"] <= seen["width"], f"{lang} at {size} px: the page scrolls sideways"
        assert not seen["sticking"], f"{lang} at {size} px: wider than the page: {seen['sticking']}"
        assert not seen["cards"], f"{lang} at {size} px: cards wider than their place: {seen['cards']}"
