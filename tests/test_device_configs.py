"""The devices' own config files (kiosk, screen, button box) name a bad number the same way.

One rule, one wording (``vuoro/config_checks.py``): a number is not true/false or text, and lies
in its range; the problem names the key to fix.
"""

from __future__ import annotations

from typing import Any

import pytest

from display import config as display_config
from hardware.button_cli import ButtonConfigError, parse_button_config
from kiosk.config import KioskConfig, from_mapping
from vuoro.config_checks import number_problem

BUTTONS = {"device": "buttons1", "site": "sonderbro", "kind": "serial", "serial": {"port": "loop://"},
           "buttons": {"1": {"counter": "kvik1"}}}


def kiosk_problems(**values: Any) -> str:
    with pytest.raises(ValueError) as caught:
        from_mapping(values, KioskConfig(token="t")).check()
    return str(caught.value)


def display_problems(*argv: str) -> str:
    with pytest.raises(ValueError) as caught:
        display_config.load(["--site", "sonderbro", *argv])
    return str(caught.value)


def button_problems(**values: Any) -> str:
    with pytest.raises(ButtonConfigError) as caught:
        parse_button_config({**BUTTONS, **values})
    return "\n".join(caught.value.problems)


def test_true_is_not_a_number_anywhere(tmp_path: Any) -> None:
    assert "text_scale: expected a number from 0.5 to 3, got True" in kiosk_problems(text_scale=True)
    assert "long_press_s: expected a number from 0.3 to 10, got True" in button_problems(long_press_s=True)
    screen = tmp_path / "display.toml"
    screen.write_text('[display]\nrecent = true\n')
    assert "recent: expected a whole number from 1 to 20, got True" in display_problems("--config", str(screen))


def test_out_of_range_says_the_range_and_why() -> None:
    assert ("idle_timeout: expected a number from 5 to 3600, got 2.0 (seconds; less and visitors lose their screen "
            "while reading)") in kiosk_problems(idle_timeout=2)
    assert "announce_max_age: expected a number from 0.1 to 3600, got 0.0 (seconds)" in display_problems(
        "--announce-max-age", "0")
    assert ("serial.baudrate: expected a whole number from 300 to 1000000, got 96000000 (such as 9600)"
            in button_problems(serial={"port": "loop://", "baudrate": 96_000_000}))


def test_text_is_named_not_crashed_on() -> None:
    assert "dpi: expected a number from 50 to 600, got 'retina'" in kiosk_problems(dpi="retina")


def test_every_problem_is_listed_at_once() -> None:
    said = kiosk_problems(text_scale=9, http_timeout=0, probe_seconds=False)
    assert all(key in said for key in ("text_scale:", "http_timeout:", "probe_seconds:"))


def test_the_rule_itself() -> None:
    assert number_problem("n", 3, 1, 5) is None and number_problem("n", 2.5, 1, 5) is None
    assert number_problem("n", 2.5, 1, 5, whole=True) == "n: expected a whole number from 1 to 5, got 2.5"
    assert number_problem("n", None, 1, 5) == "n: expected a number from 1 to 5, got None"


def test_an_unknown_key_is_named_with_the_keys_allowed(tmp_path: Any) -> None:
    screen = tmp_path / "display.toml"
    screen.write_text('[display]\ncolour = "red"\n')
    said = display_problems("--config", str(screen))
    assert "display.colour: unknown key (allowed: alternate, announce_max_age, broker," in said
    assert "serial.speed: unknown key (allowed: baudrate, port)" in button_problems(
        serial={"port": "loop://", "speed": 9600})
