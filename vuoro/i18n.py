"""Translations from gettext ``.po`` catalogs, read directly at start-up with polib.

Each part keeps its own catalogs beside its code (``kiosk/locale/da.po``,
``hardware/locale/sv.po``, ...) in the ordinary gettext format, so
translators can use Poedit or any ``.po`` tool. Reading the ``.po`` text
(with polib, a small pure-Python library every device installs) avoids a
compile step (``msgfmt``) that a fresh Pi may not have.

Languages used by the sites: da, sv, fi, nl and en. English is the source
language: its catalog may be empty, and ``untranslated()`` lets a test prove
that no English leaks into another language.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache
from pathlib import Path

import polib

LANGUAGES = ("da", "sv", "fi", "nl", "en")
# Each language's name in itself, for the language buttons.
NATIVE_NAMES = {"da": "Dansk", "sv": "Svenska", "fi": "Suomi", "nl": "Nederlands", "en": "English"}


class PoCatalog(gettext.NullTranslations):
    """A gettext catalog read from a ``.po`` file: msgid → msgstr."""

    def __init__(self, messages: dict[str, str]):
        super().__init__()
        self.messages = messages

    def gettext(self, message: str) -> str:
        return self.messages.get(message) or message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return self.gettext(msgid1 if n == 1 else msgid2)


def read_po(path: Path) -> dict[str, str]:
    """msgid → msgstr for every entry with a translation that is not fuzzy (nor obsolete); msgctxt is not
    used by Vuoro's catalogs, and plural entries have no msgstr of their own, so neither is looked at."""
    return {entry.msgid: entry.msgstr for entry in polib.pofile(str(path), encoding="utf-8")
            if entry.msgid and entry.msgstr and not entry.obsolete and "fuzzy" not in entry.flags}


@cache
def catalog(locale_dir: Path, language: str) -> PoCatalog:
    path = Path(locale_dir) / f"{language}.po"
    return PoCatalog(read_po(path) if path.exists() else {})


def translator(locale_dir: Path, language: str) -> Callable[[str], str]:
    """A ``_`` function for one language of one part."""
    return catalog(Path(locale_dir), language).gettext


def untranslated(locale_dir: Path, language: str, msgids: list[str]) -> list[str]:
    """The msgids that have no translation in ``language``: for tests."""
    messages = catalog(Path(locale_dir), language).messages
    return [m for m in msgids if m not in messages]
