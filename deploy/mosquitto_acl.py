"""Write Mosquitto's ACL file and password file for one site, from its site config.

One MQTT user per device in ``[devices]`` (user name = device id, password =
the device's token), plus the user ``hub`` and its look-only twin
``hub.check``. Each role may do what the contract in ``docs/protocol.md``
gives it, and nothing else:

- **hub**: publishes the state and the calls (``hub/status``, ``site``,
  ``queue/#``, ``counters/#``, ``calls``, ``calls/recent``, ``board``, ``events/#``,
  ``message``, ``phone/door``, ``buttons/+/result``); reads presses and device statuses.
- **kiosk**: reads the site tree; publishes only its own
  ``devices/<id>/status``.
- **display** (a screen): reads the site tree; publishes only its own status.
- **button** (a button box): publishes presses only for the counters it owns
  (``buttons/<counter>/press``) and reads their ``result``; its own status.
- **central.bridge** (only when ``[central] broker`` is set): the bridge to the centre's broker
  (``deploy/mosquitto_bridge.py``, written to ``OUT/conf.d/bridge.conf``) reads the live state it carries
  up and writes the centre's nudges; it needs no password (Mosquitto's bridge runs inside the broker).
- **hub.check** (same password as ``hub``): reads ``hub/status`` and
  ``hub/alive``. The broker keeps one connection per login
  (``use_username_as_clientid``), so ``vuoro doctor`` and a starting hub look
  with this login and never drop the running hub.

With ``--tls-cert``/``--tls-key`` (and ``--tls-ca`` when devices bring client
certificates) it also writes ``OUT/conf.d/tls.conf``: an MQTT-over-TLS
listener on ``--tls-port`` (8883), included by ``deploy/mosquitto/mosquitto.conf``.
Without them an existing ``tls.conf`` is kept (re-running the installer keeps
TLS on); ``--no-tls`` removes it.

Generated from the config, so the broker never drifts from it: re-run after
adding, removing or re-keying a device, then ``systemctl reload mosquitto``.

    python -m deploy.mosquitto_acl --config /etc/vuoro/site.toml --out /etc/mosquitto/vuoro

(also runs as a plain script: ``/opt/vuoro/bin/python mosquitto_acl.py ...``).
Writes ``OUT/acl`` and ``OUT/passwd`` (through ``mosquitto_passwd -b``),
each replaced atomically. The hub's password is read from
``--hub-password-file`` (default ``OUT/hub.password``); when that file does
not exist a random password is made and stored there (mode 0600), so a
re-run never changes it. The hub reads the same secret from
``/etc/vuoro/hub.env`` (``VUORO_MQTT_PASSWORD``), which the installers write.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable when it is a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.mosquitto_bridge import bridge_acl_lines, render_bridge, wants_bridge  # noqa: E402
from server.config import ConfigError, SiteConfig, load_config  # noqa: E402
from vuoro.mqtt import HUB_USER, watcher_user  # noqa: E402
from vuoro.protocol import Topics  # noqa: E402
from vuoro.typed_secrets import new_secret  # noqa: E402

CHECK_USER = str(watcher_user(HUB_USER))


@dataclass(frozen=True)
class Rule:
    access: str  # read | write | readwrite
    topic: str


def hub_rules(t: Topics) -> list[Rule]:
    publishes = [
        t.hub_status,
        t.hub_alive,
        t.site_info,
        f"{t.base}/queue/#",
        f"{t.base}/counters/#",
        t.calls,
        t.recent_calls,
        t.board,
        f"{t.base}/events/#",
        t.message,
        t.phone_door,
        t.button_result("+"),
    ]
    # readwrite, so the hub may also read back what it retained (e.g. on restart).
    return [Rule("readwrite", topic) for topic in publishes] + [
        Rule("read", t.all_button_presses),
        Rule("read", t.all_device_status),
        Rule("read", t.config_nudge),  # from the centre, down the bridge (docs/central.md)
    ]


def check_rules(t: Topics) -> list[Rule]:
    return [Rule("read", t.hub_status), Rule("read", t.hub_alive)]


def device_rules(t: Topics, kind: str, device: str, counters: tuple[str, ...]) -> list[Rule]:
    own_status = Rule("readwrite", t.device_status(device))
    if kind in ("kiosk", "display"):
        return [Rule("read", t.everything), own_status]
    if kind == "button":
        rules = [own_status]
        for counter in counters:
            rules.append(Rule("write", t.button_press(counter)))
            rules.append(Rule("read", t.button_result(counter)))
        return rules
    raise ValueError(f"device {device!r}: no MQTT role for kind {kind!r}")


def render_acl(config: SiteConfig) -> str:
    """The ACL file's text. Users not named here (and anonymous clients) get nothing."""
    t = Topics(site=config.site_id, root=config.topic_root)
    if HUB_USER in config.devices:
        raise ValueError(f"a device may not be called {HUB_USER!r}: that is the hub's MQTT user")
    lines = [
        f"# Generated by deploy/mosquitto_acl.py from {config.path}.",
        "# Do not edit: change the site config and run the generator again.",
        f"# Site {config.site_id!r}, topic root {config.topic_root!r}; the contract is docs/protocol.md.",
        "",
        "# The hub publishes state and calls, reads presses and device statuses.",
        f"user {HUB_USER}",
        *(f"topic {r.access} {r.topic}" for r in hub_rules(t)),
        "",
        "# The hub's look-only login (vuoro doctor, a starting hub): is a hub of this site alive?",
        f"user {CHECK_USER}",
        *(f"topic {r.access} {r.topic}" for r in check_rules(t)),
    ]
    for device in sorted(config.devices.values(), key=lambda d: d.id):
        what = {
            "kiosk": "a kiosk: reads the site, publishes its own status",
            "display": "a screen: reads the site, publishes its own status",
            "button": f"a button box for {', '.join(device.counters) or 'no counter'}: presses and results",
        }.get(device.kind, device.kind)
        lines += ["", f"# {device.id}: {what}", f"user {device.id}"]
        lines += [f"topic {r.access} {r.topic}" for r in device_rules(t, device.kind, device.id, device.counters)]
    if wants_bridge(config):
        lines += bridge_acl_lines(config)
    return "\n".join(lines) + "\n"


