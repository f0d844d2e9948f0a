"""axe-core over a page in the real Chromium: the web pages' WCAG 2.1 AA check (docs/accessibility.md).

axe-core's own ``axe.min.js`` comes from a pinned PyPI package (``axe-playwright-python``, see
constraints.txt), so CI installs it with everything else and nothing is fetched at test time. Only the
script is used: it is evaluated in the page through Playwright (a page's CSP does not apply to that),
then ``axe.run`` with every rule axe runs by default — WCAG 2.0/2.1 A and AA and axe's best practices
(one ``h1``, landmarks) — and the test wants none to fail::

    page.goto(url)
    assert_accessible(page, "the staff page, phone size")

What axe cannot judge (whether a text alternative says the right thing, whether a live region is
heard, the order a person tabs in) the page tests check by hand, and docs/accessibility.md lists.
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from typing import Any

AXE_VERSION = "4.12.1"  # the axe-core inside axe-playwright-python==0.1.8; the check below keeps them in step
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SIZES = {"desktop": DESKTOP, "phone": PHONE}


@cache
def axe_script() -> str:
    return (importlib.resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Any, *, include: str | None = None) -> list[dict[str, Any]]:
    """Run axe-core on ``page`` as it is now (the whole document, or the part ``include`` selects) and
    return its violations: ``{"id", "impact", "help", "nodes": [{"target", "failureSummary"}]}``."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_script())
    version = page.evaluate("() => axe.version")
    assert version == AXE_VERSION, f"axe-core {version} is loaded, toolkit/accessibility.py expects {AXE_VERSION}"
    return page.evaluate(
        """async (include) => {
            const result = await axe.run(include || document, {resultTypes: ["violations"]});
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, tags: v.tags,
                nodes: v.nodes.map((n) => ({target: n.target, summary: n.failureSummary})),
            }));
        }""", include)


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per rule broken, with up to three of the elements that break it."""
    lines = []
    for v in violations:
        where = "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:3])
        more = f" (+{len(v['nodes']) - 3} more)" if len(v["nodes"]) > 3 else ""
        lines.append(f"{v['id']} [{v['impact']}] {v['help']}: {where}{more}")
    return "\n".join(lines)


def assert_accessible(page: Any, what: str) -> None:
    """No axe-core violation of any impact on ``page``; else fail with the rules broken and where."""
    violations = axe_violations(page)
    assert not violations, f"axe-core {AXE_VERSION} on {what} ({page.url}):\n{describe(violations)}"
