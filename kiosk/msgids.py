"""Every msgid the kiosk shows: found by scanning the code, for the translation test and catalog upkeep.

Python uses ``_("...")`` (or ``self._("...")``), the kv files
``app.session.tr('...', app.session.lang)``; both are written literally so this
scan finds them all (in ``kiosk/`` and ``kiosk/screens/``). ``python -m kiosk.msgids`` lists the ones a catalog lacks.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
_KV = re.compile(r"""\.tr\((['"])(.+?)\1""")


def _from_python(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("_", "tr") and isinstance(node.args[0].value, str):
                found.append(node.args[0].value)
    return found


def msgids() -> list[str]:
    found: list[str] = []
    for path in sorted(HERE.rglob("*.py")):
        found += _from_python(path)
    for path in sorted(HERE.rglob("*.kv")):
        found += [m.group(2) for m in _KV.finditer(path.read_text(encoding="utf-8"))]
    return list(dict.fromkeys(found))


if __name__ == "__main__":
    from vuoro.i18n import LANGUAGES, untranslated

    for lang in LANGUAGES:
        for msgid in untranslated(HERE / "locale", lang, msgids()):
            print(f"{lang}: {msgid!r}", file=sys.stdout)
