"""A code to keep (a booking's, a sign-up's): large, with what to do with it, and how its receipt printed."""

from __future__ import annotations

from collections.abc import Callable

from kivy.properties import BooleanProperty, ObjectProperty, StringProperty

from .. import model
from ..printing import KioskPrinter, PrintOutcome
from .base import KioskScreen


class CodeScreen(KioskScreen):
    """The layout of ``BookedScreen`` and ``SignupScreen`` (code.kv); each fills in its own words."""

    heading = StringProperty("")
    about = StringProperty("")
    big = StringProperty("")
    code_label = StringProperty("")
    code = StringProperty("")
    instruction = StringProperty("")
    receipt_text = StringProperty("")  # "Printing your receipt…", or why it did not print
    receipt_failed = BooleanProperty(False)
    receipt: PrintOutcome | None = ObjectProperty(None, allownone=True)  # None until the printer has answered

    def present(self) -> None:
        """Show the code (the caller has set it) before the receipt is printed."""
        self.receipt, self.receipt_failed = None, False
        self.receipt_text = self._("Printing your receipt…") if self.session.prints else ""
        self.show()

    def printing(self, make: Callable[[KioskPrinter], PrintOutcome], code: str) -> Callable[[], None]:
        """(worker thread) Print the receipt; what the screen says afterwards."""
        outcome = self.session.print_receipt(make)
        return lambda: self._printed(outcome, code)

    def _printed(self, outcome: PrintOutcome, code: str) -> None:
        self.receipt = outcome
        self.receipt_text, self.receipt_failed = model.after_printing(
            self._, outcome.printed, outcome.state, done=self._("Take your receipt."),
            no_printer=self._("Please write down your code."),
            keep=self._("Please write down your code: {code}").format(code=code))
