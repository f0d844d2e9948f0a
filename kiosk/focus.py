"""The keypad's focus: which control of the screen in front of the visitor is chosen by 5 / Enter.

The controls are the buttons of what is showing (the idle warning when it
is open, else the current screen), in reading order: top to bottom, then
left to right. 4 and 6 go to the previous and next one (round the end);
8 and 2 go to the nearest one above or below (rows of the code keyboard,
of free times), or the previous / next when there is none. A control
that is hidden (no size, transparent) is no control.

What a control says when it gets the focus is ``spoken_label``: its text,
a service tile's name and wait, a language button's name (in its own
voice, see ``kiosk/voice.py``), and "not available" when it is disabled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.widget import Widget


def walk(widget: Widget) -> Iterator[Widget]:
    yield widget
    for child in reversed(widget.children):
        yield from walk(child)


def visible(widget: Widget) -> bool:
    node: Any = widget
    while node is not None and node is not node.parent:
        if getattr(node, "opacity", 1) <= 0:
            return False
        node = node.parent
    return widget.width > 1 and widget.height > 1


def window_box(widget: Widget) -> tuple[float, float, float, float]:
    x, y = widget.to_window(widget.x, widget.y)
    return x, y, widget.width, widget.height


def reading_order(widgets: list[Widget]) -> list[Widget]:
    """Top to bottom (window y grows upwards), then left to right; rows share a band of half a control."""

    def key(widget: Widget) -> tuple[float, float]:
        x, y, _w, h = window_box(widget)
        return (-round((y + h) / max(h / 2, 1)) * max(h / 2, 1), x)

    return sorted(widgets, key=key)


def controls(root: Widget) -> list[Widget]:
    return reading_order([w for w in walk(root) if isinstance(w, Button) and visible(w) and _on_screen(w)])


def texts(root: Widget) -> list[str]:
    """What the screen says, in reading order: its labels that are not buttons (a label's own ``spoken``
    words when it has them: a code is spelt)."""
    labels = [w for w in walk(root) if isinstance(w, Label) and not isinstance(w, Button) and visible(w)
              and _on_screen(w) and str(w.text).strip() and str(w.text).strip() != "–"]
    return [str(getattr(w, "spoken", "") or w.text) for w in reading_order(labels)]


def _on_screen(widget: Widget) -> bool:
    """Inside the window, or in a list or screen that scrolls it into view when it gets the focus."""
    from kivy.core.window import Window
    from kivy.uix.scrollview import ScrollView

    x, y, w, h = window_box(widget)
    if x + w > 0 and y + h > 0 and x < Window.width and y < Window.height:
        return True
    node = widget.parent
    while node is not None and node is not node.parent:
        if isinstance(node, ScrollView) and node.do_scroll_y:
            return True
        node = node.parent
    return False


class Focus:
    """The focused control of one screen; ``move`` and ``current`` keep it valid as the screen changes."""

    def __init__(self) -> None:
        self.widget: Widget | None = None

    def clear(self) -> None:
        self.widget = None

    def current(self, root: Widget) -> Widget | None:
        found = controls(root)
        if self.widget not in found:
            self.widget = found[0] if found else None
        return self.widget

    def move(self, root: Widget, direction: str) -> Widget | None:
        found = controls(root)
        if not found:
            self.widget = None
            return None
        if self.widget not in found:
            self.widget = found[0]
            return self.widget
        index = found.index(self.widget)
        if direction in ("up", "down"):
            target = _nearest(self.widget, found, direction)
            if target is not None:
                self.widget = target
                return target
            direction = "previous" if direction == "up" else "next"
        step = -1 if direction == "previous" else 1
        self.widget = found[(index + step) % len(found)]
        return self.widget

    def position(self, root: Widget) -> tuple[int, int]:
        found = controls(root)
        return (found.index(self.widget) + 1 if self.widget in found else 0), len(found)


def _nearest(origin: Widget, found: list[Widget], direction: str) -> Widget | None:
    ox, oy, ow, oh = window_box(origin)
    cx, cy = ox + ow / 2, oy + oh / 2
    best, best_cost = None, float("inf")
    for widget in found:
        if widget is origin:
            continue
        x, y, w, h = window_box(widget)
        wx, wy = x + w / 2, y + h / 2
        dy = wy - cy if direction == "up" else cy - wy
        if dy < max(oh, h) / 2:  # not in that direction (the same row)
            continue
        cost = dy + 2 * abs(wx - cx)
        if cost < best_cost:
            best, best_cost = widget, cost
    return best


def spoken_label(widget: Widget, tr: Any) -> str:
    """The words for a control: its own ``spoken`` if it has one, else what it shows."""
    words = str(getattr(widget, "spoken", "") or "")
    if not words:
        title, line = getattr(widget, "title", None), getattr(widget, "line", None)
        words = f"{title}. {line}" if title is not None and line is not None else str(widget.text)
    if getattr(widget, "chosen", False):
        words += ", " + tr("chosen")
    if widget.disabled:
        words += ". " + tr("not available")
    return words
