"""``vuoro central``: check the centre's config and every branch's site file, migrate the database, serve."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from central.config import CentreConfig, ConfigError, load_centre
from vuoro.cli import configure_logging

log = logging.getLogger("vuoro.central")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vuoro central", description="Run the centre of a municipality's branches.")
    parser.add_argument("--config", default=os.environ.get("VUORO_CENTRAL_CONFIG", "centre.toml"),
                        help="the centre's TOML file (default: ./centre.toml)")
    parser.add_argument("--listen", help="host:port to serve HTTP on (overrides centre.listen)")
    parser.add_argument("--check", action="store_true", help="only check the config and exit")
    parser.add_argument("--migrate", action="store_true",
                        help="only bring the database's schema up to this version and exit (run as the owner role)")
    parser.add_argument("--database", help="with --migrate: the owner role's postgresql:// URL "
                                           "(default: $VUORO_CENTRAL_OWNER_DATABASE, else centre.database)")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging(args.log_level)
    try:
        config = load_centre(args.config)
    except ConfigError as exc:
        print(f"vuoro central: refusing to start.\n{exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{config.path}: ok ({len(config.branches)} branches)")
        return 0
    if args.migrate:
        return migrate_only(args.database or os.environ.get("VUORO_CENTRAL_OWNER_DATABASE") or config.database)
    host, port = config.listen_host, config.listen_port
    if args.listen:
        host, _, port_text = args.listen.rpartition(":")
        port = int(port_text)
    return serve(config, host or "127.0.0.1", port)


def migrate_only(dsn: str) -> int:
    from central.schema import migrate

    try:
        version = migrate(dsn)
    except Exception as exc:
        print(f"vuoro central: cannot migrate the database ({exc}).", file=sys.stderr)
        return 1
    print(f"the centre's database is at schema version {version}")
    return 0


def serve(config: CentreConfig, host: str, port: int) -> int:
    import uvicorn
    from psycopg_pool import ConnectionPool

    from central.app import create_app
    from central.ingest import register_branches
    from central.refresher import StatsRefresher
    from central.schema import MigrationRefused, migrate
    from vuoro.keepalive import server_keep_alive
    from vuoro.stopping import serve_then_clean_up

    # The database first: a centre that cannot reach it says so and exits, for its service manager to retry.
    try:
        version = migrate(config.database)
    except MigrationRefused as exc:  # a restart cannot fix it: the owner must migrate (exit 2: not restarted)
        print(f"vuoro central: refusing to start: {exc}.", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"vuoro central: cannot prepare the database ({exc}).", file=sys.stderr)
        return 1
    # A request waits at most 5 s for a connection: a database that is away is answered 503 quickly, and the
    # branches' uplinks try again (they keep their rows).
    pool = ConnectionPool(config.database, min_size=1, max_size=8, open=True, check=ConnectionPool.check_connection,
                          name="vuoro-central", timeout=5.0)
    with pool.connection() as db:
        register_branches(db, {b.id: b.name for b in config.branches.values()},
                          {b.id: b.site.timezone.key for b in config.branches.values()})
    refresher = StatsRefresher(config, pool).start()
    tls = {"ssl_certfile": config.tls_cert, "ssl_keyfile": config.tls_key} if config.tls_cert else {}
    log.info("centre %s: schema %d, %d branches, %s://%s:%d", config.name, version, len(config.branches),
             "https" if tls else "http", host, port)
    try:
        # Branches hold a long poll open (GET /api/v1/branch/changes, ≤ 25 s): a stop does not wait for them all
        # timeout_keep_alive: longer than the branches' uplinks keep a connection idle (vuoro/keepalive.py); a
        # SIGTERM goes on to the clean-up below (vuoro/stopping.py)
        serve_then_clean_up(uvicorn.Server(uvicorn.Config(
            create_app(config, pool), host=host, port=port, log_level="warning", access_log=False,
            timeout_graceful_shutdown=3, timeout_keep_alive=server_keep_alive(), **tls)))
    finally:
        refresher.stop()
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
