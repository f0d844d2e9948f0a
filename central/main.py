"""``vuoro central``: check the centre's config and every branch's site file, migrate the database, serve."""

from __future__ import annotations

import argparse
import logging
import os
import select
import socket
import sys
import time
import weakref
from typing import Any

from central.config import MAX_WORKERS, CentreConfig, ConfigError, load_centre
from central.workers import ParentLink
from vuoro.cli import configure_logging

log = logging.getLogger("vuoro.central")
POOL_SIZE = 8  # connections per worker (and one more for its coordinator: central/coordination.py)
IDLE_CHECK_S = 2.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vuoro central", description="Run the centre of a municipality's branches.")
    parser.add_argument("--config", default=os.environ.get("VUORO_CENTRAL_CONFIG", "centre.toml"),
                        help="the centre's TOML file (default: ./centre.toml)")
    parser.add_argument("--listen", help="host:port to serve HTTP on (overrides centre.listen)")
    parser.add_argument("--workers", type=int, help="worker processes (overrides centre.workers)")
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
    # [broker]'s files are checked here, not in load_centre: the broker's generator makes the password file from the
    # same centre.toml, and the owner's migration runs before it on a new host (deploy/ansible/roles/centre).
    broker_problems = config.broker.file_problems() if config.broker and not args.migrate else []
    if broker_problems:
        print(f"vuoro central: refusing to start.\n{ConfigError(broker_problems, str(config.path))}", file=sys.stderr)
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
    from central.workers import default_workers

    workers = args.workers or config.workers or default_workers()
    if not 1 <= workers <= MAX_WORKERS:
        print(f"vuoro central: refusing to start: --workers: expected 1 to {MAX_WORKERS}, got {workers}.",
              file=sys.stderr)
        return 2
    return serve(config, host or "127.0.0.1", port, workers)


def migrate_only(dsn: str) -> int:
    from central.schema import migrate

    try:
        version = migrate(dsn)
    except Exception as exc:
        print(f"vuoro central: cannot migrate the database ({exc}).", file=sys.stderr)
        return 1
    print(f"the centre's database is at schema version {version}")
    return 0


def serve(config: CentreConfig, host: str, port: int, workers: int) -> int:
    """The parent: the database prepared, the sockets bound, then ``workers`` worker processes supervised
    (central/workers.py) until SIGTERM."""
    import psycopg
    import uvicorn  # noqa: F401 - imported once here, not in every worker: a worker forked from here starts at once

    import central.app  # noqa: F401
    from central.ingest import register_branches
    from central.schema import MigrationRefused, migrate
    from central.workers import Supervisor, listening_sockets

    # The database first: a centre that cannot reach it says so and exits, for its service manager to retry.
    # Once, here, before any worker exists (no pool, no thread: the workers are forked from this process).
    try:
        version = migrate(config.database)
        with psycopg.connect(config.database, connect_timeout=10) as db:
            register_branches(db, {b.id: b.name for b in config.branches.values()},
                              {b.id: b.site.timezone.key for b in config.branches.values()})
    except MigrationRefused as exc:  # a restart cannot fix it: the owner must migrate (exit 2: not restarted)
        print(f"vuoro central: refusing to start: {exc}.", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"vuoro central: cannot prepare the database ({exc}).", file=sys.stderr)
        return 1
    try:
        sockets = listening_sockets(host, port, workers)
    except OSError as exc:
        print(f"vuoro central: cannot listen on {host}:{port} ({exc.strerror or exc}); is another centre running "
              "there?", file=sys.stderr)
        return 1
    port = sockets[0].getsockname()[1]
    log.info("centre %s: schema %d, %d branches, %s://%s:%d, %d workers", config.name, version, len(config.branches),
             "https" if config.tls_cert else "http", host, port, workers)

    def worker(slot: int, sock: socket.socket, parent: ParentLink) -> int:
        return run_worker(config, sock, parent)

    return Supervisor(sockets, worker, status=f"centre {config.name}: {len(config.branches)} branches").run()


_returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def mark_returned(conn: Any) -> None:
    _returned[conn] = time.monotonic()


def check_if_idle(conn: Any) -> None:
    """A pooled connection is checked with a round trip before a request gets it when it was unused for
    ``IDLE_CHECK_S`` or its server has spoken since (PostgreSQL may have restarted meanwhile: the request would
    fail with 503); one in use a moment ago, with nothing to read, is not (a round trip saved per request)."""
    from psycopg_pool import ConnectionPool

    if time.monotonic() - _returned.get(conn, 0.0) > IDLE_CHECK_S or server_has_spoken(conn):
        ConnectionPool.check_connection(conn)


def server_has_spoken(conn: Any) -> bool:
    """An idle connection has nothing to read unless the server wrote to it: at a shutdown or restart it writes
    its goodbye (FATAL 57P01) and closes, which a connection returned a moment before would otherwise meet only in
    the next request (CI saw a restart of 1-2 s do that). One select() with no wait: microseconds."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except Exception:  # closed already (fileno() raises): the check finds out and the pool discards it
        return True
    return bool(readable)


def run_worker(config: CentreConfig, sock: socket.socket, parent: ParentLink) -> int:
    """One worker process: its own pool and app, uvicorn on its slot's socket, until SIGTERM."""
    import uvicorn
    from psycopg_pool import ConnectionPool

    from central.app import create_app
    from vuoro.keepalive import server_keep_alive
    from vuoro.stopping import serve_then_clean_up, stopping_server

    # A request waits at most 5 s for a connection: a database that is away is answered 503 quickly, and the
    # branches' uplinks try again (they keep their rows).
    pool = ConnectionPool(config.database, min_size=1, max_size=POOL_SIZE, open=True, check=check_if_idle,
                          reset=mark_returned, name="vuoro-central", timeout=5.0)
    tls = {"ssl_certfile": config.tls_cert, "ssl_keyfile": config.tls_key} if config.tls_cert else {}
    try:
        app = create_app(config, pool, parent=parent, background=True)
        # timeout_keep_alive: longer than the branches' uplinks keep a connection idle (vuoro/keepalive.py); a
        # SIGTERM goes on to the clean-up below, and the branches' long polls (GET /api/v1/branch/changes, ≤ 25 s)
        # are answered first, so a stop (a restart, a deploy) waits only for real work (vuoro/stopping.py)
        server = stopping_server(uvicorn.Config(app, log_level="warning", access_log=False,
                                                timeout_graceful_shutdown=3, timeout_keep_alive=server_keep_alive(),
                                                **tls), app.state.stop_long_polls)
        serve_then_clean_up(server, sockets=[sock])
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
