"""Regenerate docs/screenshots/kiosk/: every screen, every language, from a real window.

Run under a real X server (Xvfb), once per size::

    xvfb-run -a -s "-screen 0 1080x1920x24" .venv/bin/python -m toolkit.kiosk_screenshots --size 800x480
    xvfb-run -a -s "-screen 0 1080x1920x24" .venv/bin/python -m toolkit.kiosk_screenshots --size 1080x1920

and the accessibility variants (issue 20) into ``<size>-<variant>/``, with the keypad's focus ring::

    ... --size 1080x1920 --layout low --languages da,en
    ... --size 800x480 --palette high_contrast --languages da,en
    ... --size 1080x1920 --layout low --palette high_contrast --text-scale 2.0 --languages da

It starts its own Mosquitto, a hub on the sample site (KVIK and the
librarian open, citizen service booking-only, IT help closed until
tomorrow 10:00) and a virtual printer, then drives the app as a visitor
would and saves ``<size>/<lang>-<screen>.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "screenshots" / "kiosk"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCREENS = ("home", "ticket", "ticket-printer-failure", "checkin", "checkin-slowed", "checkin-event", "hub-down",
           "whats-on", "signup", "book-services", "book-slots", "book-slots-30", "book-confirm", "booked")
ALL_DAY_CAPACITY = ('capacity = [ { days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], '
                    'hours = "00:00-24:00", staff = 1 } ]')


def demo_site(tmp: Path) -> Path:
    """The sample site with hours that give every state whatever the time of day."""
    text = (REPO / "server" / "sites" / "sample.toml").read_text(encoding="utf-8")
    all_day = "{ " + ", ".join(f'{d} = ["00:00-24:00"]' for d in WEEKDAYS) + " }"
    tomorrow = WEEKDAYS[(datetime.now(ZoneInfo("Europe/Copenhagen")) + timedelta(days=1)).weekday()]
    out, section, skipping = [], "", False
    booking = ""
    for line in text.splitlines():
        if skipping:  # inside a multi-line exceptions = [...] (holidays would close a service on that day)
            skipping = not line.startswith("]")
            continue
        if line.startswith("["):
            booking = line.strip("[]") if line.endswith(".booking]") else ""
        if booking == "services.bibliotekar.booking" and line.startswith("capacity"):
            # A librarian round the clock: the "Now – free right away" slot shows whatever the hour.
            skipping = not line.rstrip().endswith("]")
            out.append(ALL_DAY_CAPACITY)
            continue
        if line.startswith("[services."):
            section = line.strip("[]").split(".")[1]
        if section and line.startswith("hours ="):
            line = f'hours = {{ {tomorrow} = ["10:00-13:00"] }}' if section == "it" else f"hours = {all_day}"
        if section and line.startswith("exceptions"):
            skipping = not line.rstrip().endswith("]")
            continue
        if line.startswith("[counters."):
            section = ""
        out.append(line)
    path = tmp / "site.toml"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="800x480")
    parser.add_argument("--languages", default="da,sv,fi,nl,en")
    parser.add_argument("--layout", default="standard", choices=("standard", "low"))
    parser.add_argument("--palette", default="standard", choices=("standard", "high_contrast"))
    parser.add_argument("--text-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    variant = "-".join(v for v in (args.layout if args.layout != "standard" else "",
                                   "contrast" if args.palette != "standard" else "",
                                   f"text{args.text_scale:g}" if args.text_scale != 1.0 else "") if v)
    width, height = (int(v) for v in args.size.split("x"))
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_CONFIG", "1")
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="vuoro-kivy-"))
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "0")

    import requests

    from hardware.virtual import VirtualPrinter
    from kiosk.app import KioskApp
    from kiosk.client import HubAnswer
    from kiosk.config import KioskConfig
    from kiosk.driver import Driver
    from toolkit.broker import Broker
    from toolkit.hub_process import HubProcess

    folder = OUT / (f"{args.size}-{variant}" if variant else args.size)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="vuoro-shots-"))
    with Broker() as broker, VirtualPrinter() as printer:
        hub = HubProcess(demo_site(tmp), tmp, broker.url).start()
        try:
            url = hub.url
            staff = {"Authorization": "Bearer demo-staff-token-change-me"}
            for i in range(3):  # a realistic queue: a few people waiting for KVIK
                requests.post(url + "/api/v1/tickets", json={"service": "kvik"}, timeout=5,
                              headers={**staff, "Idempotency-Key": f"shots-{i}-{time.time_ns()}"})
            today = datetime.now(ZoneInfo("Europe/Copenhagen")).replace(second=0, microsecond=0)
            soon = (today + timedelta(hours=1)).replace(minute=0)
            tomorrow = (today + timedelta(days=1)).replace(hour=10, minute=0)

            def event(title: str, start: datetime, room: str, **extra: object) -> str:
                answer = requests.post(url + "/api/v1/events", headers=staff, timeout=5, json={
                    "title": title, "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(),
                    "room": room, **extra})
                answer.raise_for_status()
                return str(answer.json()["id"])

            cafe = event("Sprogcafé: tal dansk over en kop kaffe", soon, "Caféen", seats=12)
            event("Babysalmesang", soon + timedelta(hours=1), "Børnebiblioteket")
            event("IT-café for seniorer: kom godt i gang med MitID", tomorrow, "Salen", seats=8)
            full = event("Forfattermøde med Ida Jessen", tomorrow.replace(hour=19), "Salen", seats=1,
                         waiting_list=0)
            requests.post(url + f"/api/v1/events/{full}/signups", json={}, timeout=5,
                          headers={**staff, "Idempotency-Key": f"shots-full-{time.time_ns()}"})
            gone = event("Strikkeklub", tomorrow.replace(hour=15), "Mødelokale 2")
            requests.delete(url + f"/api/v1/events/{gone}", headers=staff, timeout=5)
            # A visitor signed up for the café checks in for it with the sign-up's code (before the wrong codes
            # below slow this kiosk down): the hub's answer, shown in each language.
            kiosk1 = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
            signed = requests.post(url + f"/api/v1/events/{cafe}/signups", json={}, timeout=5,
                                   headers={**kiosk1, "Idempotency-Key": f"shots-cafe-{time.time_ns()}"}).json()
            attended = requests.post(url + "/api/v1/checkins", json={"code": signed["code"]}, timeout=5,
                                     headers={**kiosk1, "Idempotency-Key": f"shots-attend-{time.time_ns()}"})
            for i in range(6):  # someone has tried six wrong booking codes at this kiosk: the next one waits
                requests.post(url + "/api/v1/checkins", json={"code": f"ZZZZZ{i + 2}"}, timeout=5, headers={
                    "Authorization": "Bearer demo-kiosk1-token-change-me", "Idempotency-Key": f"shots-guess-{i}x"})
            config = KioskConfig(hub=url, token="demo-kiosk1-token-change-me", broker=broker.url,
                                 printer=printer.url, language="da", probe_seconds=3600, fullscreen=False,
                                 layout=args.layout, palette=args.palette, text_scale=args.text_scale)
            app = KioskApp(config)
            d = Driver(app, (width, height))
            d.wait(lambda: app.screen("home").ids.tiles.children, 15, "tiles")

            def shot(lang: str, name: str) -> None:
                if variant:  # the keypad's focus ring on the first control, as after a key
                    app.keypad_used = True
                    app.focus.clear()
                    d.pump(2)
                    app._follow()
                d.screenshot(str(folder / f"{lang}-{name}.png"))

            def tap(widget: Any) -> None:
                app.show_focused(widget)  # at the 2.0 text step the screen scrolls: a finger would scroll first
                d.pump(2)
                d.tap(widget)

            def tile(service: str) -> object:
                return next(t for t in app.screen("home").ids.tiles.children if t.service == service)

            session, ticket, checkin = app.session, app.screen("ticket"), app.screen("checkin")
            events, slots = app.screen("events"), app.screen("slots")
            for lang in args.languages.split(","):
                app.go("home")
                session.set_language(lang)
                d.pump(3)
                shot(lang, "home")
                printer.set_paper("ok")
                tap(tile("kvik"))
                d.wait(lambda: app.sm.current == "ticket" and ticket.printed is not None, 15, "ticket")
                shot(lang, "ticket")
                app.go("home")
                printer.set_paper("out")
                tap(tile("kvik"))  # not the librarian: a waiting ticket there would hide "Now – free right away"
                d.wait(lambda: app.sm.current == "ticket" and ticket.printed is not None, 15, "failed print")
                shot(lang, "ticket-printer-failure")
                printer.set_paper("ok")
                app.go("checkin")
                for char in "7KQ3":
                    checkin.press(char)
                shot(lang, "checkin")
                checkin.check_in("ZZZZZZ")
                d.wait(lambda: app.sm.current == "notice" and not session.busy, 15, "the check-in answer")
                shot(lang, "checkin-slowed")
                checkin._answered(signed["code"], HubAnswer(attended.status_code, attended.json()))
                d.pump(3)
                shot(lang, "checkin-event")
                app.go("home")
                session.hub_down()
                shot(lang, "hub-down")
                session.hub_up()
                app.go("events")
                d.wait(lambda: events.loaded and _views(events.ids.events), 10, "events")
                shot(lang, "whats-on")
                cafe = next(w for w in _walk(events) if getattr(w, "event_id", None))
                tap(cafe)
                d.wait(lambda: app.sm.current == "signup" and app.screen("signup").receipt is not None, 15, "sign-up")
                shot(lang, "signup")
                app.go("home")
                app.go("book")
                d.wait(lambda: len(app.screen("book").ids.services.children) == 2, 15, "bookable services")
                shot(lang, "book-services")
                app.screen("book").choose("bibliotekar")  # the times came with the services: no request
                d.wait(lambda: app.sm.current == "slots" and _views(slots.ids.slots), 15, "slots")
                shot(lang, "book-slots")
                slots.choose_length(2)  # a double slot: 30 minutes, only the starts with the next slot free too
                d.pump(3)
                shot(lang, "book-slots-30")
                slots.choose_length(1)
                d.pump(3)
                tap(next(v for v in _views(slots.ids.slots) if getattr(v, "slot", None)))
                d.wait(lambda: app.sm.current == "confirm", 15, "confirm")
                shot(lang, "book-confirm")
                tap(app.screen("confirm").ids.confirm_button)
                d.wait(lambda: app.sm.current == "booked" and app.screen("booked").receipt is not None, 15, "booked")
                shot(lang, "booked")
            d.stop()
        finally:
            hub.stop()
    names = sorted(p.name for p in folder.glob("*.png"))
    print(f"{len(names)} screenshots in {folder}")
    return 0


def _views(recycle_view: Any) -> list[Any]:
    """A RecycleView's views on screen, in the order of its data."""
    placed = recycle_view.layout_manager.view_indices
    return sorted(placed, key=placed.get)


def _walk(widget: object) -> list[object]:
    found = [widget]
    for child in getattr(widget, "children", []):
        found += _walk(child)
    return found


if __name__ == "__main__":
    sys.exit(main())


