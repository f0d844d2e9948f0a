"""``vuoro doctor``: check the site config, the hub, the broker and a printer, and say what is wrong.

For the IT person at the branch, in plain words, with the command to run
next. Exit code 0 when every check passed, 1 otherwise::

    vuoro doctor --config /etc/vuoro/site.toml
    vuoro doctor --config site.toml --hub http://10.0.0.2:8080 --printer tcp://10.0.0.40:9100

The hub's address and the broker's come from the config unless given. The
broker check logs in as ``--mqtt-user``/``--mqtt-password`` (default:
``$VUORO_MQTT_USERNAME``/``$VUORO_MQTT_PASSWORD``, as in ``/etc/vuoro/hub.env``);
given the hub's user it looks as ``hub.check``, since the broker keeps one
connection per login and the hub's own would drop the hub. A device id and its
token work too (that device is off the broker for a moment), except for a
button box, which may not read the hub's status. ``--hub-ca`` and
``--mqtt-ca`` name the CA of an ``https://`` hub or an ``mqtts://`` broker.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from vuoro.cli import configure_logging

REQUEST_TIMEOUT = 5.0


@dataclass
class Check:
    name: str
    ok: bool
    message: str
    hints: list[str] = field(default_factory=list)
    skipped: bool = False

    def render(self) -> str:
        mark = "SKIP" if self.skipped else ("ok  " if self.ok else "FAIL")
        lines = [f"[{mark}] {self.name}: {self.message}"]
        lines += [f"         -> {hint}" for hint in self.hints]
        return "\n".join(lines)


# -- config -------------------------------------------------------------------------------------


def check_config(path: str) -> tuple[Check, Any]:
    from server.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        hints = [f"{problem}" for problem in exc.problems]
        hints.append(f"Fix these in {exc.source}, then run: vuoro hub --config {path} --check")
        return Check("config", False, f"{exc.source} has {len(exc.problems)} problem(s):", hints), None
    kinds: dict[str, int] = {}
    for device in config.devices.values():
        kinds[device.kind] = kinds.get(device.kind, 0) + 1
    devices = "devices: " + (", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) or "none")
    return Check("config", True, f"{config.path}: site {config.site_id!r}, {len(config.services)} services, "
                                 f"{len(config.counters)} counters, {devices}"), config


# -- hub ------------------------------------------------------------------------------------------


def hub_url_from(config: Any) -> str:
    host = config.listen_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{config.http_scheme}://{host}:{config.listen_port}"


def check_hub(url: str, site_id: str | None = None, timeout: float = REQUEST_TIMEOUT, *,
              ca_file: str | None = None) -> Check:
    import requests

    health_url = url.rstrip("/") + "/api/v1/health"
    down_hints = ["Is it running? systemctl status vuoro-hub", "What did it say? journalctl -u vuoro-hub -n 50",
                  "From another machine: is the address right, and port open (hub.listen in the site config)?"]
    try:
        response = requests.get(health_url, timeout=timeout, verify=ca_file or True)
    except requests.exceptions.SSLError as exc:
        return Check("hub", False, f"The hub at {url} answers, but its HTTPS certificate is not trusted or does"
                                   f" not name this address ({exc.__context__ or exc}).",
                     ["--hub-ca FILE: the CA that signed the hub's certificate (hub.tls_cert)",
                      "--hub https://NAME:PORT with a name the certificate has (openssl x509 -in hub.crt -noout"
                      " -ext subjectAltName)"])
    except requests.exceptions.ConnectionError:
        return Check("hub", False, f"The hub at {url} does not answer: is the hub running?", down_hints)
    except requests.exceptions.Timeout:
        return Check("hub", False, f"The hub at {url} does not answer within {timeout:g} s: it may be hung or"
                                   " overloaded.", down_hints)
    except requests.exceptions.RequestException as exc:
        return Check("hub", False, f"Cannot ask the hub at {url}: {exc}", down_hints)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not {"status", "store", "broker"} <= set(body):
        return Check("hub", False, f"Something answers at {url}, but it is not a Vuoro hub "
                                   f"(HTTP {response.status_code} from {health_url}).",
                     ["Is --hub (or hub.listen in the site config) the hub's address and port?"])
    problems, hints = [], []
    if body["store"] != "ok":
        problems.append(f"its store fails ({body['store']})")
        hints += ["The database lives in /var/lib/vuoro: is the disk full or read-only? df -h /var/lib/vuoro",
                  "journalctl -u vuoro-hub -n 50"]
    if body["broker"] != "connected":
        problems.append(f"it is not connected to the broker ({body['broker']})")
        hints += ["See the broker check below; the hub logs in with VUORO_MQTT_USERNAME/VUORO_MQTT_PASSWORD"
                  " from /etc/vuoro/hub.env, which must match /etc/mosquitto/vuoro/passwd",
                  "journalctl -u vuoro-hub -u mosquitto -n 50"]
    served = body.get("site")
    if site_id and served and served != site_id:
        problems.append(f"it serves the site {served!r}, but the config is for {site_id!r}")
        hints.append("Is --hub the right hub, or --config the right file?")
    if problems:
        return Check("hub", False, f"The hub at {url} runs, but " + "; and ".join(problems) + ".", hints)
    version = f", version {body['version']}" if body.get("version") else ""
    return Check("hub", True, f"The hub at {url} is healthy (store ok, broker connected{version}).")


# -- centre -------------------------------------------------------------------------------------------


def check_centre(link: Any, timeout: float = REQUEST_TIMEOUT) -> Check:
    """A branch with ``[central]``: does the centre answer, trust us (the token) and is it trusted (its certificate)?
    A branch works without its centre; this says whether its rows can leave (docs/central.md)."""
    from datetime import date

    import requests

    url = f"{link.url}/api/v1/numbering"
    away = "The branch goes on alone; its rows wait in the outbox and leave when the centre answers."
    try:
        answer = requests.get(url, params={"day": date.today().isoformat()}, timeout=timeout,
                              headers={"Authorization": f"Bearer {link.token}"}, verify=link.ca_file or True)
    except requests.exceptions.SSLError as exc:
        return Check("centre", False, f"The centre at {link.url} answers, but its HTTPS certificate is not trusted "
                                      f"({exc.__context__ or exc}).",
                     ["central.ca_file: the CA that signed the centre's certificate (centre.tls_cert)", away])
    except requests.exceptions.RequestException as exc:
        return Check("centre", False, f"The centre at {link.url} does not answer ({type(exc).__name__}).",
                     ["Is central.url right, and the centre running (vuoro central)?", away])
    if answer.status_code == 401:
        return Check("centre", False, f"The centre at {link.url} does not know this branch's token.",
                     ["central.token here must be the centre's [branches.<site id>].token", away])
    if answer.status_code != 200:
        return Check("centre", False, f"The centre at {link.url} answered HTTP {answer.status_code}.", [away])
    return Check("centre", True, f"The centre at {link.url} knows this branch and answers.")


# -- broker -------------------------------------------------------------------------------------------


def check_broker(broker_url: str, hub_status_topic: str, *, username: str | None = None,
                 password: str | None = None, ca_file: str | None = None, timeout: float = REQUEST_TIMEOUT) -> Check:
    import ssl

    from vuoro.mqtt import BrokerRefused, BrokerUnavailable, TopicWatch, broker_settings, watcher_user
    from vuoro.protocol import PayloadError, decode

    # The hub's own login would drop the hub from the broker (one connection per login): look with
    # its look-only twin (hub.check) instead.
    settings = broker_settings(broker_url, username=watcher_user(username), password=password, ca_file=ca_file)
    try:
        address = settings.address
    except ValueError:
        return Check("broker", False, f"{broker_url!r} is not a broker address like mqtt://127.0.0.1:1883.")
    where = f"{address.host}:{address.port}" + (" (TLS)" if address.tls else "")
    try:
        watch = TopicWatch(settings, [hub_status_topic], name="vuoro doctor").open(timeout)
    except ValueError as exc:  # a CA file that cannot be read
        return Check("broker", False, str(exc), ["--mqtt-ca FILE: the CA that signed the broker's certificate"])
    except BrokerUnavailable as exc:
        if isinstance(exc.__cause__, ssl.SSLError):
            return Check("broker", False, f"The broker at {where} answers, but {exc}",
                         ["--mqtt-ca FILE: the CA that signed the broker's certificate (docs/deploy.md, TLS)",
                          "journalctl -u mosquitto -n 50"])
        return Check("broker", False, f"The broker at {where} does not answer ({exc}): is mosquitto running?",
                     ["systemctl status mosquitto", "journalctl -u mosquitto -n 50",
                      f"From another machine: is port {settings.address.port} open, and the address right "
                      "(hub.broker)?"])
    except BrokerRefused as exc:
        who = f"user {settings.username!r}" if settings.username else "an anonymous client"
        return Check("broker", False, f"The broker at {where} refused {who}: {exc}.",
                     ["Give the hub's login: --mqtt-user hub --mqtt-password=\"$(cat /etc/mosquitto/vuoro/"
                      "hub.password)\" (or a device id and its token)",
                      "After changing devices in the site config, regenerate the users: python -m "
                      "deploy.mosquitto_acl --config /etc/vuoro/site.toml --out /etc/mosquitto/vuoro && "
                      "systemctl reload mosquitto"])
    try:
        if not watch.settled(timeout):
            return Check("broker", False, f"The broker at {where} accepted us but did not answer a subscription"
                                          f" within {timeout:g} s.", ["systemctl status mosquitto"])
        retained = [m for m in watch.messages if m.retain]
    finally:
        watch.close()
    if not retained:
        return Check("broker", False, f"The broker at {where} answers, but holds no hub status on "
                                      f"{hub_status_topic}: the hub has never connected to it (or this user "
                                      "may not read that topic).",
                     ["systemctl status vuoro-hub", "journalctl -u vuoro-hub -n 50 | grep -i broker"])
    try:
        status = decode(retained[-1].payload)
    except PayloadError as exc:
        return Check("broker", False, f"The hub status on {hub_status_topic} is not readable: {exc}.")
    if not status.get("online"):
        return Check("broker", False, f"The broker at {where} works, but says the hub is offline (its last will"
                                      " or its goodbye).", ["systemctl status vuoro-hub",
                                                            "journalctl -u vuoro-hub -n 50"])
    version = f" (version {status['version']})" if status.get("version") else ""
    return Check("broker", True, f"The broker at {where} works and the hub is online{version}.")


# -- printer --------------------------------------------------------------------------------------------

PRINTER_HINTS = {
    "paper_out": ["Put in a new roll of paper and close the cover."],
    "cover_open": ["Close the printer's cover (until it clicks)."],
    "error": ["Switch the printer off and on; if it stays in error, check for a paper jam or a cutter error."],
    "offline": ["Is the printer switched on and its cable plugged in?",
                "Network printer: ping it; USB: lsusb; serial: ls -l /dev/ttyUSB* (user vuoro needs group"
                " lp or dialout, see deploy/udev/99-vuoro-printer.rules)"],
}


def check_printer(url: str, languages: tuple[str, ...] | None = None) -> Check:
    """``languages``: the site's (default: every receipt language); a code page that cannot print them is a
    failure, named with one that can."""
    try:
        from hardware.connections import split_url
        from hardware.layout import DEFAULT_CODEPAGE, codepage_problem
        from hardware.printer import open_printer
    except ImportError as exc:
        return Check("printer", False, f"The printer support is not installed here ({exc}).",
                     ["pip install 'vuoro[printer]' (the kiosk extra includes it)"])
    from hardware.receipts import LANGUAGES

    codepage = split_url(url)[1].get("codepage", DEFAULT_CODEPAGE).upper()
    problem = codepage_problem(codepage, languages or LANGUAGES)  # without the site's: every receipt language
    if problem:
        return Check("printer", False, f"The printer at {url}: {problem}.",
                     ["Change ?codepage= in the kiosk's printer URL (kiosk.toml), then restart the kiosk."])
    try:
        printer = open_printer(url, **({"languages": languages} if languages else {}))
    except (ValueError, OSError) as exc:
        return Check("printer", False, f"{url!r} is not a printer address: {exc}",
                     ["Examples: tcp://10.0.0.40:9100, usb://04b8:0e15, serial:///dev/ttyUSB0?baudrate=19200"])
    try:
        health = printer.status()
    finally:
        printer.close()
    state, detail = health.state, health.detail
    if state == "ok":
        return Check("printer", True, f"The printer at {url} is ready.")
    if state == "paper_low":
        return Check("printer", True, f"The printer at {url} works, but its paper is low.",
                     ["Have a new roll ready."])
    if state == "unknown":
        return Check("printer", True, f"The printer at {url} can be opened; this connection cannot report its"
                                      f" status ({detail}).", [f"Make a test print: vuoro printer test {url}"])
    return Check("printer", False, f"The printer at {url}: {detail}.", PRINTER_HINTS.get(state, []))


# -- main -------------------------------------------------------------------------------------------------


# -- staff sign-in: the municipality's directory and OpenID provider ---------------------------------


def check_staff_login(config: Any) -> list[Check]:
    """Whether the hub can reach ``[staff.ldap]`` (and trusts its certificate) and ``[staff.oidc]`` (discovery
    and keys), as the hub itself would. No password is sent."""
    from server.config import ConfigError
    from server.staff.accounts import parse_staff
    from server.staff.directory import DirectoryDown, reach_directory
    from server.staff.oidc import OidcClient, OidcRefused

    try:
        settings = parse_staff(config.raw.get("staff"), str(config.path))
    except ConfigError as exc:
        return [Check("staff login", False, f"[staff] has {len(exc.problems)} problem(s):",
                      [*exc.problems, f"Fix these, then run: vuoro hub --config {config.path} --check"])]
    checks = []
    local = f"local accounts: {', '.join(settings.users) or 'none'}"
    if settings.ldap:
        try:
            reach_directory(settings.ldap)
            checks.append(Check("directory", True, f"{settings.ldap.url} answers"
                                + (" over TLS with a trusted certificate" if settings.ldap.url.startswith("ldaps://")
                                   or settings.ldap.start_tls else " (unencrypted: passwords cross the network)")))
        except DirectoryDown as exc:
            hints = [f"The hub cannot reach {settings.ldap.url}: {exc}"]
            if "certificate" in str(exc):
                hints.append("Set [staff.ldap] ca_file to the municipality's CA certificate (PEM), and use the "
                             "host name the certificate names in url.")
            hints.append(f"Until it can, staff who signed in through it in the last {settings.ldap.offline_days:g} "
                         f"days still get in; everyone else needs a local account ({local}).")
            checks.append(Check("directory", False, f"{settings.ldap.url} cannot be reached", hints))
    if settings.oidc:
        client = OidcClient(settings.oidc)
        try:
            client.metadata()
            client.keys()
            checks.append(Check("OpenID provider", True, f"{settings.oidc.issuer}: discovery and signing keys read"))
        except OidcRefused as exc:
            checks.append(Check("OpenID provider", False, f"{settings.oidc.issuer} cannot be used", [
                exc.detail, "Check [staff.oidc] issuer (it must be exactly the provider's issuer) and that this "
                            f"machine can reach it; the button on the staff page says so until then ({local})."]))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vuoro doctor", description="Check config, hub, broker and printer, "
                                     "and say in plain words what is wrong.")
    parser.add_argument("--config", default=os.environ.get("VUORO_CONFIG", "/etc/vuoro/site.toml"),
                        help="the site config (default: /etc/vuoro/site.toml)")
    parser.add_argument("--hub", help="the hub's address, e.g. http://10.0.0.2:8080 (default: from the config)")
    parser.add_argument("--broker", help="mqtt://host:port (default: hub.broker from the config)")
    parser.add_argument("--printer", help="a printer URL to check, e.g. tcp://10.0.0.40:9100")
    parser.add_argument("--mqtt-user", default=os.environ.get("VUORO_MQTT_USERNAME"))
    parser.add_argument("--mqtt-password", default=os.environ.get("VUORO_MQTT_PASSWORD"))
    parser.add_argument("--hub-ca", help="CA file for an https:// hub (default: hub.broker_ca, then the system's)")
    parser.add_argument("--mqtt-ca", default=os.environ.get("VUORO_MQTT_CA_FILE"),
                        help="CA file for an mqtts:// broker (default: hub.broker_ca, then the system's)")
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT, help="seconds to wait for each answer")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--verbose", action="store_true", help="show the libraries' log lines too")
    args = parser.parse_args(argv)
    configure_logging(logging.INFO if args.verbose else logging.CRITICAL)

    checks: list[Check] = []
    config_check, config = check_config(args.config)
    checks.append(config_check)

    hub_url = args.hub or (hub_url_from(config) if config else None)
    if hub_url:
        checks.append(check_hub(hub_url, config.site_id if config else None, args.timeout,
                                ca_file=args.hub_ca or (config.broker_ca if config else None)))
    else:
        checks.append(Check("hub", False, "not checked: the config could not be read; give --hub URL.",
                            skipped=True))

    broker_url = args.broker or (config.broker if config else None)
    if broker_url and config:
        from vuoro.protocol import Topics

        topic = Topics(config.site_id, config.topic_root).hub_status
        checks.append(check_broker(broker_url, topic, username=args.mqtt_user, password=args.mqtt_password,
                                   ca_file=args.mqtt_ca or config.broker_ca, timeout=args.timeout))
    else:
        checks.append(Check("broker", False, "not checked: the site id and topic root come from the config, "
                                             "which could not be read.", skipped=True))

    if config and config.central:
        checks.append(check_centre(config.central, args.timeout))

    if config:
        checks += check_staff_login(config)

    if args.printer:
        checks.append(check_printer(args.printer, tuple(config.languages) if config else None))

    failed = [c for c in checks if not c.ok]
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], ensure_ascii=False, indent=2))
    else:
        for check in checks:
            print(check.render())
        print()
        if failed:
            names = ", ".join(c.name for c in failed)
            print(f"{len(failed)} of {len(checks)} checks failed ({names}): see the lines marked FAIL above.")
        else:
            print(f"All {len(checks)} checks passed.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
