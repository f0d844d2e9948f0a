"""The floors of the house: which package may import which.

``vuoro/`` is the base every device installs (a kiosk, a screen, a button
box, the hub): it imports nothing from ``server/``, ``kiosk/``, ``display/``,
``hardware/`` or ``toolkit/``, not even inside a function. ``toolkit/`` (the
demo, the doctor, the test harnesses) stands on all of them, so none of them
imports it. ``vuoro/cli.py`` names each part's command as a plain
``"module:function"`` string, the way an entry point does, and imports it
only when that command is run: a string is not an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("server", "kiosk", "display", "hardware", "central")
# Upward arrows that exist for a stated reason, each to be removed: file → why it is still here.
KNOWN_UPWARD: dict[str, str] = {}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the source: at the top, inside functions, and
    ``importlib.import_module("...")``/``__import__("...")`` with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def offences(package: str, forbidden: set[str]) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name in KNOWN_UPWARD:
            continue
        bad += [f"{name}:{line} imports {top}" for line, top in imported_packages(path.read_text(encoding="utf-8"))
                if top in forbidden]
    return bad


def test_the_base_imports_nothing_above_it() -> None:
    assert offences("vuoro", {*PARTS, "toolkit"}) == []


@pytest.mark.parametrize("package", PARTS)
def test_no_part_imports_the_toolkit(package: str) -> None:
    assert offences(package, {"toolkit"}) == []


def test_the_hub_never_imports_the_centre() -> None:
    """The centre stands on the hub's definitions (site config, statistics); a branch runs without the centre."""
    assert offences("server", {"central"}) == []
    assert offences("central", {"kiosk", "display", "hardware"}) == []


def test_the_check_sees_a_lazy_import_and_a_dynamic_one() -> None:
    source = ("import json\n\ndef check():\n    from server.config import load_config\n"
              "    import importlib\n    return importlib.import_module('hardware.printer')\n")
    assert [top for _, top in imported_packages(source)] == ["json", "server", "importlib", "hardware"]


def test_the_known_upward_arrows_still_exist() -> None:
    """An exception whose file no longer imports upward (or is gone) is removed from the list."""
    for name in KNOWN_UPWARD:
        path = ROOT / name
        assert path.exists() and any(top == "toolkit" for _, top in imported_packages(path.read_text())), name
