"""Generated secrets are typed after options on command lines: none may begin with '-'."""

from __future__ import annotations

import re

import pytest

from vuoro.cli import main as vuoro
from vuoro.typed_secrets import new_secret

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_no_generated_secret_begins_with_a_dash() -> None:
    # token_urlsafe alone begins with '-' once in 64: 2,000 draws without one by chance is about 2e-14.
    drawn = [new_secret(24) for _ in range(2000)]
    assert [s for s in drawn if s.startswith("-")] == []
    assert all(len(s) == 32 and URL_SAFE.fullmatch(s) for s in drawn)
    assert len(set(drawn)) == len(drawn)


def test_vuoro_secret_prints_one_and_refuses_a_short_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert vuoro(["secret"]) == 0
    printed = capsys.readouterr().out.strip()
    assert len(printed) == 32 and URL_SAFE.fullmatch(printed) and not printed.startswith("-")
    with pytest.raises(SystemExit) as refused:
        vuoro(["secret", "--bytes", "8"])
    assert refused.value.code == 2 and "at least 16" in capsys.readouterr().err
