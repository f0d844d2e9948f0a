"""What's on: the house's events for the coming week (GET /events, then live from the retained events/today),
and signing up for one at the kiosk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kivy.core.text import Label as CoreLabel
from kivy.properties import BooleanProperty, DictProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from .. import model, theme
from ..client import HubAnswer
from .base import KioskScreen

SHOWN = 12  # events in the list: a week of a busy house still fits a few swipes

# Sizes in u, for whats_on.kv and for measuring a row's height here (one place for each number).
NOTE_SIZE, HEAD_SIZE, EXTRA_SIZE = 20, 21, 19  # font sizes
LINE_GAP, GAP = 2, 8  # between a row's two lines; between its text and its button
BUTTON_WIDTH, BUTTON_HEIGHT = 170, 56


def text_height(text: str, font_size: float, bold: bool, width: float) -> float:
    """The height a Label ``width`` wide gives ``text`` (measured as a Label widget draws it)."""
    label = CoreLabel(text=text, font_size=font_size, bold=bold, text_size=(max(width, 1), None))
    label.refresh()
    return label.texture.size[1] if label.texture is not None else 0


class EventRow(BoxLayout):
    """One event of the list (a RecycleView view): time and title, room and state, a sign-up button.

    Its height comes with its data, measured by the screen: a RecycleView whose views size themselves
    from their text keeps laying out and handing views to other rows, and never settles.
    """

    event = DictProperty()
    head = StringProperty("")
    head_colour = ListProperty(list(theme.TEXT))
    extra = StringProperty("")
    extra_colour = ListProperty(list(theme.MUTED_TEXT))
    extra_bold = BooleanProperty(False)
    signup_text = StringProperty("")  # "Sign up", "Join the waiting list", or "" (no button)
    signup_id = StringProperty("")  # the event's id when it has a button (a kv rule cannot watch event["id"])
    sign_up = ObjectProperty(None, allownone=True)  # the screen's sign_up(event)


class EventsScreen(KioskScreen):
    loaded = BooleanProperty(False)  # the hub has answered since the screen was opened
    available = BooleanProperty(True)  # False: the hub had no programme to give (yet)
    answers = NumericProperty(0)  # GET /events answers shown (tests wait on the count)
    followed = NumericProperty(0)  # events/today messages folded into the list (tests wait on the count)
    events = ListProperty()

    def on_kv_post(self, base_widget: Any) -> None:
        # Words and wrapping change with the language, the text size and the list's width.
        self.session.bind(lang=self.render, u=self.render)
        self.ids.events.bind(width=self.render)

    def detach(self) -> None:
        self.session.unbind(lang=self.render, u=self.render)

    def open(self) -> None:
        self.events, self.loaded, self.available = [], False, True
        self.render()
        self.show()
        self.reload()

    def reload(self) -> None:
        """Ask the hub again (after a sign-up or a refusal) without leaving the screen showing."""
        client = self.session.client
        self.session.run(lambda: client.events(7), self._answered)

    def _answered(self, answer: HubAnswer | None) -> None:
        self.answers += 1
        if answer is not None and answer.ok:
            body = answer.body
            items = body.get("events") if isinstance(body, dict) else body
            self.events, self.available = [e for e in items or [] if isinstance(e, dict)], True
        else:
            self.events, self.available = [], False
        self.loaded = True
        self.render()

    def follow(self, live: dict[str, Any]) -> None:
        """The hub's retained ``events/today`` (MQTT), on every change: the list follows it while it is open,
        with no request of its own. Until the hub has answered ``GET /events`` there is no list to follow."""
        if not (self.loaded and self.available):
            return
        self.events = model.follow_programme(list(self.events), live, self.session.now())
        self.followed += 1
        self.render()

    def render(self, *_args: Any) -> None:
        if not self.loaded:
            data = [self._note(self._("Just a moment…"))]
        elif not self.available:
            data = [self._note(self._("The programme of events will be shown here soon. "
                                      "Ask at the desk what's on today."))]
        elif not self.events:
            data = [self._note(self._("Nothing more on today."))]
        else:
            now = self.session.now()
            data = [self._row(event, now) for event in self.events[:SHOWN]]
        self.ids.events.data = data

    def _note(self, text: str) -> dict[str, Any]:
        width, u = self.ids.events.width, self.session.u
        return {"viewclass": "EventNote", "text": text, "height": text_height(text, NOTE_SIZE * u, False, width)}

    def _row(self, event: dict[str, Any], now: datetime) -> dict[str, Any]:
        span, title, extra = model.event_line(self._, event, now)
        strong = event.get("state") in ("cancelled", "sold_out")
        kind = model.signup_kind(event)
        head, u = f"{span}  {title}", self.session.u
        width = self.ids.events.width - ((BUTTON_WIDTH + GAP) * u if kind else 0)
        height = text_height(head, HEAD_SIZE * u, True, width)
        if extra:
            height += LINE_GAP * u + text_height(extra, EXTRA_SIZE * u, strong, width)
        return {"viewclass": "EventRow", "height": max(height, BUTTON_HEIGHT * u if kind else 0),
                "event": event, "head": head,
                "head_colour": list(theme.MUTED_TEXT if event.get("state") == "cancelled" else theme.TEXT),
                "extra": extra, "extra_bold": strong,
                "extra_colour": list(theme.ALERT_BG if strong else theme.MUTED_TEXT),
                "sign_up": self.sign_up, "signup_id": str(event.get("id") or "") if kind else "",
                "signup_text": "" if kind is None else (self._("Sign up") if kind == "seat"
                                                        else self._("Join the waiting list"))}

    # -- signing up -------------------------------------------------------------------------
    def sign_up(self, event: dict[str, Any]) -> None:
        session = self.session
        if session.busy or not session.hub_ok:
            return
        session.busy = True
        event_id, lang, site_name = str(event.get("id") or ""), session.lang, session.site_name
        key, signup = session.key("signup", event_id), self.screen("signup")
        signup.heading = self._("Just a moment…")

        def printing(answer: HubAnswer) -> Any:
            if not answer.ok or not isinstance(answer.body, dict):
                return None
            body = answer.body
            return signup.printing(lambda p: p.print_signup(body, site_name, lang, session.now()),
                                   str(body.get("code_display") or body.get("code") or ""))

        session.ask(lambda: session.client.signup(event_id, lang, key), lambda a: self._signed_up(event_id, a),
                    printing)

    def _signed_up(self, event_id: str, answer: HubAnswer) -> None:
        session = self.session
        session.busy = False
        if answer.ok and isinstance(answer.body, dict):
            session.settle("signup", event_id)
            self.screen("signup").present_signup(answer.body)
            return
        if answer.broken:  # the key is kept: "Sign up" again is the same sign-up
            session.hub_down()
        else:
            session.settle("signup", event_id)
            self.reload()  # the list was stale: show what is true now
        self.notice(model.signup_refusal(self._, answer.code))
