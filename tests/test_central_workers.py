"""The centre as several worker processes (central/workers.py, docs/central.md "Workers"): the real ``vuoro central``
with two workers over a real PostgreSQL. Which worker answered is shown by ``X-Vuoro-Worker`` (tests only,
``$VUORO_TEST_SHOW_WORKER``); a ``requests.Session`` keeps its one keep-alive connection, so it stays with the
worker it landed on (the kernel spreads new connections over the workers' sockets).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests
from psycopg_pool import ConnectionPool

from central.app import SHOW_WORKER_ENV
from central.coordination import owner_pid
from central.schema import migrate
from central.shared_state import SharedBackoff, SharedBucket
from server.throttle import Backoff, Bucket
from tests.conftest import TEST_SITE
from toolkit.central_process import ADMIN_TOKEN, CentralProcess, write_centre_config
from toolkit.polling import wait_until
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import write_clock_file

TZ = ZoneInfo("Europe/Copenhagen")
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=TZ)  # a Tuesday; the test site is open round the clock
TOKEN = "north-uplink-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BRANCH = {"Authorization": f"Bearer {TOKEN}"}


def site(folder: Path, bookings: str = "") -> Path:
    text = TEST_SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', 'id = "north"', 1)
    text = text.replace("[bookings]\n", f"[bookings]\ncentre_calendar = true\n{bookings}", 1)
    text += f'\n[central]\nurl = "http://127.0.0.1:9"\ntoken = "{TOKEN}"\n'
    path = folder / "north.toml"
    path.write_text(text, encoding="utf-8")
    return path


def start_centre(folder: Path, database: str, bookings: str = "") -> CentralProcess:
    clock = folder / "clock"
    write_clock_file(clock, NOW)
    config = write_centre_config(folder / "centre.toml", database, {"north": (TOKEN, site(folder, bookings))},
                                 languages=("en",))
    return CentralProcess(config, workers=2, env={SHOW_WORKER_ENV: "1", CLOCK_ENV: str(clock)}).start()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: Any, postgres: Any) -> Iterator[tuple[CentralProcess, str]]:
    """One centre for the tests that only use it (a start costs seconds); each leaves it as it found it."""
    postgres.start()
    database = str(postgres.create_database())
    made = start_centre(tmp_path_factory.mktemp("centre"), database)
    yield made, database
    made.stop()


@pytest.fixture()
def centre(shared: tuple[CentralProcess, str], postgres: Any) -> CentralProcess:
    postgres.start()  # again, if an earlier test stopped it
    return shared[0]


def worker_of(answer: requests.Response) -> int:
    return int(answer.headers["x-vuoro-worker"])


def sessions_on_two_workers(url: str, each: int = 1) -> dict[int, list[requests.Session]]:
    """``each`` sessions kept on each of two different workers (new connections until both have enough)."""
    found: dict[int, list[requests.Session]] = {}
    for _ in range(200):
        session = requests.Session()
        pid = worker_of(session.get(f"{url}/api/v1/health", timeout=10))
        found.setdefault(pid, []).append(session)
        full = [pid for pid, kept in found.items() if len(kept) >= each]
        if len(full) >= 2:
            return {pid: found[pid][:each] for pid in full[:2]}
    raise AssertionError(f"new connections reached only {sorted(found)}")


def workers_of(centre: CentralProcess) -> set[int]:
    assert centre.process is not None
    children = Path(f"/proc/{centre.process.pid}/task/{centre.process.pid}/children").read_text().split()
    return {int(pid) for pid in children}


def republish(url: str, session: requests.Session, name: str) -> int:
    text = (TEST_SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', 'id = "north"', 1)
            .replace('name = "Sønderbro Bibliotek & Borgerservice"', f'name = "{name}"', 1))
    answer = session.post(f"{url}/api/v1/branches/north/config", data=text.encode(), headers=ADMIN, timeout=30)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["version"])


def test_a_change_published_through_one_worker_wakes_a_long_poll_held_by_another_also_after_a_database_restart(
        centre: CentralProcess, postgres: Any) -> None:
    """The long poll answers at LONG_POLL_S (25 s) at the latest; the client here gives up after 15 s, so only a
    wake-up through PostgreSQL's NOTIFY (or, after a lost connection, the coordinator's wake-up of every poll)
    answers it in time: the worker holding it never saw the publish."""
    sessions = sessions_on_two_workers(centre.url)
    waiter, publisher = sessions
    poll_session, publish_session = sessions[waiter][0], sessions[publisher][0]
    first = poll_session.get(f"{centre.url}/api/v1/branch/changes", headers=BRANCH, timeout=10).json()

    def poll(config: int, staff: int, into: list[requests.Response]) -> threading.Thread:
        session = poll_session

        def run() -> None:
            into.append(session.get(f"{centre.url}/api/v1/branch/changes", params={"config": config,
                                         "staff": staff}, headers=BRANCH, timeout=15))
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    answers: list[requests.Response] = []
    thread = poll(0, first["staff"], answers)
    time.sleep(1.0)  # the poll is waiting in its worker
    version = republish(centre.url, publish_session, "Nordby Bibliotek")
    thread.join(20)
    assert answers and answers[0].status_code == 200, answers
    assert worker_of(answers[0]) == waiter != publisher
    assert answers[0].json()["config"]["version"] == version == 1

    # PostgreSQL restarted under the centre: the coordinators open their connections again, and a change made
    # meanwhile or after still wakes the poll held by the other worker (the same two workers, on new connections:
    # an idle keep-alive connection may have been closed meanwhile)
    postgres.stop()
    postgres.start()
    wait_until(lambda: requests.get(f"{centre.url}/api/v1/health", timeout=5).status_code == 200, "the database")
    sessions = sessions_on_two_workers(centre.url)
    assert set(sessions) == {waiter, publisher}
    poll_session, publish_session = sessions[waiter][0], sessions[publisher][0]
    answers.clear()
    thread = poll(version, first["staff"], answers)
    time.sleep(1.0)
    changed = publish_session.put(f"{centre.url}/api/v1/staff/mette", json={"role": "staff",
                                  "password": "mettes-kodeord-1"}, headers=ADMIN, timeout=30)
    assert changed.status_code == 200, changed.text
    thread.join(20)
    assert answers and answers[0].status_code == 200, answers
    assert worker_of(answers[0]) == waiter
    assert answers[0].json()["staff"] == changed.json()["revision"] != first["staff"]


def sign_in(session: requests.Session, url: str, user: str, password: str) -> requests.Response:
    form = session.get(f"{url}/login?lang=en", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf and form.status_code == 200
    return session.post(f"{url}/login?lang=en", timeout=30, allow_redirects=False,
                        data={"username": user, "password": password, "csrf": csrf.group(1)})


def test_a_person_signed_in_through_one_worker_is_signed_in_at_the_other_and_signs_out_of_both(
        centre: CentralProcess, shared: tuple[CentralProcess, str]) -> None:
    postgres_db = shared[1]
    made = requests.put(f"{centre.url}/api/v1/staff/mette", json={"role": "staff", "password": "mettes-kodeord-1",
                        "branches": ["north"]}, headers=ADMIN, timeout=30)
    assert made.status_code == 200, made.text
    sessions = sessions_on_two_workers(centre.url)
    one, other = sessions
    a, b = sessions[one][0], sessions[other][0]
    signed = sign_in(a, centre.url, "mette", "mettes-kodeord-1")
    assert signed.status_code == 303 and worker_of(signed) == one
    b.cookies.set("vuoro_centre", a.cookies.get("vuoro_centre"))
    page = b.get(f"{centre.url}/?lang=en", timeout=30, allow_redirects=False)
    assert page.status_code == 200 and worker_of(page) == other
    assert "Signed in as mette" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    out = b.post(f"{centre.url}/logout", data={"csrf": csrf.group(1)}, timeout=30, allow_redirects=False)
    assert out.status_code == 303 and worker_of(out) == other
    back = a.get(f"{centre.url}/?lang=en", timeout=30, allow_redirects=False)
    assert worker_of(back) == one and back.status_code == 303 and back.headers["location"].startswith("/login")

    # wrong passwords count at every worker together: five are free, then a wait (1 s, doubling), whichever
    # worker the next try reaches
    for session in [a, b, a, b, a]:
        assert sign_in(session, centre.url, "mette", "wrong-password-0").status_code == 401
    with psycopg.connect(postgres_db) as db:
        counted = dict(db.execute("SELECT counter, level FROM centre_throttle WHERE counter LIKE 'login/%'"))
    assert counted == {"login/pair": 5, "login/address": 5, "login/elsewhere": 5}
    slowed = sign_in(b, centre.url, "mette", "mettes-kodeord-1")
    assert slowed.status_code == 429 and "Too many attempts" in slowed.text


def test_the_background_work_has_one_owner_and_another_worker_takes_it_over(tmp_path: Path, postgres_db: str) -> None:
    """The owner's clean-up (with the refresher and the purge) runs when a worker takes the work over, then every
    10 minutes: an expired session left before the start is its first round's; one left after it is gone again
    only if another worker took the work over and runs it."""
    def owner() -> int | None:
        with psycopg.connect(postgres_db) as db:
            return owner_pid(db)

    def expired_session(name: str) -> None:
        with psycopg.connect(postgres_db) as db:
            db.execute("INSERT INTO centre_sessions (token_hash, name, role, branches, desks, csrf, last_seen) "
                       "VALUES (%s, %s, 'staff', '{}', '{}', 'x', now() - interval '13 hours')", (name, name))

    def left() -> set[str]:
        with psycopg.connect(postgres_db) as db:
            return {name for name, in db.execute("SELECT name FROM centre_sessions")}

    migrate(postgres_db)
    expired_session("before the start")
    centre = start_centre(tmp_path, postgres_db)
    try:
        workers = workers_of(centre)
        assert len(workers) == 2
        wait_until(lambda: owner() in workers, "a worker to own the background work")
        first = owner()
        assert first is not None
        wait_until(lambda: not left(), "the owner's first clean-up")
        expired_session("after the start")
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: owner() not in (None, first), "another worker to take the background work over",
                   timeout=20)
        wait_until(lambda: not left(), "the new owner's clean-up of the session left after the start", timeout=20)
        # the killed worker was replaced: two workers again
        wait_until(lambda: len(workers_of(centre)) == 2 and first not in workers_of(centre), "a new worker")
        assert owner() in workers_of(centre)
        assert centre.process is not None and centre.process.poll() is None
        assert "ended (signal 9)" in centre.log_path.read_text()

        # a stop (SIGTERM to the parent, as systemd's KillMode=mixed sends it) stops every worker, and says 0
        workers = workers_of(centre)
        centre.process.terminate()
        assert centre.process.wait(15) == 0
        assert not any(alive(pid) for pid in workers)
        assert owner() is None
    finally:
        centre.stop()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_last_place_is_sold_once_across_workers(centre: CentralProcess) -> None:
    """The racers come over twelve connections, six kept on each worker: one booking, eleven told plainly."""
    start = (NOW + timedelta(days=2)).replace(hour=10)  # bibliotekar: one place a slot
    sessions = sessions_on_two_workers(centre.url, each=6)
    answers: list[requests.Response] = []
    lock = threading.Lock()
    gate = threading.Barrier(12)

    def race(session: requests.Session, i: int) -> None:
        gate.wait()
        answer = session.post(f"{centre.url}/api/v1/calendar/bookings", params={"branch": "north"},
                              json={"service": "bibliotekar", "start": start.isoformat(), "name": f"P{i}",
                                    "phone": f"+45 1234 56{i:02d}"},
                              headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=30)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=race, args=(s, i))
               for i, s in enumerate(s for kept in sessions.values() for s in kept)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 12
    assert {worker_of(a) for a in answers} == set(sessions)
    won = [a for a in answers if a.status_code == 201]
    lost = [a for a in answers if a.status_code != 201]
    assert len(won) == 1, [a.text for a in answers]
    assert {(a.status_code, a.json()["error"]["code"]) for a in lost} == {(409, "full")}
    assert {a.json()["error"]["message"] for a in lost} == {
        "Sorry, someone else has just booked that time. Choose another time."}


def test_the_bookings_per_address_are_counted_across_workers(centre: CentralProcess) -> None:
    """The test site lets an address make 20 online bookings at once (then 60 an hour): the 21st is refused,
    whichever worker each reached. The address is one of the documentation's (uvicorn takes X-Forwarded-For from
    a proxy on the same host), so the other tests' bookings from 127.0.0.1 do not count."""
    sessions = sessions_on_two_workers(centre.url)
    order = [s for kept in sessions.values() for s in kept] * 11
    answers = []
    for i, session in enumerate(order[:21]):
        start = (NOW + timedelta(days=3)).replace(hour=0) + timedelta(minutes=30 * i)
        answers.append(session.post(f"{centre.url}/api/v1/calendar/bookings", params={"branch": "north"},
                                    json={"service": "bibliotekar", "start": start.isoformat(), "name": f"P{i}",
                                          "phone": f"+45 2234 56{i:02d}"},
                                    headers={"Idempotency-Key": uuid.uuid4().hex, "X-Forwarded-For": "192.0.2.7"},
                                    timeout=30))
    assert [a.status_code for a in answers] == [201] * 20 + [429], [a.text for a in answers]
    assert len({worker_of(a) for a in answers}) == 2
    assert answers[20].json()["error"]["code"] == "slow_down"