def credentials(config: SiteConfig, hub_password: str) -> dict[str, str]:
    users = {HUB_USER: hub_password, CHECK_USER: hub_password}
    users.update({device.id: device.token for device in config.devices.values()})
    return users


def read_or_make_hub_password(path: Path) -> str:
    if path.exists():
        password = path.read_text(encoding="utf-8").strip()
        if len(password) < 16:
            raise ValueError(f"{path}: the hub's MQTT password must be at least 16 characters")
        return password
    password = new_secret(24)  # typed after --mqtt-password by whoever runs the doctor
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    return password


def _mosquitto_passwd() -> str:
    exe = shutil.which("mosquitto_passwd") or ("/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd")
                                               .exists() else None)
    if exe is None:
        raise FileNotFoundError("mosquitto_passwd is not installed (Debian: apt-get install mosquitto-clients"
                                " or mosquitto)")
    return exe


def _share_with_broker(path: Path, group: str | None) -> None:
    """Mode 0640 and, when we may, group ``mosquitto``: the broker reads these after dropping root."""
    os.chmod(path, 0o640)
    if group and os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            os.chown(path, 0, grp.getgrnam(group).gr_gid)


def write_password_file(users: dict[str, str], target: Path, group: str | None = "mosquitto") -> None:
    exe = _mosquitto_passwd()
    fd, tmp_name = tempfile.mkstemp(prefix=".passwd-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.write_text("")
        for user, password in users.items():
            # -b puts the password on the command line for a moment; the file holds only PBKDF2 hashes.
            subprocess.run([exe, "-b", str(tmp), user, password], check=True, capture_output=True, text=True)
        _share_with_broker(tmp, group)
        os.replace(tmp, target)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"mosquitto_passwd failed: {exc.stderr.strip() or exc.stdout.strip()}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(text: str, target: Path, group: str | None = "mosquitto") -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        _share_with_broker(Path(tmp_name), group)
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


@dataclass(frozen=True)
class TlsListener:
    cert: Path
    key: Path
    ca: Path | None = None  # set: devices must bring a client certificate signed by this CA
    port: int = 8883


def render_tls(tls: TlsListener) -> str:
    for what, path in (("certificate", tls.cert), ("key", tls.key), ("CA", tls.ca)):
        if path is not None and not path.is_file():
            raise ValueError(f"the TLS {what} {path} does not exist")
    lines = ["# Generated by deploy/mosquitto_acl.py: MQTT over TLS for the devices (mqtts://<hub>:"
             f"{tls.port}).", "# Do not edit: run the generator again with --tls-cert/--tls-key (or --no-tls).",
             f"listener {tls.port}", "# As on the plain listener: the login is the client id, so no session takeover.",
             "use_username_as_clientid true",
             f"certfile {tls.cert.resolve()}", f"keyfile {tls.key.resolve()}", "tls_version tlsv1.2"]
    if tls.ca is not None:
        lines += [f"cafile {tls.ca.resolve()}", "require_certificate true"]
    return "\n".join(lines) + "\n"


def generate(config: SiteConfig, out: Path, *, hub_password_file: Path | None = None,
             group: str | None = "mosquitto", tls: TlsListener | None = None,
             no_tls: bool = False) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    acl = render_acl(config)
    tls_text = render_tls(tls) if tls is not None else None
    bridge_text = render_bridge(config) if wants_bridge(config) else None
    hub_password = read_or_make_hub_password(hub_password_file or out / "hub.password")
    write_password_file(credentials(config, hub_password), out / "passwd", group)
    write_text_atomic(acl, out / "acl", group)
    conf_d = out / "conf.d"  # always there: mosquitto.conf includes it
    conf_d.mkdir(exist_ok=True)
    if tls_text is not None:
        write_text_atomic(tls_text, conf_d / "tls.conf", group)
    elif no_tls:
        (conf_d / "tls.conf").unlink(missing_ok=True)
    # The bridge follows [central] broker: written when there is one, removed when it is gone.
    if bridge_text is not None:
        write_text_atomic(bridge_text, conf_d / "bridge.conf", group)
    else:
        (conf_d / "bridge.conf").unlink(missing_ok=True)
    return {"acl": out / "acl", "passwd": out / "passwd", "hub_password": hub_password_file or out / "hub.password",
            "tls": conf_d / "tls.conf", "bridge": conf_d / "bridge.conf"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mosquitto_acl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="the site config (site.toml)")
    parser.add_argument("--out", required=True, type=Path, help="folder for acl and passwd")
    parser.add_argument("--hub-password-file", type=Path, default=None,
                        help="the hub's MQTT password (made if missing; default OUT/hub.password)")
    parser.add_argument("--group", default="mosquitto", help="group that may read the files (default mosquitto)")
    parser.add_argument("--tls-cert", type=Path, help="the broker's certificate (PEM): adds a TLS listener")
    parser.add_argument("--tls-key", type=Path, help="its private key (PEM, readable by group mosquitto)")
    parser.add_argument("--tls-ca", type=Path, help="optional: require client certificates signed by this CA")
    parser.add_argument("--tls-port", type=int, default=8883, help="the TLS listener's port (default 8883)")
    parser.add_argument("--no-tls", action="store_true", help="remove the TLS listener")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls = TlsListener(args.tls_cert, args.tls_key, args.tls_ca, args.tls_port) if args.tls_cert else None
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        written = generate(config, args.out, hub_password_file=args.hub_password_file, group=args.group, tls=tls,
                           no_tls=args.no_tls)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"mosquitto_acl: {exc}", file=sys.stderr)
        return 1
    listener = f", and a TLS listener on port {tls.port} ({written['tls']})" if tls else ""
    if written["bridge"].exists():
        listener += f", and the bridge to the centre ({written['bridge']})"
    # Listeners and bridges are read only at start; users and ACLs also on reload.
    restart = tls or args.no_tls or written["bridge"].exists()
    print(f"wrote {written['acl']} and {written['passwd']} for {len(config.devices)} device(s) and the hub{listener}; "
          f"now: systemctl {'restart' if restart else 'reload'} mosquitto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
