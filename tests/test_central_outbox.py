"""The branch's half of the centre: the [central] section, and the outbox written in the change's own transaction.

Real SQLite files and a real hub (its writer thread and engine) in this process; no centre needed.
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.config import ConfigError, load_config, parse_config
from server.engine import Outcome
from server.hub import Hub
from server.store import SQLiteStore
from server.uplink.outbox import ShippedMark, read_pending
from tests.conftest import TEST_SITE

CENTRAL = {"url": "https://centre.example.dk", "token": "branch-secret-0123456789"}


def site(**central: object) -> dict:
    data = tomllib.loads(TEST_SITE.read_text(encoding="utf-8"))
    if central:
        data["central"] = central
    return data


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(data, TEST_SITE)
    return error.value.problems


def test_a_site_without_central_runs_alone() -> None:
    assert load_config(TEST_SITE).central is None


def test_the_central_section_is_read() -> None:
    config = parse_config(site(**CENTRAL, batch_rows=200), TEST_SITE)
    assert config.central is not None
    assert (config.central.url, config.central.token, config.central.batch_rows) == (
        "https://centre.example.dk", CENTRAL["token"], 200)


def test_a_sample_central_token_is_warned_about() -> None:
    from server.config import sample_secrets

    config = parse_config(site(url="https://centre.example.dk", token="demo-uplink-token-change-me"), TEST_SITE)
    assert "central.token" in sample_secrets(config)
    assert "central.token" not in sample_secrets(parse_config(site(**CENTRAL), TEST_SITE))


def test_every_mistake_in_the_central_section_is_named_by_its_key_path() -> None:
    found = problems(site(url="ftp://centre", token="short", batch_rows=0, colour="red", ca_file="missing.pem"))
    assert any(p.startswith("central.url: expected the centre's address") for p in found), found
    assert any(p.startswith("central.token: expected this branch's secret") for p in found), found
    assert any(p.startswith("central.batch_rows: expected a whole number from 1") for p in found), found
    assert any(p.startswith("central.colour: unknown key") for p in found), found
    assert any(p.startswith("central.ca_file: expected a file that exists") for p in found), found
    assert "…" in next(p for p in found if p.startswith("central.token"))  # the secret is not printed


def outbox(path: Path) -> list[tuple[int, str, str, dict]]:
    with sqlite3.connect(path) as db:
        return [(seq, kind, key, json.loads(body))
                for seq, kind, key, body in db.execute("SELECT seq, kind, key, body FROM outbox ORDER BY seq")]


@pytest.fixture()
def branch(tmp_path: Path):
    config = load_config(TEST_SITE)
    store = SQLiteStore(tmp_path / "hub.sqlite3", config.site_id, outbox=True)
    hub = Hub(config, store).start()
    yield hub, tmp_path / "hub.sqlite3"
    hub.stop()


def test_a_ticket_and_its_call_are_in_the_outbox_of_the_commit_that_made_them(branch) -> None:
    hub, path = branch
    nudged: list[bool] = []
    hub.store.outbox_committed.append(lambda: nudged.append(True))
    ticket = hub.call(lambda engine, now: engine.issue("kvik", "da", now)).ticket
    hub.call(lambda engine, now: engine.call_next("kvik1", now))
    rows = outbox(path)
    kinds = [(kind, body.get("status") or body.get("kind")) for _, kind, _, body in rows]
    assert kinds == [("ticket", "waiting"), ("event", "issued"), ("ticket", "called"), ("call", None),
                     ("event", "called")]
    assert [key for _, kind, key, _ in rows if kind == "ticket"] == [ticket.id, ticket.id]
    assert all(key.startswith(ticket.id + "/") for _, kind, key, _ in rows if kind == "event")
    assert "track_token" not in rows[0][3]  # the visitor's phone link stays at the branch
    assert len(nudged) == 2  # the uplink is told after each commit that wrote outbox rows


def test_the_uplink_is_woken_as_the_commit_goes_to_disk_and_told_again_after_it(branch) -> None:
    hub, path = branch
    seen: list[tuple[str, int]] = []

    def visible(when: str) -> None:
        with hub.store.reader() as db:  # another connection: what the uplink would read now
            seen.append((when, db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]))

    hub.store.outbox_writing.append(lambda: visible("before"))
    hub.store.outbox_committed.append(lambda: visible("after"))
    hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    hub.call(lambda engine, now: engine.call_next("kvik1", now))
    assert seen == [("before", 0), ("after", 2), ("before", 2), ("after", 5)]


def test_a_refused_command_writes_nothing_to_the_outbox(branch) -> None:
    hub, path = branch
    with pytest.raises(Exception, match="There is no service"):
        hub.call(lambda engine, now: engine.issue("nonesuch", "da", now))
    assert outbox(path) == []


def test_a_shipped_mark_moves_the_position_and_trims_the_rows(branch) -> None:
    hub, path = branch
    for _ in range(3):
        hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    seqs = [seq for seq, *_ in outbox(path)]
    assert len(seqs) == 6
    hub.call(lambda engine, now: Outcome(records=[ShippedMark(hub.config.site_id, seqs[3], now.isoformat())]))
    assert [seq for seq, *_ in outbox(path)] == seqs[4:]
    with hub.store.reader() as db:
        pending = read_pending(db, hub.config.site_id, 0, 100)
    assert pending is not None and pending.shipped == seqs[3] and pending.backlog == 2
    hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    assert outbox(path)[-1][0] > seqs[-1]  # never a number again, though rows were trimmed (AUTOINCREMENT)


def test_a_mark_handed_to_the_store_is_recorded_by_the_next_kiosk_commit_not_one_of_its_own(branch) -> None:
    """The uplink hands the centre's position over (``store.mark_due``); the writer records it with the next
    change it commits anyway, so a ticket never queues behind a synced commit of the mark alone."""
    hub, path = branch
    site = hub.config.site_id
    for _ in range(2):
        hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    seqs = [seq for seq, *_ in outbox(path)]
    with hub.store.reader() as db:
        stream = read_pending(db, site, 0, 1).stream  # type: ignore[union-attr]
    commits: list[int] = []
    hub.store.outbox_committed.append(lambda: commits.append(1))
    hub.store.mark_due = ShippedMark(site, seqs[1], datetime.now(UTC).isoformat(), stream)
    assert [seq for seq, *_ in outbox(path)] == seqs  # nothing yet: no commit has come
    hub.call(lambda engine, now: engine.issue("kvik", "da", now))  # the writer thread, as a kiosk's ticket
    assert len(commits) == 1  # one commit: the ticket's, with the mark in it
    assert [seq for seq, *_ in outbox(path)] == seqs[2:] + [seqs[-1] + 1, seqs[-1] + 2]
    with hub.store.reader() as db:
        assert read_pending(db, site, 0, 1).shipped == seqs[1]  # type: ignore[union-attr]


def test_a_mark_of_an_older_stream_changes_nothing(branch) -> None:
    """A mark that waited for a commit while a re-snapshot began a new stream must not skip the new stream's
    rows (they would never reach the centre)."""
    from server.uplink.outbox import Resnapshot

    hub, path = branch
    site = hub.config.site_id
    for _ in range(3):
        hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    with hub.store.reader() as db:
        old = read_pending(db, site, 0, 1)
    assert old is not None
    hub.call(lambda engine, now: Outcome(records=[Resnapshot(site)]))
    again = outbox(path)
    hub.store.mark_due = ShippedMark(site, again[-1][0], datetime.now(UTC).isoformat(), old.stream)
    hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    assert [seq for seq, *_ in outbox(path)][:len(again)] == [seq for seq, *_ in again]  # none trimmed
    with hub.store.reader() as db:
        assert read_pending(db, site, 0, 1).shipped == 0  # type: ignore[union-attr]


def test_a_site_that_joins_a_centre_ships_its_history(tmp_path: Path) -> None:
    config = load_config(TEST_SITE)
    path = tmp_path / "hub.sqlite3"
    hub = Hub(config, SQLiteStore(path, config.site_id)).start()
    for _ in range(2):
        hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    hub.call(lambda engine, now: engine.call_next("kvik1", now))
    hub.stop()
    assert outbox(path) == []  # alone, it writes no outbox

    store = SQLiteStore(path, config.site_id, outbox=True)
    rows = outbox(path)
    store.close()
    assert sorted(kind for _, kind, _, _ in rows) == ["call", "event", "event", "event", "ticket", "ticket"]
    called = next(body for _, kind, _, body in rows if kind == "ticket" and body["status"] == "called")
    assert called["label"] == "K001" and called["counter"] == "kvik1"
    assert datetime.fromisoformat(called["called_at"]).tzinfo == UTC
    assert next(body for _, kind, _, body in rows if kind == "call")["recall"] is False
    again = SQLiteStore(path, config.site_id, outbox=True)  # a second start does not ship it twice
    assert len(outbox(path)) == len(rows)
    again.close()


def test_feedback_and_device_status_changes_go_out_too(branch) -> None:
    from server.feedback import FeedbackRecord, write_feedback
    from server.stats.records import SCHEMA_NAME, SCHEMA_STEPS, DeviceStatusRecord, write_device_status

    hub, path = branch
    hub.store.writers.update({FeedbackRecord: write_feedback, DeviceStatusRecord: write_device_status})
    hub.call(lambda engine, now: hub.store.migrate_plugin(SCHEMA_NAME, SCHEMA_STEPS))
    site_id = hub.config.site_id
    hub.call(lambda engine, now: Outcome(records=[
        FeedbackRecord(site_id, now.isoformat(), 4, service="kvik", device="kiosk1"),
        DeviceStatusRecord(site_id, "kiosk1", "kiosk", now.isoformat(), online=False, printer="paper_out")]))
    rows = outbox(path)
    assert [kind for _, kind, _, _ in rows] == ["feedback", "device_status"]
    assert rows[0][3]["rating"] == 4 and rows[1][3]["online"] is False and rows[1][3]["printer"] == "paper_out"
    assert rows[0][2].startswith(f"{hub.store.origin}/1/")  # the file's own id in the key: a wiped hub's row 1 differs


def test_a_new_stream_puts_the_whole_store_in_the_outbox_and_counts_it_right(branch) -> None:
    from server.uplink.outbox import Resnapshot

    hub, path = branch
    for _ in range(3):
        hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    hub.call(lambda engine, now: engine.call_next("kvik1", now))
    before = outbox(path)
    with hub.store.reader() as db:
        old = read_pending(db, hub.config.site_id, 0, 100)
    hub.call(lambda engine, now: Outcome(records=[ShippedMark(hub.config.site_id, before[-1][0], now.isoformat())]))
    assert outbox(path) == []
    hub.call(lambda engine, now: Outcome(records=[Resnapshot(hub.config.site_id)]))
    again = outbox(path)
    assert sorted(kind for _, kind, _, _ in again) == sorted(kind for _, kind, _, _ in before if kind != "ticket") + \
        ["ticket"] * 3  # every ticket once (its current state), every history line and call again
    assert {key for _, _, key, _ in again} == {key for _, _, key, _ in before}  # the same keys: nothing doubles
    assert again[0][0] > before[-1][0]  # numbers go on growing
    with hub.store.reader() as db:
        new = read_pending(db, hub.config.site_id, 0, 2)
    assert old is not None and new is not None and new.stream != old.stream and new.shipped == 0
    assert new.backlog == len(again) and len(new.rows) == 2


def test_a_re_snapshot_is_copied_in_chunks_while_tickets_go_on_and_ends_with_every_row_newest_last(
        branch, monkeypatch) -> None:
    """The writer is held for one chunk at a time (outbox.SNAPSHOT_CHUNK_ROWS source rows), not the whole store;
    tickets issued and called between the chunks are in the outbox too, and each ticket's last row is its state."""
    from server.uplink import outbox as uplink_outbox
    from server.uplink.outbox import Resnapshot, SnapshotChunk, snapshot_left

    monkeypatch.setattr(uplink_outbox, "SNAPSHOT_CHUNK_ROWS", 7)
    hub, path = branch
    site = hub.config.site_id
    hub.call(lambda engine, now: tuple(engine.issue("kvik", "da", now) for _ in range(20)))
    hub.call(lambda engine, now: engine.call_next("kvik1", now))
    before = outbox(path)
    hub.call(lambda engine, now: Outcome(records=[ShippedMark(site, before[-1][0], now.isoformat())]))
    hub.call(lambda engine, now: Outcome(records=[Resnapshot(site)]))
    assert 0 < len(outbox(path)) <= 7  # one chunk, not the store

    def left() -> bool:
        with hub.store.reader() as db:
            return snapshot_left(db, site)

    chunks = 1
    while left():  # what the uplink does: a chunk, then shipping; here a kiosk and a desk in between
        hub.call(lambda engine, now: engine.issue("kvik", "da", now))
        hub.call(lambda engine, now: engine.call_next("kvik1", now))
        hub.call(lambda engine, now: Outcome(records=[SnapshotChunk(site)]))
        chunks += 1
    assert chunks >= (20 + 1 + 20 + 1) // 7  # tickets, a call, their history: many chunks of 7

    rows = outbox(path)
    with sqlite3.connect(path) as db:
        tickets = dict(db.execute("SELECT id, status FROM tickets"))
        events = {f"{t}/{i}/{at}" for i, t, at in db.execute("SELECT id, ticket_id, at FROM ticket_log")}
        calls = {c for c, in db.execute("SELECT id FROM calls")}
    newest = {key: body["status"] for _, kind, key, body in rows if kind == "ticket"}  # the later row wins
    assert newest == tickets  # every ticket, old and new, and each at its current state
    assert {key for _, kind, key, _ in rows if kind == "event"} == events
    assert {key for _, kind, key, _ in rows if kind == "call"} == calls
    assert len([key for _, kind, key, _ in rows if kind == "event"]) == len(events)  # no history line twice
    hub.call(lambda engine, now: Outcome(records=[SnapshotChunk(site)]))  # nothing left: writes nothing
    assert outbox(path) == rows


