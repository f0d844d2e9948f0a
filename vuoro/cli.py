"""The one console command, ``vuoro``, with a sub-command per part.

Each sub-command lives in the package that owns it and is imported only when
chosen, so a kiosk Pi never imports the hub's dependencies and the hub never
imports Kivy. A part registers itself here with ``module:function``; that
function receives the remaining arguments and returns an exit code.

The table names the parts as plain strings, the way entry points do, and
imports nothing from them: ``vuoro/`` stays the base that imports nothing
above it (``tests/test_layers.py``). Strings here rather than entry points in
pyproject: the table shows every command and its help in one file, a part
that is not installed on this device is reported in words, and a new command
works from a checkout without reinstalling.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "hub": ("server.main:main", "run the hub: queue engine, store, HTTP API and MQTT state"),
    "printer": ("hardware.cli:main", "run or test a receipt printer (virtual printer, test print)"),
    "kiosk": ("kiosk.main:main", "run the touchscreen kiosk"),
    "display": ("display.main:main", "run a signage screen"),
    "button": ("hardware.button_cli:main", "run a staff button box (GPIO or USB serial)"),
    "central": ("central.main:main", "run the centre: a municipality's branches on one PostgreSQL"),
    "demo": ("toolkit.demo:main", "run the whole system on embedded defaults"),
    "doctor": ("toolkit.doctor:main", "check config, hub, broker and printer and say what is wrong"),
    "secret": ("vuoro.typed_secrets:main", "print a new random token or password, safe to paste on a command line"),
}


# Every part logs the same line; journald adds the unit and the host.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str | int = logging.INFO) -> None:
    """Log as every part of Vuoro does (``--log-level info``, ``"warning"``, or a logging constant).

    Call it before Kivy is imported: Kivy's default log mode adds its own console handler to the root
    logger, so the kiosk and the screen printed every line twice (once per handler, in two formats) and
    Kivy's DEBUG lines past the level asked for. In ``PYTHON`` mode Kivy only logs through this handler.
    """
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    logging.basicConfig(level=level.upper() if isinstance(level, str) else level, format=LOG_FORMAT)


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: vuoro COMMAND [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'vuoro COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"vuoro: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[name]
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"vuoro {name}: this part is not installed here ({exc}).", file=sys.stderr)
        return 3
    result = getattr(module, func_name)(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
