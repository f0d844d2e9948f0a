"""Translations from gettext ``.po`` catalogs, read directly at start-up.

Each part keeps its own catalogs beside its code (``kiosk/locale/da.po``,
``hardware/locale/sv.po``, ...) in the ordinary gettext format, so
translators can use Poedit or any ``.po`` tool. Reading the ``.po`` text
directly avoids a compile step (``msgfmt``) that a fresh Pi may not have.

Languages used by the sites: da, sv, fi, nl and en. English is the source
language: its catalog may be empty, and ``untranslated()`` lets a test prove
that no English leaks into another language.
"""

from __future__ import annotations

import ast
import gettext
from collections.abc import Callable
from functools import cache
from pathlib import Path

LANGUAGES = ("da", "sv", "fi", "nl", "en")
# Each language's name in itself, for the language buttons.
NATIVE_NAMES = {"da": "Dansk", "sv": "Svenska", "fi": "Suomi", "nl": "Nederlands", "en": "English"}


class PoCatalog(gettext.NullTranslations):
    """A gettext catalog parsed from a ``.po`` file (msgid/msgstr, msgctxt ignored)."""

    def __init__(self, messages: dict[str, str]):
        super().__init__()
        self.messages = messages

    def gettext(self, message: str) -> str:
        return self.messages.get(message) or message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return self.gettext(msgid1 if n == 1 else msgid2)


def parse_po(text: str) -> dict[str, str]:
    """msgid → msgstr for every entry with a non-empty translation."""
    messages: dict[str, str] = {}
    current: dict[str, str] = {}
    field: str | None = None

    def flush() -> None:
        msgid, msgstr = current.get("msgid"), current.get("msgstr")
        if msgid and msgstr and "fuzzy" not in current.get("flags", ""):
            messages[msgid] = msgstr

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
            current, field = {}, None
        elif line.startswith("#,"):
            current["flags"] = line
        elif line.startswith("#"):
            continue
        elif line.startswith('"') and field:
            current[field] += ast.literal_eval(line)
        else:
            keyword, _, rest = line.partition(" ")
            if keyword in ("msgid", "msgstr", "msgctxt"):
                if keyword == "msgid" and "msgid" in current:
                    flush()
                    current = {}
                field = keyword
                current[field] = ast.literal_eval(rest)
    flush()
    return messages


@cache
def catalog(locale_dir: Path, language: str) -> PoCatalog:
    path = Path(locale_dir) / f"{language}.po"
    if not path.exists():
        return PoCatalog({})
    return PoCatalog(parse_po(path.read_text(encoding="utf-8")))


def translator(locale_dir: Path, language: str) -> Callable[[str], str]:
    """A ``_`` function for one language of one part."""
    return catalog(Path(locale_dir), language).gettext


def untranslated(locale_dir: Path, language: str, msgids: list[str]) -> list[str]:
    """The msgids that have no translation in ``language``: for tests."""
    messages = catalog(Path(locale_dir), language).messages
    return [m for m in msgids if m not in messages]
