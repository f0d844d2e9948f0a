"""Book a time, step two: the chosen service's free times for one day at a time, and "Now – free right away".

The day tabs choose a day; the chosen day is written out above its times ("Today, Monday 30/11") in a
panel joined to its tab, and the times stand in rows of an hour (:00 :15 :30 :45), so no time reads as
belonging to the tab above it. A service that takes double slots offers "15 min" and "30 min": with 30,
only the starts whose next slot is free too.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from kivy.properties import BooleanProperty, DictProperty, NumericProperty, ObjectProperty, StringProperty

from .. import model, theme
from ..client import HubAnswer
from .base import KioskScreen

DAYS = 7  # tabs: a week ahead
LENGTHS = (1, 2)  # a slot, a double slot


class SlotsScreen(KioskScreen):
    service = StringProperty("")
    title = StringProperty("")  # the service's name
    answer = DictProperty()  # the service's GET /slots answer shown
    day: date | None = ObjectProperty(None, allownone=True)  # the chosen tab
    heading = StringProperty("")  # the chosen day, in full, above its times
    length = NumericProperty(1)  # slots per booking: 2 is a double slot (30 minutes)
    can_double = BooleanProperty(False)  # the service takes double slots: offer the choice of length
    cols = NumericProperty(4)  # the times' columns: the slots of an hour
    message = StringProperty("")  # "Someone else has just booked that time…" above the refreshed list
    now_text = StringProperty("")  # the here-and-now button's words; empty when not offered
    shown = NumericProperty(0)  # GET /slots answers shown (tests wait on the count)
    back_to = StringProperty("book")  # where "Back" goes: the choice of service, or home (from a tile)

    def choose(self, service: str, answer: dict[str, Any], *, back_to: str = "book") -> None:
        self.service, self.title, self.back_to = service, self.session.service_title(service), back_to
        self.day, self.message, self.length = None, "", 1
        self.present(answer)

    def present(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.screen("book").bookable[self.service] = answer  # "Next free time" on the way back is today's truth
        today = self.session.now().date()
        slot_min = answer.get("slot_min")
        self.can_double = isinstance(answer.get("max_slots"), int) and answer["max_slots"] >= 2
        if not self.can_double:
            self.length = 1
        days = model.slot_days(answer.get("slots"), int(self.length))[:DAYS]
        if self.day not in [day for day, _slots in days]:
            self.day = days[0][0] if days else today
        self.heading = model.day_heading(self._, self.day, today)
        self.ids.days.data = [self._tab(day, today) for day, _slots in days]
        self.ids.lengths.data = [self._length(n, slot_min) for n in LENGTHS] if self.can_double else []
        now = answer.get("here_and_now") if self.length == 1 else None
        start = model.parse_time(now.get("start")) if isinstance(now, dict) else None
        end = model.parse_time(now.get("end")) if isinstance(now, dict) else None
        self.now_text = (self._("Now – free right away ({span})").format(
            span=start.strftime("%H:%M") + "–" + end.strftime("%H:%M"))
            if start and end and self.day == today else "")
        self.cols, cells = model.time_rows(dict(days).get(self.day, []), slot_min)
        self.ids.slots.data = [self._cell(cell) for cell in cells]
        if not days and not self.now_text:
            self.message = self.message or self._("There are no free times in the next days. Please ask at the desk.")
        self.shown += 1
        self.show()

    def _cell(self, slot: dict[str, Any] | None) -> dict[str, Any]:
        start = model.parse_time(slot.get("start")) if slot else None
        if slot is None or start is None:
            return {"viewclass": "SlotGap"}  # a time of this hour that is taken or past: its column stays
        return {"viewclass": "SlotButton", "text": start.strftime("%H:%M"), "slot": slot,
                "action": lambda button: self.pick(button.slot)}

    def _tab(self, day: date, today: date) -> dict[str, Any]:
        chosen = day == self.day
        label = model.day_label(self._, day, today, short=True)
        dated = "/" in label  # "tor 26/11" on two lines; "I dag" stays on one
        return {"text": "\n".join(label.rsplit(" ", 1)) if dated else label, "day": day, "bold": chosen,
                "chosen": chosen,
                "bg": theme.LANG_ON_BG if chosen else theme.LANG_BG,
                "fg": theme.LANG_ON_FG if chosen else theme.LANG_FG,
                "action": lambda button: self.choose_day(button.day)}

    def _length(self, slots: int, slot_min: Any) -> dict[str, Any]:
        chosen = slots == self.length
        minutes = slots * slot_min if isinstance(slot_min, int) else slots * 15
        return {"text": self._("{minutes} min").format(minutes=minutes), "length": slots, "bold": chosen,
                "chosen": chosen,
                "bg": theme.LANG_ON_BG if chosen else theme.LANG_BG,
                "fg": theme.LANG_ON_FG if chosen else theme.LANG_FG,
                "action": lambda button: self.choose_length(button.length)}

    def choose_day(self, day: date) -> None:
        self.day, self.message = day, ""
        self.present(self.answer)
        self.ids.slots.scroll_y = 1  # back to the top

    def choose_length(self, slots: int) -> None:
        """15 or 30 minutes: the same day if it has times of that length, else the first day that does."""
        self.length, self.message = slots, ""
        self.present(self.answer)
        self.ids.slots.scroll_y = 1

    def back(self) -> None:
        if self.back_to == "book":
            self.screen("book").back()
        else:
            self.screen("home").open()

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