def events_plugin(hub: Hub) -> None:
    """The events plugin's tables and writers on this hub (as the plugin installs them in a hub process)."""
    from server import events as plugin

    hub.store.writers.update(plugin.record_writers())
    name, steps = plugin.store_schema()
    hub.call(lambda engine, now: hub.store.migrate_plugin(name, steps))


def whats_on(hub: Hub) -> dict[str, str]:
    """A staff event with two seats: Anna and Bent seated, Karen (a name written by staff) waiting; Anna checks in,
    Bent gives up his seat and Karen moves up. Ids by name."""
    from datetime import timedelta

    from server.events.records import AttendanceRow, Event, LocalEventRow, SignupCancelRow, SignupRow

    site_id = hub.config.site_id
    ids = {"event": "ev-cafe", "anna": "su-anna", "bent": "su-bent", "karen": "su-karen"}

    def made(engine: object, now: datetime) -> Outcome:
        cafe = Event(ids["event"], "staff", "Sprogcafé", now + timedelta(hours=1), now + timedelta(hours=2), seats=2,
                     waiting_list=2)
        return Outcome(records=[
            LocalEventRow(site_id, cafe, now),
            SignupRow(ids["anna"], site_id, cafe.id, "CODEANNA", 1, None, "da", "k-anna", now),
            SignupRow(ids["bent"], site_id, cafe.id, "CODEBENT", 2, None, "da", "k-bent", now),
            SignupRow(ids["karen"], site_id, cafe.id, "CODEKARE", None, 1, "da", None, now, name="Karen Jensen")])

    hub.call(made)
    hub.call(lambda engine, now: Outcome(records=[AttendanceRow(ids["anna"], now)]))
    hub.call(lambda engine, now: Outcome(records=[SignupCancelRow(ids["bent"], ids["karen"], 2, now)]))
    return ids


