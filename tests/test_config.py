"""The site config: a mistake is named by its key path, and the hub refuses to start."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.config import SAMPLE_SITE, ConfigError, load_config, parse_config


def sample() -> dict:
    return tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(data, Path("site.toml"))
    return error.value.problems


def test_the_sample_site_is_valid() -> None:
    config = load_config(SAMPLE_SITE)
    assert config.site_id == "sonderbro"
    assert list(config.services) == ["kvik", "borgerservice", "bibliotekar", "it"]
    assert config.services["borgerservice"].mode == "booking_only"
    assert config.counters["borger1"].services == ("borgerservice", "kvik")
    assert config.default_language == "da"


def test_staffed_hours_follow_the_weekday_and_the_holidays() -> None:
    kvik = load_config(SAMPLE_SITE).services["kvik"]
    cph = ZoneInfo("Europe/Copenhagen")
    assert kvik.hours.is_open(datetime(2026, 11, 28, 11, 0, tzinfo=cph))  # Saturday 10-14
    assert not kvik.hours.is_open(datetime(2026, 11, 28, 15, 0, tzinfo=cph))
    assert not kvik.hours.is_open(datetime(2026, 12, 24, 11, 0, tzinfo=cph))  # Christmas Eve
    assert kvik.hours.is_open(datetime(2026, 12, 31, 12, 30, tzinfo=cph))  # short day 10-13
    assert not kvik.hours.is_open(datetime(2026, 12, 31, 13, 30, tzinfo=cph))


def test_every_mistake_is_reported_with_its_key_path() -> None:
    data = sample()
    data["services"]["kvik"]["letter"] = "kv"
    data["services"]["it"]["hours"]["tue"] = ["13:00-12:00"]
    data["counters"]["kvik2"]["services"] = ["kvik", "passport"]
    data["site"]["timezone"] = "Europe/Kobenhavn"
    del data["services"]["bibliotekar"]["names"]["fi"]
    found = "\n".join(problems(data))
    assert "services.kvik.letter: expected one capital letter A–Z, got 'kv'" in found
    assert "services.it.hours.tue[0]: expected an end after the start" in found
    assert "counters.kvik2.services[1]: expected one of the services" in found
    assert "site.timezone: expected an IANA time zone" in found
    assert "services.bibliotekar.names.fi: expected the service's name in fi" in found


def test_two_services_may_not_share_a_letter() -> None:
    data = sample()
    data["services"]["it"]["letter"] = "K"
    assert any("services.it.letter" in p and "services.kvik has it" in p for p in problems(data))


def test_tokens_must_be_long_and_unique() -> None:
    data = sample()
    data["devices"]["kiosk2"]["token"] = data["devices"]["kiosk1"]["token"]
    data["devices"]["screen1"]["token"] = "short"
    found = problems(data)
    assert any(p.startswith("devices.kiosk2.token: expected a token of its own") for p in found)
    assert any(p.startswith("devices.screen1.token: expected a secret of at least 16") for p in found)


def test_unknown_keys_are_named() -> None:
    data = sample()
    data["services"]["kvik"]["colour"] = "red"
    assert any(p.startswith("services.kvik.colour: unknown key") for p in problems(data))


def test_the_hub_refuses_to_start_on_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "site.toml"
    broken.write_text(SAMPLE_SITE.read_text(encoding="utf-8").replace('letter = "B"', 'letter = "K"'))
    run = subprocess.run([sys.executable, "-m", "server.main", "--config", str(broken), "--data-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "refusing to start" in run.stderr and "services.borgerservice.letter" in run.stderr
    assert not (tmp_path / "hub.sqlite3").exists()


def test_a_file_that_is_not_toml_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text("[site\nid = 1")
    with pytest.raises(ConfigError) as error:
        load_config(bad)
    assert "not valid TOML" in error.value.problems[0]


def test_mistakes_in_plugin_sections_also_stop_the_hub_before_it_starts(tmp_path: Path) -> None:
    broken = tmp_path / "site.toml"
    text = SAMPLE_SITE.read_text(encoding="utf-8")
    broken.write_text(text + '\n[staff.users.nobody]\nrole = "janitor"\npassword_hash = "x"\n')
    run = subprocess.run([sys.executable, "-m", "server.main", "--config", str(broken), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "refusing to start" in run.stderr
    assert "staff.users.nobody.role" in run.stderr and "Traceback" not in run.stderr


# -- secrets, certificates and the broker address (issue 13, items 5 and 10) ------------------------


def test_check_warns_about_every_sample_secret_by_key_path(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "server.main", "--config", str(SAMPLE_SITE), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr  # a warning, not a refusal: the demo runs on the sample
    warned = [line.split(": warning: ")[1].split(" ")[0] for line in run.stderr.splitlines() if ": warning: " in line]
    assert warned == ["devices.kiosk1.token", "devices.kiosk2.token", "devices.screen1.token",
                      "devices.buttons1.token", "api_tokens.staff.token", "api_tokens.admin.token",
                      "staff.users.demo.password_hash"]
    assert "still the sample's value (change-me)" in run.stderr

    own = tmp_path / "site.toml"
    text = SAMPLE_SITE.read_text(encoding="utf-8").replace("-change-me", "-x9Tq2pLr")
    own.write_text(text.replace('password_hash = "$argon2id$v=19$m=65536,t=3,p=4$TTEYpU8+qG+M4W41VIUQkQ$',
                                'password_hash = "$argon2id$v=19$m=65536,t=3,p=4$aGVsbG8td29ybGQtc2FsdA$'))
    run = subprocess.run([sys.executable, "-m", "server.main", "--config", str(own), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "warning" not in run.stderr, run.stderr


def test_https_and_broker_tls_files_are_checked_with_their_key_paths(tmp_path: Path) -> None:
    from certs import TestCA

    ca = TestCA.create(tmp_path / "ca")
    hub, other = ca.issue("hub"), ca.issue("other")

    def hub_table(**keys: str) -> list[str]:
        data = sample()
        data["hub"].update(keys)
        try:
            parse_config(data, tmp_path / "site.toml")
        except ConfigError as error:
            return error.problems
        return []

    assert hub_table(tls_cert=str(hub.cert), tls_key=str(hub.key)) == []
    assert hub_table(tls_cert="hub.crt", tls_key="hub.key") == [  # relative: beside the site file
        f"hub.tls_cert: expected a file that exists, got '{tmp_path / 'hub.crt'}'",
        f"hub.tls_key: expected a file that exists, got '{tmp_path / 'hub.key'}'"]
    assert hub_table(tls_cert=str(hub.cert)) == ["hub.tls_key: expected a file too: hub.tls_cert and hub.tls_key go "
                                                 "together"]
    (mismatch,) = hub_table(tls_cert=str(hub.cert), tls_key=str(other.key))
    assert mismatch.startswith("hub.tls_key: expected the private key of hub.tls_cert, both PEM")
    assert hub_table(broker_ca=str(ca.cert)) == ["hub.broker: hub.broker_ca given, but 'mqtt://127.0.0.1:1883' is not "
                                                 "TLS: use mqtts://"]
    assert hub_table(broker="mqtts://vuoro-hub", broker_ca=str(ca.cert)) == []
    assert hub_table(broker="http://vuoro-hub:1883") == [
        "hub.broker: expected mqtt://host:port or mqtts://host:port, got 'http://vuoro-hub:1883'"]


def test_broker_addresses_are_read_in_one_place() -> None:
    from vuoro.mqtt import BrokerAddress, parse_broker_url

    assert parse_broker_url("mqtt://10.0.0.2:1884") == BrokerAddress("10.0.0.2", 1884, tls=False)
    assert parse_broker_url("mqtts://vuoro-hub") == BrokerAddress("vuoro-hub", 8883, tls=True)
    assert parse_broker_url("mqtt://vuoro-hub") == BrokerAddress("vuoro-hub", 1883, tls=False)
    assert parse_broker_url("10.0.0.2:1883") == BrokerAddress("10.0.0.2", 1883, tls=False)
    assert parse_broker_url("vuoro-hub") == BrokerAddress("vuoro-hub", 1883, tls=False)
    assert parse_broker_url("MQTTS://[fd00::2]:8884") == BrokerAddress("fd00::2", 8884, tls=True)
    assert str(parse_broker_url("mqtts://[fd00::2]")) == "mqtts://[fd00::2]:8883"
    for bad, why in (("http://hub:1883", "unknown scheme 'http'"), ("mqtt://hub:99999", "the port must be"),
                     ("mqtt://hub:0", "the port must be"), ("mqtt://hub:abc", "the port must be"),
                     ("mqtt://", ""), ("mqtt://hub:1883/path", ""), ("mqtt://user:pw@hub", "")):
        with pytest.raises(ValueError, match="expected mqtt://host:port or mqtts://host:port") as error:
            parse_broker_url(bad)
        assert why in str(error.value)
