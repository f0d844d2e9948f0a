"""Which site config the centre uses for a branch (central/branch_sites.py), against a real PostgreSQL in this
process: the version the branch reports it runs — not the newest published, not the file once a version runs —
and back to the file when the branch goes back to its own. A report of a new version sends the NOTIFY the
workers reload on, inside its transaction; the same report again sends none. The old ``Branch`` a request may
still hold never changes, and bookings sold under the old hours stay sold. (Through the real processes, with
two workers and a real branch hub: tests/test_central_sites_e2e.py.)"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from central import configs
from central.calendar import Calendar
from central.config import CentreConfig, load_centre
from central.coordination import CHANNEL, RECONNECTED, changed_branch
from central.ingest import register_branches
from central.schema import migrate
from server.errors import ApiError
from tests.test_calendar import NOW, site
from toolkit.central_process import write_centre_config
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import write_clock_file

ALL_DAY = 'hours = "00:00-24:00", staff = 1'  # the librarian's places in the test site: round the clock


def hours(text: str, span: str) -> str:
    """The site text with the librarian's bookable places only in ``span``."""
    assert ALL_DAY in text
    return text.replace(ALL_DAY, f'hours = "{span}", staff = 1', 1)


@contextlib.contextmanager
def centre_in_process(tmp_path: Path, postgres_db: str,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CentreConfig, ConnectionPool, Path]]:
    """The centre's config (one branch, "north", on the test site file) and a pool over the migrated database, at
    the test clock, in this process."""
    clock = tmp_path / "clock"
    write_clock_file(clock, NOW)
    monkeypatch.setenv(CLOCK_ENV, str(clock))
    own = site(tmp_path)
    config = load_centre(write_centre_config(tmp_path / "centre.toml", postgres_db, {
        "north": ("north-uplink-token-0123456789", own)}))
    migrate(postgres_db)
    with ConnectionPool(postgres_db, min_size=1, max_size=4, open=True) as pool:
        with pool.connection() as db:
            register_branches(db, {"north": "North"})
        yield config, pool, own


@pytest.fixture()
def centre(tmp_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    with centre_in_process(tmp_path, postgres_db, monkeypatch) as (config, pool, own):
        listen = psycopg.connect(postgres_db, autocommit=True)
        listen.execute(f"LISTEN {CHANNEL}")
        yield config, pool, Calendar(config, pool), own.read_text(encoding="utf-8"), listen
        listen.close()


def heard(listen: psycopg.Connection) -> list[str]:
    """What the workers were told, leaving out the overview's ``branch:<id>`` (every report redraws its section)."""
    return [n.payload for n in listen.notifies(timeout=0.5) if changed_branch(n.payload) is None]


def report(pool: ConnectionPool, running: int, refused: int | None = None) -> None:
    with pool.connection() as db:
        digest = configs.newest(db, "north", running)["checksum"] if running else None
        configs.store_report(db, "north", {"running": {"version": running, "checksum": digest}, "refused": None
                                           if refused is None else {"version": refused, "problems": ["no [central]"]}})


def publish(pool: ConnectionPool, text: str, listen: psycopg.Connection | None = None) -> int:
    with pool.connection() as db:
        version = configs.publish(db, "north", text, "test", []).version
    if listen is not None:
        assert heard(listen) == ["config:north"]  # the branches' long polls: not a version run
    return version


def first_and_last(cal: Calendar) -> tuple[str, str]:
    slots = cal.listing("north", "bibliotekar", (NOW + timedelta(days=1)).date())["slots"]
    return slots[0]["start"][11:16], slots[-1]["start"][11:16]  # "2026-12-02T10:00+01:00": the hour


def test_the_centre_sells_by_the_version_the_branch_runs_not_the_newest_published(centre: Any) -> None:
    config, pool, cal, own, listen = centre
    tomorrow = (NOW + timedelta(days=1)).replace(hour=8)
    assert first_and_last(cal) == ("00:00", "23:45")  # the file in centre.toml: round the clock
    _, early = cal.book("north", service="bibliotekar", start=tomorrow, slots=1, key=uuid.uuid4().hex,
                        language="en", name="Early")
    before = config.branches["north"]
    heard(listen)

    # Published only: the branch has not said it runs it, so nothing changes at the centre
    publish(pool, hours(own, "10:00-12:00").replace('en = "Ask a librarian"', 'en = "Librarian (10-12)"', 1), listen)
    config.branches.heard(pool, RECONNECTED)
    assert config.branches["north"] is before and first_and_last(cal) == ("00:00", "23:45")

    # The branch runs version 1: one NOTIFY, in the report's transaction; the same report again sends none
    report(pool, 1)
    assert heard(listen) == ["applied:north"]
    report(pool, 1)
    assert heard(listen) == []
    config.branches.heard(pool, "applied:north")
    assert config.branches.version("north") == 1
    assert first_and_last(cal) == ("10:00", "11:45")
    assert cal.sale("north").branch.site.services["bibliotekar"].names["en"] == "Librarian (10-12)"
    # what a request in flight held is whole and unchanged: a new Branch, not an edited one
    assert before.site.services["bibliotekar"].names["en"] == "Ask a librarian" and config.branches["north"] \
        is not before
    # what was sold stays sold; a new sale follows the new hours
    assert cal.find(early["code"])["status"] == "booked"
    with pytest.raises(ApiError):
        cal.book("north", service="bibliotekar", start=tomorrow.replace(hour=9), slots=1, key=uuid.uuid4().hex,
                 language="en", name="Late")
    made, _ = cal.book("north", service="bibliotekar", start=tomorrow.replace(hour=10), slots=1,
                       key=uuid.uuid4().hex, language="en", name="Ten")
    assert made

    # A version the branch refuses (it passes the centre's loader: without [central] only the branch refuses it)
    publish(pool, hours(own, "13:00-14:00")[:own.index("[central]")], listen)
    report(pool, 1, refused=2)
    assert heard(listen) == []
    config.branches.heard(pool, RECONNECTED)
    assert config.branches.version("north") == 1 and first_and_last(cal) == ("10:15", "11:45")  # 10:00 sold

    # The branch goes back to its own file (version 0): so does the centre
    report(pool, 0)
    assert heard(listen) == ["applied:north"]
    config.branches.heard(pool, "applied:north")
    assert config.branches.version("north") == 0 and config.branches["north"] is config.branches.from_file["north"]
    assert first_and_last(cal) == ("00:00", "23:45")


def test_a_version_the_centres_loader_cannot_take_leaves_the_branch_on_its_file(centre: Any) -> None:
    config, pool, cal, own, _ = centre
    publish(pool, hours(own, "10:00-12:00").replace('letter = "L"', 'letter = "l"', 1))
    report(pool, 1)
    config.branches.heard(pool, "applied:north")
    assert config.branches.version("north") == 0 and first_and_last(cal) == ("00:00", "23:45")
    # a payload about another branch or another change reads nothing
    config.branches.heard(pool, "applied:elsewhere")
    config.branches.heard(pool, "config:north")
    assert config.branches["north"] is config.branches.from_file["north"]
