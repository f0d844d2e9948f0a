"""``vuoro display``: one signage screen (Kivy, full screen) on a Raspberry Pi.

Wiring only: config → state → MQTT client → announcer → Kivy app. Kivy is
imported after the options are read, because Kivy reads its window settings
at import time (and would otherwise also try to parse our arguments).
"""

from __future__ import annotations

import logging
import os
import sys

from vuoro.cli import configure_logging
from vuoro.protocol import Topics

from .config import DisplayConfig, load
from .state import SignageState

log = logging.getLogger("vuoro.display")


def configure_kivy(config: DisplayConfig) -> None:
    """Window settings that must be in place before ``kivy.core.window`` is imported."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kivy.config import Config

    width, height = config.size
    if config.rotation in (90, 270) and not config.window:
        width, height = height, width
    Config.set("graphics", "fullscreen", "auto" if config.fullscreen else "0")
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "rotation", str(config.rotation))
    Config.set("graphics", "show_cursor", "0" if config.fullscreen else "1")
    # A screen in a hall has no keyboard: Escape must not close it by accident.
    Config.set("kivy", "exit_on_escape", "0" if config.fullscreen else "1")


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        config = load(list(sys.argv[1:] if argv is None else argv))
    except (ValueError, OSError) as exc:
        print(f"vuoro display: {exc}", file=sys.stderr)
        return 2
    configure_kivy(config)

    from .announce import Announcer, player_for
    from .app import SignageApp
    from .client import SignageClient

    state = SignageState(
        Topics(config.site, config.root),
        services=config.services,
        counters=config.counters,
        recent_limit=config.recent,
        highlight_seconds=config.highlight_seconds,
        announce_max_age=config.announce_max_age,
        door=config.door,
    )
    announcer = Announcer(config.lang, player_for(config.player)) if config.sound else None
    client = SignageClient(
        config.mqtt_settings(),
        state,
        device=config.device,
        on_call=announcer.announce if announcer else None,
    )
    # The screen's size is its orientation's: a panel turned by --rotation
    # still lays out for the orientation asked for. Full screen, the scale is the panel's own.
    app = SignageApp(config.orientation, config.size, state, config.lang, client.lock, smoke=config.smoke,
                     alternate_s=config.alternate, fit_window=config.fullscreen)
    client.on_update = app.on_update
    client.start()
    try:
        app.run()
    finally:
        client.stop()
        if announcer:
            announcer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
