"""Book a time, step two: the chosen service's free times, one tab per day, and "Now – free right away"."""

from __future__ import annotations

from datetime import date
from typing import Any

from kivy.properties import DictProperty, NumericProperty, ObjectProperty, StringProperty

from .. import model, theme
from ..client import HubAnswer
from .base import KioskScreen

DAYS = 7  # tabs: a week ahead


class SlotsScreen(KioskScreen):
    service = StringProperty("")
    title = StringProperty("")  # the service's name
    answer = DictProperty()  # the service's GET /slots answer shown
    day: date | None = ObjectProperty(None, allownone=True)  # the chosen tab
    message = StringProperty("")  # "Someone else has just booked that time…" above the refreshed list
    now_text = StringProperty("")  # the here-and-now button's words; empty when not offered
    shown = NumericProperty(0)  # GET /slots answers shown (tests wait on the count)

    def choose(self, service: str, answer: dict[str, Any]) -> None:
        self.service, self.title = service, self.session.service_title(service)
        self.day, self.message = None, ""
        self.present(answer)

    def present(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.screen("book").bookable[self.service] = answer  # "Next free time" on the way back is today's truth
        today = self.session.now().date()
        days = model.slot_days(answer.get("slots"))[:DAYS]
        if self.day not in [day for day, _slots in days]:
            self.day = days[0][0] if days else today
        self.ids.days.data = [self._tab(day, today) for day, _slots in days]
        now = answer.get("here_and_now")
        start = model.parse_time(now.get("start")) if isinstance(now, dict) else None
        end = model.parse_time(now.get("end")) if isinstance(now, dict) else None
        self.now_text = (self._("Now – free right away ({span})").format(
            span=start.strftime("%H:%M") + "–" + end.strftime("%H:%M"))
            if start and end and self.day == today else "")
        self.ids.slots.data = [
            {"text": start.strftime("%H:%M"), "slot": slot, "action": lambda button: self.pick(button.slot)}
            for slot in dict(days).get(self.day, []) for start in [model.parse_time(slot.get("start"))] if start]
        if not days and not self.now_text:
            self.message = self.message or self._("There are no free times in the next days. Please ask at the desk.")
        self.shown += 1
        self.show()

    def _tab(self, day: date, today: date) -> dict[str, Any]:
        chosen = day == self.day
        label = model.day_label(self._, day, today, short=True)
        dated = "/" in label  # "tor 26/11" on two lines; "I dag" stays on one
        return {"text": "\n".join(label.rsplit(" ", 1)) if dated else label, "day": day, "bold": chosen,
                "bg": theme.LANG_ON_BG if chosen else theme.LANG_BG,
                "fg": theme.LANG_ON_FG if chosen else theme.LANG_FG,
                "action": lambda button: self.choose_day(button.day)}

    def choose_day(self, day: date) -> None:
        self.day, self.message = day, ""
        self.present(self.answer)
        self.ids.slots.scroll_y = 1  # back to the top

    def refresh(self) -> None:
        """Ask the hub again for this service's times (after one was taken meanwhile)."""
        service, client = self.service, self.session.client
        self.session.run(lambda: client.slots(service, DAYS), lambda answer: self._refreshed(service, answer))

    def _refreshed(self, service: str, answer: HubAnswer | None) -> None:
        if answer is None or answer.broken:
            self.session.hub_down()
            self.notice(model.hub_down(self._))
            return
        if service != self.service or self.manager.current not in ("slots", "confirm", "notice", "book"):
            return
        if answer.ok and isinstance(answer.body, dict):
            self.present(answer.body)
        else:
            self.notice(model.booking_refusal(self._, answer.code))

    def pick(self, slot: dict[str, Any] | None) -> None:
        """A time (or None: the here-and-now slot) chosen: ask the visitor to confirm it."""
        if not self.session.hub_ok:
            return
        chosen = slot if slot is not None else self.answer.get("here_and_now")
        if isinstance(chosen, dict):
            self.screen("confirm").ask(self.service, self.title, chosen, now=slot is None)
