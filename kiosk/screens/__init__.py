"""The kiosk's screens: one module and one ``.kv`` each (layout in the .kv, the screen's flow in the module).

Each screen asks the hub, shows the answer and prints, over the shared
``kiosk.session.Session``; ``SCREENS`` is the order the app adds them in.
"""

from __future__ import annotations

from .base import KioskScreen
from .book import BookScreen
from .booked import BookedScreen
from .checkin import CheckinScreen
from .confirm import ConfirmScreen
from .home import HomeScreen
from .notice import NoticeScreen
from .signup import SignupScreen
from .slots import SlotsScreen
from .ticket import TicketScreen
from .whats_on import EventsScreen

SCREENS: tuple[type[KioskScreen], ...] = (HomeScreen, TicketScreen, CheckinScreen, NoticeScreen, EventsScreen,
                                          BookScreen, SlotsScreen, ConfirmScreen, BookedScreen, SignupScreen)

__all__ = ["SCREENS", "BookScreen", "BookedScreen", "CheckinScreen", "ConfirmScreen", "EventsScreen", "HomeScreen",
           "KioskScreen", "NoticeScreen", "SignupScreen", "SlotsScreen", "TicketScreen"]
