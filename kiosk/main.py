"""``vuoro kiosk``: the touchscreen kiosk (Kivy, full screen) on a Raspberry Pi.

Wiring only: options → Kivy window settings → app. Kivy is imported after
the options are read, because it reads its window settings (and, unless
told not to, the command line) when first imported.
"""

from __future__ import annotations

import logging
import os
import sys

from vuoro.cli import configure_logging

from .config import KioskConfig, load

log = logging.getLogger("vuoro.kiosk")


def configure_kivy(config: KioskConfig) -> None:
    """Window settings that must be in place before ``kivy.core.window`` is imported."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kivy.config import Config

    if config.size:
        Config.set("graphics", "width", str(config.size[0]))
        Config.set("graphics", "height", str(config.size[1]))
    Config.set("graphics", "fullscreen", "auto" if config.fullscreen else "0")
    Config.set("graphics", "resizable", "0" if config.fullscreen else "1")
    Config.set("graphics", "show_cursor", "0" if config.fullscreen else "1")
    # Visitors may carry keyboards (wedge scanners are keyboards): Escape must not close the kiosk.
    Config.set("kivy", "exit_on_escape", "0")
    # A long press must not turn into a red multitouch-emulation dot on a touch panel.
    Config.set("input", "mouse", "mouse,multitouch_on_demand")


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        config = load(list(sys.argv[1:] if argv is None else argv))
    except (ValueError, OSError) as exc:
        print(f"vuoro kiosk: {exc}", file=sys.stderr)
        return 2
    configure_kivy(config)

    from .app import KioskApp

    app = KioskApp(config)
    try:
        app.run()
    except KeyboardInterrupt:
        pass
    finally:
        app.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
