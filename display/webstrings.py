"""Writes ``display/web/strings.json`` from the screens' ``.po`` catalogs.

The web page has no gettext, so it reads the same translations as a small
JSON file: one source of truth for both screens. Run after editing a
``.po`` file (a test fails while the JSON is stale)::

    python -m display.webstrings
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vuoro.i18n import LANGUAGES, translator

from .present import LOCALE_DIR, MSGIDS

OUT = Path(__file__).parent / "web" / "strings.json"


def build() -> str:
    table = {lang: {m: translator(LOCALE_DIR, lang)(m) for m in MSGIDS} for lang in LANGUAGES}
    return json.dumps(table, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    OUT.write_text(build(), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
