"""``[broker]`` in centre.toml: how the centre reaches its own MQTT broker to publish the branches' nudges.

::

    [broker]                                  # optional: without it the centre publishes nothing (docs/central.md)
    url = "mqtt://127.0.0.1:1883"             # the central Mosquitto's loopback listener (or mqtts://host:8883)
    username = "centre"                       # default: the generator's user (deploy/central_broker.py)
    password_file = "centre-mqtt.password"    # that user's password: the generator's OUT/centre.password
    ca_file = "mqtt-ca.pem"                   # mqtts:// only: the CA of its certificate (default: the system's)

Relative paths are taken beside centre.toml. The password is in a file, not in centre.toml, because the generator
makes it (once) and the broker checks it: one secret, kept in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.config import check_unknown_keys
from vuoro.mqtt import BrokerSettings
from vuoro.protocol import ID_PATTERN

CENTRE_USER = "centre"  # the user deploy/central_broker.py makes for the centre (it may write every nudge)
KEYS = {"url", "username", "password_file", "ca_file"}


@dataclass(frozen=True)
class BrokerLink:
    url: str
    password_file: str  # absolute
    username: str = CENTRE_USER
    ca_file: str | None = None  # absolute

    def file_problems(self) -> list[str]:
        """The files, checked when the centre starts (not when centre.toml is loaded: the broker's generator and the
        migration load it too, before the generator has made the password file)."""
        problems = []
        if not os.access(self.password_file, os.R_OK):
            problems.append(f"broker.password_file: expected a file that exists and this user may read, got "
                            f"{self.password_file!r} (deploy/central_broker.py writes it as OUT/centre.password)")
        elif len(self.password().strip()) < 16:
            problems.append(f"broker.password_file: expected a password of at least 16 characters in "
                            f"{self.password_file!r}")
        problems += BrokerSettings(self.url, ca_file=self.ca_file).problems(
            {"url": "broker.url", "ca_file": "broker.ca_file"})
        return problems

    def password(self) -> str:
        return Path(self.password_file).read_text(encoding="utf-8").strip()

    def settings(self) -> BrokerSettings:
        """The login, with the password read now (OSError when the file cannot be read)."""
        return BrokerSettings(self.url, username=self.username, password=self.password(), ca_file=self.ca_file)


def parse_broker(table: Any, base: Path, problems: list[str]) -> BrokerLink | None:
    """``[broker]``, its mistakes added to ``problems`` by key path; None without the section."""
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.append(f"broker: expected a table [broker], got {table!r}")
        return None
    check_unknown_keys(table, KEYS, "broker", problems)
    found = len(problems)
    url = table.get("url")
    if not isinstance(url, str) or not url.strip():
        problems.append(f"broker.url: expected mqtt://host:port or mqtts://host:port, got {url!r}")
    else:
        problems += BrokerSettings(url).problems({"url": "broker.url"})  # the address only; files at start
    username = table.get("username", CENTRE_USER)
    if not isinstance(username, str) or not ID_PATTERN.match(username):
        problems.append(f"broker.username: expected a user name such as {CENTRE_USER!r}, got {username!r}")
    files: dict[str, str | None] = {}
    for key in ("password_file", "ca_file"):
        value = table.get(key)
        if value is None and key == "ca_file":
            files[key] = None
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"broker.{key}: expected the path of a file, got {value!r}")
        else:
            files[key] = str((base / value).resolve())
    if len(problems) > found:
        return None
    return BrokerLink(url=str(url), password_file=str(files["password_file"]), username=str(username),
                      ca_file=files["ca_file"])
