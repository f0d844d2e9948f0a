"""``vuoro hub``: load and check the site config, open the store, serve HTTP and MQTT."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from server.config import SAMPLE_SITE, ConfigError, SiteConfig, load_config, sample_secrets
from vuoro.keepalive import server_keep_alive
from vuoro.stopping import serve_then_clean_up, stopping_server

log = logging.getLogger("vuoro.hub")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vuoro hub", description="Run the hub for one site.")
    parser.add_argument("--config", default=os.environ.get("VUORO_CONFIG", str(SAMPLE_SITE)),
                        help="the site's TOML file (default: the sample site)")
    parser.add_argument("--data-dir", default=os.environ.get("VUORO_DATA_DIR", "var"),
                        help="where a relative database path lives (default: ./var)")
    parser.add_argument("--listen", help="host:port to serve HTTP on (overrides hub.listen)")
    parser.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (overrides hub.broker)")
    parser.add_argument("--topic-root", help="MQTT topic root (overrides hub.topic_root; tests use their own)")
    parser.add_argument("--check", action="store_true", help="only check the config and exit")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


# serve() asks for this when the centre's new config passed the checks: main() runs the same command again in this
# process (os.execv: the same process id, so systemd and the watchdog see one service that restarted itself).
RESTART = 75
# Tests only (as VUORO_TEST_CLOCK): the hub stops before serving when it would run on this version from the centre:
# what a version that passes the checks but keeps the hub from starting does (server/uplink/pushed.py, "trial").
CRASH_ENV = "VUORO_TEST_STOP_ON_VERSION"


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's settings, which win over the site file's (and over a version from the centre)."""
    found: dict[str, Any] = {}
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        found.update(listen_host=host or "127.0.0.1", listen_port=int(port))
    if args.broker:
        found["broker"] = args.broker
    if args.topic_root:
        found["topic_root"] = args.topic_root
    return found


def load(args: argparse.Namespace) -> SiteConfig:
    config = load_config(args.config)
    if found := overrides(args):
        config = replace(config, **found)
    return config


def check_plugin_sections(config: SiteConfig) -> None:
    """The [bookings], [events] and [staff] sections belong to their plugins; check them before starting
    too, so every mistake in the file is reported at once and the hub never starts half-configured."""
    from server.plugins import check_config

    problems = check_config(config)
    if problems:
        raise ConfigError(problems, str(config.path))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load(args)
        check_plugin_sections(config)
    except ConfigError as exc:
        print(f"vuoro hub: refusing to start.\n{exc}", file=sys.stderr)
        return 2
    for key in sample_secrets(config):
        # A warning, not a refusal: the demo and the tests run on the sample on purpose.
        print(f"{config.path}: warning: {key} is still the sample's value (change-me): anyone who has read the"
              " sample can use it. Set a secret of its own (vuoro secret).", file=sys.stderr)
    if args.check:
        print(f"{config.path}: ok ({len(config.services)} services, {len(config.counters)} counters)")
        return 0
    code = serve(config, Path(args.data_dir), overrides(args))
    if code == RESTART:  # the centre's new config: start again on it, in this process
        log.warning("stopped; starting again on the centre's new config")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, sys.orig_argv)
    return code


