"""Measures what a hall screen shows against the type floor (docs/signage.md, "From five metres").

The floor: every text a visitor must read is at least 1/27 of the screen's short side (40 px on a
1080-pixel panel). ``floor_px`` says it in pixels; ``MEASURE_JS`` walks every visible text node of the
web page (its computed font size, its box, whether a panel or an ellipsis cuts it, whether it leaves
the screen or covers another text); ``measure_kivy`` does the same over a Kivy widget tree's labels.
Used by tests/test_signage_type.py and by toolkit/signage_screenshots.py.
"""

from __future__ import annotations

from typing import Any

FLOOR_FRACTION = 27  # the short side divided by this is the smallest type on a hall screen
SIZES = {"1080p": (1920, 1080), "720p": (1280, 720), "tv": (960, 540), "portrait": (1080, 1920)}


def floor_px(width: int, height: int) -> float:
    """The smallest font size, in pixels, for a screen of width × height (40 at 1080p, 20 at 960×540)."""
    return min(width, height) / FLOOR_FRACTION


MEASURE_JS = r"""
() => {
  const W = innerWidth, H = innerHeight, out = { texts: [], cut: [], outside: [], overlaps: [] };
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, text = node.textContent.trim();
    if (!/[\p{L}\p{N}]/u.test(text)) continue;  // a dot or an arrow is a sign, not a text
    const elem = node.parentElement;
    const visible = elem.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
    if (elem.closest("script,style") || !visible) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    const where = elem.id || elem.className || elem.tagName;
    out.texts.push({ text: text, where: where, size: parseFloat(getComputedStyle(elem).fontSize) });
    if (r.left < -0.5 || r.top < -0.5 || r.right > W + 0.5 || r.bottom > H + 0.5) out.outside.push(text);
    // cut: an ellipsis, or a box with overflow hidden that the text runs out of
    for (let a = elem; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.overflowX === "visible" && style.overflowY === "visible") continue;
      const box = a.getBoundingClientRect();
      const over = r.right > box.right + 1 || r.bottom > box.bottom + 1 || r.left < box.left - 1;
      if (a.scrollWidth > a.clientWidth + 1 || over) {
        out.cut.push(text + " (" + where + ")");
        break;
      }
    }
    // for overlaps: the text's width, and its line box's height (a font's ascent and descent reach past a
    // line-height of 1 with no ink there)
    const own = elem.getBoundingClientRect();
    boxes.push({ text: text, r: { left: r.left, right: r.right, top: Math.max(r.top, own.top),
                                  bottom: Math.min(r.bottom, own.bottom) } });
  }
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i].r;
    const b = boxes[j].r;
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 1 && h > 1) out.overlaps.push(boxes[i].text + " / " + boxes[j].text);
  }
  out.rows = { recent: document.querySelectorAll("#recent li:not(.none)").length,
               queues: document.querySelectorAll("#queues li").length,
               events: document.querySelectorAll("#events li:not(.none)").length };
  return out;
}
"""


def measure_kivy(root: Any) -> dict[str, Any]:
    """The same measures over a Kivy screen: every visible Label's font size, and whether its text fits."""
    from kivy.core.text import Label as CoreLabel
    from kivy.uix.label import Label

    out: dict[str, Any] = {"texts": [], "cut": [], "outside": [], "overlaps": []}
    window_w, window_h = root.size
    boxes = []
    for widget in root.walk(restrict=True):
        if not isinstance(widget, Label) or not any(c.isalnum() for c in widget.text) or widget.width < 1 \
                or widget.height < 1:
            continue  # (a dot or an arrow is a sign, not a text to read)
        if any(getattr(w, "opacity", 1) == 0 for w in _lineage(widget)):
            continue
        x, y = widget.to_window(*widget.pos)
        out["texts"].append({"text": widget.text, "size": float(widget.font_size), "where": type(widget).__name__})
        natural = CoreLabel(text=widget.text, font_size=widget.font_size, font_name=widget.font_name,
                            bold=widget.bold, padding=widget.padding)
        natural.refresh()
        text_w, text_h = natural.texture.size
        wraps = widget.text_size[0] is not None and not widget.shorten
        if wraps:  # a text on as many lines as it needs: all of them inside the label
            widget.texture_update()
            text_w, text_h = widget.texture_size
        # (a texture is as tall as the font's ascent and descent; one line of letters needs the font size)
        if text_w > widget.width + 1 or min(text_h, widget.font_size if not wraps else text_h) > widget.height + 1:
            out["cut"].append(f"{widget.text} ({text_w:.0f}×{text_h:.0f} in {widget.width:.0f}×{widget.height:.0f})")
        if x < -0.5 or y < -0.5 or x + widget.width > window_w + 0.5 or y + widget.height > window_h + 0.5:
            out["outside"].append(widget.text)
        # the text's own box inside the label (halign/valign), for overlaps
        left = x + {"left": 0, "center": (widget.width - text_w) / 2, "right": widget.width - text_w}.get(
            widget.halign, 0)
        ink = min(text_h, widget.font_size, widget.height)
        bottom = y + (widget.height - ink) / 2
        boxes.append((widget.text, left, bottom, left + min(text_w, widget.width), bottom + ink))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            w = min(a[3], b[3]) - max(a[1], b[1])
            h = min(a[4], b[4]) - max(a[2], b[2])
            if w > 1 and h > 1:
                out["overlaps"].append(f"{a[0]} / {b[0]}")
    return out


def _lineage(widget: Any) -> list[Any]:
    chain = []
    while widget is not None and widget not in chain:
        chain.append(widget)
        widget = widget.parent
    return chain
