"""Refusal codes live in one place, the contract (vuoro/refusals.py): the hub raises them by name and the kiosk
reads them by name, so a code cannot drift apart between the two."""

from __future__ import annotations

import ast
from pathlib import Path

from vuoro import refusals

ROOT = Path(__file__).resolve().parent.parent
CODE_ARGUMENT = {"ApiError": 1, "StreamRefused": 1, "_error": 1, "Refusal": 0, "error_body": 0}  # its position


def codes_written_as_strings(path: Path) -> list[str]:
    """Where a refusal is raised (or an error body made) with its code as a bare string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        name = getattr(node, "func", None) and getattr(node.func, "id", getattr(node.func, "attr", None))
        if name in CODE_ARGUMENT and len(node.args) > CODE_ARGUMENT[name]:
            code = node.args[CODE_ARGUMENT[name]]
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {code.value!r}")
    return found


def test_the_hub_raises_every_refusal_by_its_name_in_the_contract() -> None:
    found = [hit for path in sorted((ROOT / "server").rglob("*.py")) for hit in codes_written_as_strings(path)]
    assert found == []


def test_the_kiosk_reads_the_codes_from_the_contract() -> None:
    tree = ast.parse((ROOT / "kiosk" / "model.py").read_text(encoding="utf-8"))
    compared = [node.comparators[0].value for node in ast.walk(tree) if isinstance(node, ast.Compare)
                and isinstance(node.left, ast.Name) and node.left.id == "code"
                and isinstance(node.comparators[0], ast.Constant)]
    assert compared == []
    assert refusals.TOO_EARLY == "too_early" and refusals.NOT_FOUND == "not_found"  # the wire stays the same


def test_no_two_names_for_one_code() -> None:
    names = {name: value for name, value in vars(refusals).items() if name.isupper()}
    assert len(set(names.values())) == len(names)