def test_staff_events_and_sign_ups_go_out_in_their_commits_without_codes_or_names(branch) -> None:
    hub, path = branch
    events_plugin(hub)
    ids = whats_on(hub)
    rows = [(kind, key, body) for _, kind, key, body in outbox(path)]
    assert [(kind, key) for kind, key, _ in rows] == [
        ("staff_event", ids["event"]), ("signup", ids["anna"]), ("signup", ids["bent"]), ("signup", ids["karen"]),
        ("signup", ids["anna"]),  # checked in
        ("signup", ids["bent"]), ("signup", ids["karen"])]  # given up (a tombstone), and Karen moved up
    assert rows[0][2]["title"] == "Sprogcafé" and rows[0][2]["seats"] == 2
    assert rows[4][2]["attended_at"] is not None and rows[1][2]["attended_at"] is None
    assert rows[5][2] == {"id": ids["bent"], "event_id": ids["event"], "cancelled_at": rows[5][2]["cancelled_at"],
                          "cancelled": True}
    assert (rows[6][2]["seat"], rows[6][2]["waiting_place"]) == (2, None)
    text = json.dumps([body for _, _, body in rows])
    assert "Karen" not in text and "CODE" not in text and "k-anna" not in text  # no name, no code, no key


def test_a_stream_from_before_ships_its_events_and_sign_ups_once_after_the_upgrade(branch) -> None:
    from server.uplink.outbox import Backfill, Resnapshot

    hub, path = branch
    events_plugin(hub)
    hub.call(lambda engine, now: engine.issue("kvik", "da", now))
    ids = whats_on(hub)
    # as an older hub left its store: everything shipped and trimmed, and no note of which sources the stream has
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM outbox")
        db.execute("DROP TABLE uplink_sources")
    site_id = hub.config.site_id
    hub.call(lambda engine, now: Outcome(records=[Backfill(site_id)]))
    rows = outbox(path)
    assert sorted((kind, key) for _, kind, key, _ in rows) == sorted(
        [("staff_event", ids["event"]), ("signup", ids["anna"]), ("signup", ids["karen"]), ("signup", ids["bent"])])
    assert next(body for _, _, key, body in rows if key == ids["bent"])["cancelled"] is True
    hub.call(lambda engine, now: Outcome(records=[Backfill(site_id)]))  # the next start: nothing again
    assert len(outbox(path)) == len(rows)
    hub.call(lambda engine, now: Outcome(records=[Resnapshot(site_id)]))  # a new stream: every source, whole
    again = outbox(path)
    assert {kind for _, kind, _, _ in again} == {"ticket", "event", "staff_event", "signup"}
    hub.call(lambda engine, now: Outcome(records=[Backfill(site_id)]))
    assert len(outbox(path)) == len(again)


def test_a_hub_without_a_centre_writes_no_outbox_and_says_nothing_of_an_uplink(hub) -> None:  # type: ignore[no-untyped-def]
    """A single site runs as before any centre existed: the real ``vuoro hub`` process on a site file without
    ``[central]`` issues and calls, keeps no outbox rows for anyone, and its health has no uplink."""
    import requests

    kiosk = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
    staff = {"Authorization": "Bearer demo-staff-token-change-me"}
    made = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"}, timeout=10,
                         headers={**kiosk, "Idempotency-Key": "alone-0001"})
    assert made.status_code == 201, made.text
    assert requests.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=staff, timeout=10).ok
    health = requests.get(f"{hub.url}/api/v1/health", timeout=10).json()
    assert "uplink" not in health, health
    with sqlite3.connect(f"file:{hub.data_dir / 'hub.sqlite3'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM tickets").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