def serve(config: SiteConfig, data_dir: Path, cli: dict[str, Any] | None = None) -> int:
    """Run until stopped: 0, 2 when another hub already serves this site (nothing to restart for), or RESTART
    when a new config from the centre is to be run on."""
    import uvicorn

    from server import presence
    from server.api import create_app
    from server.hub import Hub
    from server.mqtt_link import MqttLink
    from server.store import SQLiteStore
    from server.stream import raise_open_files_limit
    from vuoro.clock import ENV as CLOCK_ENV
    from vuoro.clock import clock_from_env
    from vuoro.mqtt import BrokerUnavailable
    from vuoro.protocol import Topics

    open_files = raise_open_files_limit()  # before anything opens sockets: every stream and kiosk is a file
    db_path = config.database_path(data_dir)
    running = None
    if config.central:  # the centre's newest version that passes this hub's checks, else the hub's own file
        from server.uplink import pushed

        running = pushed.running(config, db_path.parent)
        config = replace(running.config, **(cli or {}))
        running.config = config
        if running.version and os.environ.get(CRASH_ENV) == str(running.version):  # tests only
            log.error("%s=%d: stopping before serving, as a version that keeps the hub from starting would",
                      CRASH_ENV, running.version)
            os._exit(1)
    fresh_store = not db_path.exists()  # a new or wiped disk: numbering must come from the centre (numbering.py)
    me = presence.this_hub(db_path)
    lock = presence.DatabaseLock(db_path)
    try:
        lock.acquire()
        presence.look_for_another_hub(config.mqtt_settings(), Topics(config.site_id, config.topic_root), me,
                                      zone=config.timezone)
        look_later = False
    except presence.AnotherHub as exc:
        lock.release()
        print(f"vuoro hub: refusing to start.\n{exc}", file=sys.stderr)
        return 2
    except BrokerUnavailable as exc:
        log.warning("cannot reach the broker (%s); serving without it, and looking for another hub of this site"
                    " before connecting", exc)
        look_later = True
    store = SQLiteStore(db_path, config.site_id, outbox=config.central is not None)
    test_clock = clock_from_env()
    if test_clock:
        log.warning("%s is set: this hub runs on a test clock (%s), not the machine's", CLOCK_ENV, test_clock())
    hub = (Hub(config, store, clock=test_clock) if test_clock else Hub(config, store)).start()
    link = MqttLink(hub, config, identity=me)
    uplink = follower = None
    numbering: dict[str, Any] = {}
    restart_asked: list[bool] = []
    server: uvicorn.Server | None = None

    apps: list[Any] = []

    def restart() -> None:  # the follower's thread: stop serving, main() starts again on the new config
        restart_asked.append(True)
        for made in apps:
            made.state.restarting = True  # systemd hears RELOADING=1, not STOPPING=1 (server/api.py)
        if server is not None:
            server.should_exit = True

    if config.central and running:  # a branch of a centre: numbers from where the centre has them, then ship
        from server.uplink.follow import CentreFollower
        from server.uplink.numbering import restore_numbering
        from server.uplink.shipper import Uplink

        numbering = restore_numbering(hub, config.central, fresh=fresh_store)
        uplink = Uplink(hub, config.central)
        follower = CentreFollower(config.central, db_path.parent, running, restart)
        uplink.answered.append(follower.centre_said)
        # The centre's config/nudge down the MQTT bridge only makes the follower look sooner: it wakes the wait after
        # a failed try (RETRY_S) or, with a centre that has no long poll, the idle wait. During a long poll the poll
        # itself hears the publish; a poll stuck on a half-open connection is not cut short by a nudge.
        link.on_config_nudge.append(lambda _nudge, following=follower: following.nudge())
        uplink.start()

    def uplink_status() -> dict[str, Any]:
        assert uplink is not None and follower is not None
        return {**uplink.status(), "config": follower.status(), "numbering": numbering["numbering"]}

    app = create_app(hub, broker_connected=link.connected.is_set, uplink_status=uplink_status if uplink else None)
    app.state.restarting = bool(restart_asked)
    apps.append(app)
    # Everything loaded so far lives as long as the process: keep it out of the cyclic GC's scans,
    # and collect less often (measured in bench/bench_hub.py: 8-kiosk p99 about 11 → 9 ms).
    gc.freeze()
    gc.set_threshold(20000, 50, 100)
    # The writer thread takes the GIL back after every SQLite call; while the event loop is busy (2,000
    # streams being sent a change) each of those waited up to 5 ms. 0.5 ms: a kiosk's ticket with 2,000
    # streams open p50 ~29 → ~13 ms, p99 ~110 → ~36 ms (bench/bench_hostile.py).
    sys.setswitchinterval(0.0005)
    tls = {"ssl_certfile": config.tls_cert, "ssl_keyfile": config.tls_key} if config.tls_cert else {}
    log.info("site %s: store %s, broker %s, %s://%s:%s, %d open files", config.site_id, db_path, config.broker,
             config.http_scheme, config.listen_host, config.listen_port, open_files)
    # ws="none": the hub serves no WebSocket (screens use MQTT and SSE), so uvicorn need not load the websockets
    # library (bench/ab_hub.py: idle RSS and start CPU, see the commit that added this).
    # timeout_keep_alive: an idle connection lives longer than any of our clients keeps one (vuoro/keepalive.py):
    # at uvicorn's 5 s a desk's call sent as the hub closed its connection was lost.
    # The event streams (signage, staff and phone pages) never end by themselves: they end as the stop begins,
    # or uvicorn waited for them until systemd killed the hub (vuoro/stopping.py). Their browsers reconnect.
    server = stopping_server(uvicorn.Config(app, host=config.listen_host, port=config.listen_port,
                                            log_level="warning", access_log=False, ws="none",
                                            timeout_keep_alive=server_keep_alive(), **tls), app.state.streams.end_all)
    link.on_conflict.append(lambda message: setattr(server, "should_exit", True))
    link.start(look_first=look_later)
    if restart_asked:  # asked while the hub was starting
        server.should_exit = True
    if follower is not None:
        # Once the hub serves: the centre's version it runs on is off trial, and only then does the follower
        # look for a newer one. Started earlier, a new version could be kept before this one was marked served,
        # and the mark then cleared the NEW version's trial (a version that kept the hub from starting was tried
        # again and again instead of once).
        import threading

        def serving(following: Any = follower) -> None:
            while not server.started and not server.should_exit:
                threading.Event().wait(0.1)
            if server.started:
                if running and running.version:
                    pushed.started(db_path.parent, running.version)
                following.start()

        threading.Thread(target=serving, name="vuoro-trial", daemon=True).start()
    try:
        serve_then_clean_up(server)  # a SIGTERM (a systemd stop) goes on to the clean-up below (vuoro/stopping.py)
    finally:
        link.stop()
        if follower:
            follower.stop()
        if uplink:
            uplink.stop()
        hub.stop()
        lock.release()
    if link.conflict:
        return 2
    if restart_asked and hasattr(app.state, "staff_sessions"):  # staff stay signed in over the restart in place
        try:
            app.state.staff_sessions.hand_over(db_path.parent)
        except OSError:
            log.warning("could not hand the staff sessions over the restart: staff sign in again", exc_info=True)
    return RESTART if restart_asked else 0


if __name__ == "__main__":
    sys.exit(main())