def test_a_stopping_centre_answers_the_branches_long_polls_instead_of_cutting_them(tmp_path: Path,
                                                                                  postgres_db: str) -> None:
    """SIGTERM (a restart, a deploy): each worker answers the long polls it holds with what is current, then stops.
    Held to their 25 s, they kept uvicorn's graceful stop waiting its whole 3 s, and were then cancelled: the
    branch got no answer, and every stop of a centre with branches connected took 3 s more than its work."""
    centre = start_centre(tmp_path, postgres_db)
    first = requests.get(f"{centre.url}/api/v1/branch/changes", headers=BRANCH, timeout=10).json()
    answers: list[Any] = []

    def hold() -> None:
        try:
            answers.append(requests.get(f"{centre.url}/api/v1/branch/changes", headers=BRANCH, timeout=15,
                                        params={"config": (first["config"] or {}).get("version", 0),
                                                "staff": first["staff"]}))
        except requests.RequestException as exc:
            answers.append(exc)

    poll = threading.Thread(target=hold)
    poll.start()
    time.sleep(1.0)  # the poll is waiting in its worker (nothing changes: it would wait 25 s)
    assert poll.is_alive() and not answers
    centre.stop()
    poll.join(15)
    assert answers and isinstance(answers[0], requests.Response), answers
    assert answers[0].status_code == 200 and answers[0].json() == first


