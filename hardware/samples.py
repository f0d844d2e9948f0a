"""Sample receipts from the sample site (server/sites/sample.toml): for tests, docs, bench and demo."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from .receipts import BookingCheckIn, EventSignup, QueueTicket, Receipt

TZ = ZoneInfo("Europe/Copenhagen")
SITE = "Sønderbro Bibliotek & Borgerservice"
AT = datetime(2026, 3, 12, 14, 5, tzinfo=TZ)

KVIK = {"da": "KVIK – hurtig hjælp", "en": "KVIK quick desk", "sv": "KVIK – snabb hjälp",
        "fi": "KVIK – pikapalvelu", "nl": "KVIK – snelle balie"}
BORGERSERVICE = {"da": "Borgerservice", "en": "Citizen service", "sv": "Medborgarservice",
                 "fi": "Kansalaispalvelu", "nl": "Burgerzaken"}
EVENT = {"da": "IT-café for seniorer: kom godt i gang med MitID og e-Boks",
         "en": "IT café for seniors: getting started with MitID and e-Boks",
         "sv": "IT-kafé för seniorer: kom igång med BankID och e-tjänster",
         "fi": "Digitaitokahvila ikäihmisille: pankkitunnukset ja sähköiset palvelut",
         "nl": "Digicafé voor senioren: aan de slag met DigiD en e-mail"}


def queue_ticket(lang: str = "da", *, url: bool = True) -> QueueTicket:
    return QueueTicket(SITE, KVIK[lang], "K042", 3, AT, lang, wait_minutes=12,
                       place_url="https://ko.sonderbro.example/p/K042-7Q" if url else None)


def booking(lang: str = "da") -> BookingCheckIn:
    return BookingCheckIn(SITE, BORGERSERVICE[lang], "B007", AT.replace(minute=15), "NWS7AL", AT, lang,
                          code_display="NWS-7AL")


def event(lang: str = "da", *, seat: bool = True) -> EventSignup:
    return EventSignup(SITE, EVENT[lang], AT.replace(day=19, hour=17, minute=0), "Salen, 1. sal",
                       "9WQ3XW", AT, lang, seat="14" if seat else None,
                       waiting_place=None if seat else 3, code_display="9WQ-3XW")


def all_samples() -> dict[str, tuple[Receipt, int]]:
    """name → (receipt, paper mm): the set drawn in docs/receipts/ and kept as golden bytes."""
    return {
        "queue_ticket_80_da": (queue_ticket("da"), 80),
        "queue_ticket_58_da": (queue_ticket("da"), 58),
        "queue_ticket_80_fi": (queue_ticket("fi"), 80),
        "booking_checkin_80_da": (booking("da"), 80),
        "booking_checkin_58_sv": (booking("sv"), 58),
        "event_signup_80_nl": (event("nl"), 80),
        "event_signup_58_da": (event("da"), 58),
        "event_signup_80_sv_waiting": (event("sv", seat=False), 80),
    }
