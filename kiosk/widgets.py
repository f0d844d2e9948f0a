"""The kiosk's own widgets (their looks are in ``widgets.kv``).

Lists that scroll (free times, what's on) are RecycleViews. The small
fixed grids that share the screen's space among a handful of buttons
(service tiles, language buttons, day tabs, the keypad, a notice's
actions) are ``DataGrid`` / ``DataBox``: drawn from ``data`` the same
way, one ``viewclass`` widget per dict, reused when the data changes, but
laid out by a plain GridLayout or BoxLayout. A RecycleView would not fit
them: it scrolls, sizes every view from data or defaults instead of
sharing the free space, and creates views lazily after layout, which a
grid of at most 32 buttons that is always fully visible gains nothing from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.factory import Factory
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.modalview import ModalView

from . import theme

_STANDARD = theme.colours("standard")


def _in_palette(button: Any, bg: str, fg: str) -> None:
    """A button whose colours no rule, argument or data has set keeps its class's default, which is the
    standard palette's: in another palette (theme.use()) it takes that palette's colour instead. Setting
    the default through the constructor would not do: kv's constant rules (``bg: theme.KEY_BG`` for the
    code keyboard's keys) do not override a constructor's arguments."""
    if theme.PALETTE == "standard":
        return
    if list(button.bg) == list(_STANDARD[bg]):
        button.bg = list(getattr(theme, bg))
    if list(button.fg) == list(_STANDARD[fg]):
        button.fg = list(getattr(theme, fg))


class Tappable:
    """``action(widget)`` runs on release: how a list's data says what a tap does."""

    action: Callable[[Any], None] | None = ObjectProperty(None, allownone=True)

    def on_release(self) -> None:
        if self.action is not None:
            self.action(self)


class KButton(Tappable, Button):
    """The kiosk's button (looks in widgets.kv). ``spoken``: its words in speech mode, when they are not
    its text ("A+" says "Larger text")."""

    bg = ListProperty(list(_STANDARD["NAV_BG"]))
    fg = ListProperty(list(_STANDARD["NAV_FG"]))
    spoken = StringProperty("")
    chosen = BooleanProperty(False)  # the chosen one of a group (a language, a day, a length): said in speech mode

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _in_palette(self, "NAV_BG", "NAV_FG")


class ServiceTile(Tappable, Button):
    """One service: its name large, its wait or state below."""

    title = StringProperty("")
    line = StringProperty("")
    service = StringProperty("")
    kind = StringProperty("walk_in")
    waiting = NumericProperty(0)
    bg = ListProperty(list(_STANDARD["WALK_IN_BG"]))
    fg = ListProperty(list(_STANDARD["WALK_IN_FG"]))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _in_palette(self, "WALK_IN_BG", "WALK_IN_FG")


class DataLayout:
    """``data`` (a list of dicts) → one ``viewclass`` widget each, in order, attributes set from the dict.

    Like RecycleView's data, every dict of a list has the same keys, so a reused widget never keeps
    a value of the item it showed before.
    """

    data = ListProperty()
    viewclass = StringProperty("KButton")

    def on_data(self, _layout: Any, data: list[dict[str, Any]]) -> None:
        views = list(reversed(self.children))  # type: ignore[attr-defined]
        while len(views) > len(data):
            self.remove_widget(views.pop())  # type: ignore[attr-defined]
        while len(views) < len(data):
            views.append(getattr(Factory, self.viewclass)())
            self.add_widget(views[-1])  # type: ignore[attr-defined]
        for view, item in zip(views, data, strict=True):
            for name, value in item.items():
                setattr(view, name, value)


class DataGrid(DataLayout, GridLayout):
    pass


class DataBox(DataLayout, BoxLayout):
    pass


class IdleWarning(ModalView):
    """"Are you still there?" before the kiosk moves on (EN 301 549 11.2.2.1); any touch gives more time."""

    def on_touch_down(self, touch: Any) -> bool:
        from kivy.app import App

        App.get_running_app().session.poke()
        return super().on_touch_down(touch)