def test_a_killed_centre_leaves_no_worker_behind(tmp_path: Path, postgres_db: str) -> None:
    """SIGKILL of the parent (a crash, the harness's power cut): the workers go with it (PR_SET_PDEATHSIG) and
    nobody serves the port any more, so the centre can be started again there at once."""
    centre = start_centre(tmp_path, postgres_db)
    workers = workers_of(centre)
    assert len(workers) == 2
    centre.kill()
    wait_until(lambda: not any(alive(pid) for pid in workers), "the workers of a killed centre to end", timeout=10)

    def free() -> bool:  # nobody listens there any more (a killed process's sockets may take a moment to go)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((centre.host, centre.port))
            except OSError:
                return False
            return True

    wait_until(free, "the port of a killed centre to be free (a new start waits up to 10 s for it)", timeout=10)


def test_the_shared_throttles_count_as_the_ones_in_memory(postgres_db: str) -> None:
    """The SQL functions behind SharedBucket and SharedBackoff are the arithmetic of server.throttle, step by step
    on the same clock."""
    migrate(postgres_db)
    now = [1_000_000.0]
    with ConnectionPool(postgres_db, min_size=1, max_size=2) as pool:
        shared_bucket = SharedBucket(pool, "t/bucket", 3, 36.0, clock=lambda: now[0])
        bucket = Bucket(3, 36.0, clock=lambda: now[0])
        shared_backoff = SharedBackoff(pool, "t/backoff", 2, first=1.0, longest=30.0, forgive=60.0,
                                       clock=lambda: now[0])
        backoff = Backoff(2, first=1.0, longest=30.0, forgive=60.0, clock=lambda: now[0])
        waits: list[float] = []
        steps = [("take", "a"), ("take", "a"), ("take", "a", "b"), ("take", "a"), ("wait", "a"), ("give", "a"),
                 ("take", "a", "b"), ("take", "b"), ("take", "b"), ("tick", 50.0), ("take", "a"), ("take", "a"),
                 ("tick", 200.0), ("take", "a"), ("wait", "a", "b")]
        for step in steps:
            if step[0] == "tick":
                now[0] += float(step[1])
            elif step[0] == "take":
                waits.append(bucket.take(*step[1:]))
                assert shared_bucket.take(*step[1:]) == pytest.approx(waits[-1], abs=1e-6), step
            elif step[0] == "give":
                shared_bucket.give_back(*step[1:])
                bucket.give_back(*step[1:])
            else:
                waits.append(bucket.wait(*step[1:]))
                assert shared_bucket.wait(*step[1:]) == pytest.approx(waits[-1], abs=1e-6), step
        for step in [("failed", "u"), ("wait", "u"), ("failed", "u"), ("failed", "u"), ("wait", "u"), ("tick", 0.5),
                     ("wait", "u", "v"), ("failed", "u", "v"), ("failed", "u"), ("wait", "u"), ("tick", 61.0),
                     ("wait", "u"), ("tick", 130.0), ("wait", "u", "v"), ("forget", "u"), ("wait", "u")]:
            if step[0] == "tick":
                now[0] += float(step[1])
            elif step[0] == "failed":
                shared_backoff.failed(*step[1:])
                backoff.failed(*step[1:])
            elif step[0] == "forget":
                shared_backoff.forget(*step[1:])
                backoff.forget(*step[1:])
            else:
                waits.append(backoff.wait(*step[1:]))
                assert shared_backoff.wait(*step[1:]) == pytest.approx(waits[-1], abs=1e-6), step
        assert len([w for w in waits if w > 0]) >= 6 and 0.0 in waits  # the steps went through waits and none
