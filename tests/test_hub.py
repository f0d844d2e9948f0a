"""The hub as a site runs it: a real process, a real Mosquitto, a real SQLite file.

Each hub here gets its own MQTT topic root, so tests never see each other's
retained state on the shared session broker.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from toolkit.broker import Broker
from toolkit.fixtures import MakeHub
from toolkit.hub_process import HubProcess
from vuoro import protocol

SITE = Path(__file__).parent / "sites" / "always_open.toml"
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
KIOSK2 = {"Authorization": "Bearer demo-kiosk2-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
SCREEN = {"Authorization": "Bearer demo-screen1-token-change-me"}


def base(hub: HubProcess) -> str:
    return f"{hub.topic_root}/sonderbro"


def issue(hub: HubProcess, service: str = "kvik", key: str | None = None, headers: dict | None = None,
          timeout: float = 10) -> requests.Response:
    return requests.post(f"{hub.url}/api/v1/tickets", json={"service": service, "language": "da"},
                         headers={**(headers or KIOSK), "Idempotency-Key": key or uuid.uuid4().hex}, timeout=timeout)


def act(hub: HubProcess, counter: str, action: str, key: str | None = None,
        **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
    headers = {**STAFF, **({"Idempotency-Key": key} if key else {})}
    return requests.post(f"{hub.url}/api/v1/counters/{counter}/{action}", headers=headers, timeout=10, **kwargs)


# -- HTTP ------------------------------------------------------------------------------


def test_health_says_store_and_broker_are_fine(hub: HubProcess) -> None:
    body = requests.get(f"{hub.url}/api/v1/health", timeout=5).json()
    assert body["store"] == "ok" and body["site"] == "sonderbro"
    deadline = time.monotonic() + 10
    while body["broker"] != "connected" and time.monotonic() < deadline:
        time.sleep(0.05)
        body = requests.get(f"{hub.url}/api/v1/health", timeout=5).json()
    assert body["status"] == "ok" and body["broker"] == "connected"


def test_a_ticket_and_its_replay(hub: HubProcess) -> None:
    first = issue(hub, key="kiosk-retry-0001")
    assert first.status_code == 201
    ticket = first.json()
    assert ticket["ticket"] == "K001" and ticket["position"] == 0 and ticket["service_names"]["da"]
    replay = issue(hub, key="kiosk-retry-0001")
    assert replay.status_code == 200 and replay.json()["id"] == ticket["id"]
    # the same key from another kiosk is another request
    other = issue(hub, key="kiosk-retry-0001", headers=KIOSK2)
    assert other.status_code == 201 and other.json()["ticket"] == "K002"
    read = requests.get(f"{hub.url}/api/v1/tickets/{ticket['id']}", timeout=5).json()
    assert read["ticket"] == "K001" and read["status"] == "waiting"
    tracked = requests.get(f"{hub.url}/api/v1/track/{ticket['track_token']}", timeout=5).json()
    assert tracked["ticket"] == "K001" and "id" not in tracked and "track_token" not in tracked


def test_an_idempotency_key_reused_for_another_request_is_refused_even_after_a_restart(
        tmp_path: Path, make_hub: MakeHub) -> None:
    """docs/protocol.md: the same key with a different body is 409, never the first ticket passed off as the
    answer to another question. The key's digest is in the store, so a restarted hub still knows."""
    hub = make_hub(tmp_path).start()
    try:
        first = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                              headers={**KIOSK, "Idempotency-Key": "kiosk1-touch-0001"}, timeout=10)
        assert first.status_code == 201
        hub.stop()
        hub.start()
        same = requests.post(f"{hub.url}/api/v1/tickets", json={"language": "da", "service": "kvik"},
                             headers={**KIOSK, "Idempotency-Key": "kiosk1-touch-0001"}, timeout=10)
        assert same.status_code == 200 and same.json()["id"] == first.json()["id"]  # the retry it is for
        for other in ({"service": "it", "language": "da"}, {"service": "kvik", "language": "en"}):
            reused = requests.post(f"{hub.url}/api/v1/tickets", json=other,
                                   headers={**KIOSK, "Idempotency-Key": "kiosk1-touch-0001"}, timeout=10)
            assert reused.status_code == 409, reused.text
            error = reused.json()["error"]
            assert error["code"] == "idempotency_key_reused" and error["field"] == "Idempotency-Key"
        queues = {q["service"]: q for q in requests.get(f"{hub.url}/api/v1/queues", timeout=5).json()}
        assert queues["it"]["waiting"] == 0 and queues["kvik"]["waiting"] == 1
    finally:
        hub.stop()


def test_refusals_are_clear_and_never_500(hub: HubProcess) -> None:
    booking_only = issue(hub, "borgerservice")
    assert booking_only.status_code == 409 and booking_only.json()["error"]["code"] == "booking_only"
    unknown = issue(hub, "passport")
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "service"
    no_token = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik"},
                             headers={"Idempotency-Key": "abcdefgh"}, timeout=5)
    assert no_token.status_code == 401
    wrong_token = issue(hub, headers={"Authorization": "Bearer not-a-real-token-at-all"})
    assert wrong_token.status_code == 401
    screen = issue(hub, headers=SCREEN)
    assert screen.status_code == 403 and "display may not" in screen.json()["error"]["message"]
    no_key = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik"}, headers=KIOSK, timeout=5)
    assert no_key.status_code == 400 and no_key.json()["error"]["field"] == "Idempotency-Key"
    missing = requests.post(f"{hub.url}/api/v1/tickets", json={"language": "da"},
                            headers={**KIOSK, "Idempotency-Key": "abcdefgh2"}, timeout=5)
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "service"
    garbage = requests.post(f"{hub.url}/api/v1/tickets", data=b"\xff\x00{",
                            headers={**KIOSK, "Idempotency-Key": "abcdefgh3", "Content-Type": "application/json"},
                            timeout=5)
    assert garbage.status_code in (400, 422) and garbage.json()["error"]["message"]
    kiosk_calling = requests.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=KIOSK, timeout=5)
    assert kiosk_calling.status_code == 403
    nobody = act(hub, "kvik1", "recall")
    assert nobody.status_code == 409 and nobody.json()["error"]["code"] == "no_current_visitor"
    assert act(hub, "desk99", "next").status_code == 404


def test_the_openapi_document_describes_the_api(hub: HubProcess) -> None:
    spec = requests.get(f"{hub.url}/api/v1/openapi.json", timeout=5).json()
    assert "/api/v1/tickets" in spec["paths"] and "/api/v1/counters/{counter}/next" in spec["paths"]


# -- MQTT: retained state, calls ----------------------------------------------------------


def test_a_screen_connecting_late_gets_the_whole_picture_from_retained_state(hub: HubProcess, watch) -> None:
    issue(hub)
    act(hub, "kvik1", "next")
    issue(hub)
    b = base(hub)
    expected = {f"{b}/hub/status", f"{b}/site", f"{b}/calls/recent", f"{b}/message",
                *(f"{b}/queue/{s}/state" for s in ("kvik", "borgerservice", "bibliotekar", "it")),
                *(f"{b}/counters/{c}/state" for c in ("kvik1", "kvik2", "borger1", "bib1"))}
    late = watch(f"{b}/#")
    # Every topic arrives retained; the newest queue state may instead arrive live (retain flag 0) if the
    # screen subscribed between the kiosk's answer and the hub's publish, so read the latest payload.
    late.wait_for(lambda w: expected <= set(w.retained)
                  and json.loads(w.latest[f"{b}/queue/kvik/state"])["waiting"] == 1)
    kvik = json.loads(late.latest[f"{b}/queue/kvik/state"])
    assert kvik["v"] == protocol.SCHEMA_VERSION and kvik["last_called"] == "K001" and kvik["open"]
    desk = json.loads(late.latest[f"{b}/counters/kvik1/state"])
    assert desk["serving"]["ticket"] == "K001" and desk["status"] == "open"
    recent = json.loads(late.latest[f"{b}/calls/recent"])
    assert [c["ticket"] for c in recent["calls"]] == ["K001"]
    assert json.loads(late.retained[f"{b}/hub/status"])["online"] is True


def test_a_call_is_an_event_and_updates_the_state(hub: HubProcess, watch) -> None:
    b = base(hub)
    screen = watch(f"{b}/#")
    issue(hub)
    answer = act(hub, "kvik2", "next").json()
    assert answer["call"]["ticket"] == "K001" and answer["call"]["counter_name"] == "Skranke 2"
    event = screen.wait_for(lambda w: next((json.loads(p) for t, p, r in w.messages if t == f"{b}/calls"), None))
    assert event["ticket"] == "K001" and event["counter"] == "kvik2" and event["recall"] is False
    act(hub, "kvik2", "recall")
    calls = screen.wait_for(lambda w: [json.loads(p) for t, p, r in w.messages if t == f"{b}/calls"][1:])
    assert calls[0]["recall"] is True and calls[0]["ticket"] == "K001"


def test_counter_actions_over_http(hub: HubProcess) -> None:
    for _ in range(2):
        issue(hub)
    assert act(hub, "kvik1", "next").json()["call"]["ticket"] == "K001"
    assert act(hub, "kvik1", "no-show").json()["counter"]["serving"] is None
    assert act(hub, "kvik1", "next").json()["call"]["ticket"] == "K002"
    moved = act(hub, "kvik1", "transfer", json={"service": "it"})
    assert moved.status_code == 200
    assert act(hub, "bib1", "next").json()["call"]["ticket"] == "K002"  # bib1 serves IT
    assert act(hub, "bib1", "finish").json()["counter"]["serving"] is None
    assert act(hub, "bib1", "pause").json()["counter"]["status"] == "paused"
    empty = act(hub, "kvik1", "next").json()
    assert empty["call"] is None and empty["message"] == "No one is waiting"
    issue(hub)
    issue(hub)
    twice = [act(hub, "kvik2", "next", key="double-click-1").json() for _ in range(2)]
    assert twice[0] == twice[1] and twice[0]["call"]["ticket"] == "K003"  # a double click calls once
    queues = requests.get(f"{hub.url}/api/v1/queues", timeout=5).json()
    assert next(q for q in queues if q["service"] == "kvik")["waiting"] == 1


# -- MQTT: button presses and device status -------------------------------------------------


def press(watcher, hub: HubProcess, counter: str, press_id: str, *, action: str = "next",
          device: str = "buttons1", age: float = 0.0) -> None:
    payload = protocol.ButtonPress(press_id, counter, action, device, time.time() - age).to_payload()
    watcher.client.publish(f"{base(hub)}/buttons/{counter}/press", payload, qos=1).wait_for_publish(5)


def result_of(watcher, hub: HubProcess, counter: str, press_id: str) -> list[dict]:
    topic = f"{base(hub)}/buttons/{counter}/result"
    return [json.loads(p) for t, p, r in watcher.messages if t == topic and json.loads(p)["press_id"] == press_id]


def test_a_button_press_calls_once_even_if_delivered_twice(hub: HubProcess, watch) -> None:
    box = watch(f"{base(hub)}/#")
    issue(hub)
    issue(hub)
    press(box, hub, "kvik1", "box1-0001")
    first = box.wait_for(lambda w: result_of(w, hub, "kvik1", "box1-0001"))[0]
    assert first["ok"] is True and first["ticket"] == "K001"
    press(box, hub, "kvik1", "box1-0001")  # the broker delivering the same press again
    again = box.wait_for(lambda w: result_of(w, hub, "kvik1", "box1-0001")[1:])[0]
    assert again == first
    desk = requests.get(f"{hub.url}/api/v1/counters", timeout=5).json()
    assert next(c for c in desk if c["counter"] == "kvik1")["serving"]["ticket"] == "K001"  # K002 still waits


def test_a_stale_or_foreign_press_is_refused(hub: HubProcess, watch) -> None:
    box = watch(f"{base(hub)}/#")
    issue(hub)
    press(box, hub, "kvik1", "box1-old", age=60)
    stale = box.wait_for(lambda w: result_of(w, hub, "kvik1", "box1-old"))[0]
    assert stale == {"v": 1, "press_id": "box1-old", "ok": False, "ticket": None, "reason": "press expired"}
    press(box, hub, "bib1", "box1-foreign")  # buttons1 owns kvik1 and kvik2 only
    foreign = box.wait_for(lambda w: result_of(w, hub, "bib1", "box1-foreign"))[0]
    assert foreign["ok"] is False and "may not" in foreign["reason"]
    waiting = requests.get(f"{hub.url}/api/v1/queues", timeout=5).json()
    assert next(q for q in waiting if q["service"] == "kvik")["waiting"] == 1  # nobody was called


def test_malformed_payloads_are_dropped_and_the_hub_goes_on(hub: HubProcess, watch) -> None:
    box = watch(f"{base(hub)}/#")
    b = base(hub)
    for topic, payload in [
        (f"{b}/buttons/kvik1/press", b"not json"),
        (f"{b}/buttons/kvik1/press", b"[1,2,3]"),
        (f"{b}/buttons/kvik1/press", b'{"v": 1, "press_id": "x", "counter": "kvik1", "action": "explode"}'),
        (f"{b}/buttons/kvik1/press", b'{"v": 99, "press_id": "x"}'),
        (f"{b}/buttons/kvik1/press", b'{"v": 1, "press_id": "x", "counter": "kvik2", "action": "next",'
                                     b' "device": "buttons1", "sent_at": 1e12}'),
        (f"{b}/devices/kiosk1/status", b"\xff\xfe"),
        (f"{b}/devices/kiosk1/status", b'{"v": 1, "device": "kiosk2", "kind": "kiosk", "online": true}'),
    ]:
        box.client.publish(topic, payload, qos=1).wait_for_publish(5)
    status = protocol.DeviceStatus("kiosk1", "kiosk", True, printer="paper_low", detail="paper low")
    box.client.publish(f"{b}/devices/kiosk1/status", status.to_payload(), qos=1, retain=True).wait_for_publish(5)
    deadline = time.monotonic() + 10
    devices: list = []
    while time.monotonic() < deadline and not devices:
        devices = requests.get(f"{hub.url}/api/v1/devices", headers=STAFF, timeout=5).json()
        time.sleep(0.05)
    assert devices[0]["device"] == "kiosk1" and devices[0]["printer"] == "paper_low"
    assert issue(hub).status_code == 201
    assert hub.process.poll() is None


def test_the_hub_republishes_everything_after_a_broker_restart(hub: HubProcess, live_broker: Broker, watch) -> None:
    issue(hub)
    b = base(hub)
    first = watch(f"{b}/#")
    first.wait_for(lambda w: f"{b}/site" in w.retained)
    # Wipe a retained topic, as a broker without persistence would lose it, then restart the broker.
    first.client.publish(f"{b}/site", b"", qos=1, retain=True).wait_for_publish(5)
    first.close()
    live_broker.restart()
    again = watch(f"{b}/#")
    # (live deliveries carry retain=0, so look at the latest payload, not the retain flag)
    again.wait_for(lambda w: w.latest.get(f"{b}/site"), timeout=20)
    assert again.json(f"{b}/site")["site"] == "sonderbro"
    # and it goes on publishing changes
    issue(hub)
    again.wait_for(lambda w: (w.json(f"{b}/queue/kvik/state") or {}).get("waiting") == 2, timeout=20)


# -- many at once, and a crash ---------------------------------------------------------------


def test_kiosks_issuing_at_once_get_unique_gap_free_numbers(hub: HubProcess) -> None:
    def burst(kiosk: int) -> list[str]:
        headers = {"Authorization": f"Bearer demo-kiosk{1 + kiosk % 2}-token-change-me"}
        return [issue(hub, key=f"burst-{kiosk}-{i:04d}", headers=headers).json()["ticket"] for i in range(25)]

    with ThreadPoolExecutor(8) as pool:
        labels = [label for batch in pool.map(burst, range(8)) for label in batch]
    assert len(labels) == 200
    assert sorted(int(label[1:]) for label in labels) == list(range(1, 201))


def test_sigkill_under_load_loses_nothing_and_repeats_no_number(tmp_path: Path, make_hub: MakeHub) -> None:
    hub = make_hub(tmp_path).start()
    acknowledged: dict[str, dict] = {}  # idempotency key → ticket the kiosk was given
    attempted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def kiosk(n: int) -> None:
        i = 0
        while not stop.is_set() and i < 2000:
            key = f"crash-{n}-{i:05d}"
            with lock:
                attempted.append(key)
            try:
                answer = issue(hub, key=key, timeout=2)
                if answer.status_code in (200, 201):
                    with lock:
                        acknowledged[key] = answer.json()
            except requests.RequestException:
                pass  # the hub died mid-request: this key is retried after the restart
            i += 1

    def desk() -> None:
        while not stop.is_set():
            with contextlib.suppress(requests.RequestException):
                act(hub, "kvik1", "next")

    threads = [threading.Thread(target=kiosk, args=(n,)) for n in range(4)] + [threading.Thread(target=desk)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    hub.kill()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acknowledged) >= 150, "the load never got going"

    hub.start()
    try:
        # every retry is answered with its original ticket; in-flight keys get one ticket each
        for key in attempted:
            again = issue(hub, key=key)
            assert again.status_code in (200, 201), again.text
            if key in acknowledged:
                assert again.status_code == 200
                assert again.json()["id"] == acknowledged[key]["id"]
                assert again.json()["ticket"] == acknowledged[key]["ticket"]
        fresh = issue(hub).json()["ticket"]
    finally:
        hub.stop()
    db = sqlite3.connect(tmp_path / "hub.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    numbers = [n for (n,) in db.execute("SELECT number FROM tickets WHERE letter = 'K' ORDER BY number")]
    assert numbers == list(range(1, len(numbers) + 1))  # no number twice, no gap
    assert int(fresh[1:]) == len(numbers)
    stored = {row[0] for row in db.execute("SELECT id FROM tickets")}
    assert {t["id"] for t in acknowledged.values()} <= stored


def test_the_hub_tells_systemd_it_is_ready_and_alive(tmp_path: Path, make_hub: MakeHub,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Type=notify + WatchdogSec: READY=1 once serving, then WATCHDOG=1 while the writer answers."""
    import socket

    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(20)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # systemd's WatchdogSec=0.4s → feed every 0.2 s
    hub = make_hub(tmp_path / "hub").start()
    try:
        seen: list[str] = []
        while "WATCHDOG=1" not in seen:
            seen += sock.recv(4096).decode().splitlines()
        assert "READY=1" in seen and seen.index("READY=1") < seen.index("WATCHDOG=1")
    finally:
        hub.stop()
        sock.close()


def test_a_command_that_fails_half_way_leaves_nothing_behind_in_memory(tmp_path: Path) -> None:
    """A bug that raises after changing the engine must not leave a ticket that exists only in memory."""
    from server.config import load_config
    from server.hub import Hub
    from server.store import SQLiteStore

    hub = Hub(load_config(SITE), SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")).start()
    try:
        def buggy(engine, now):  # type: ignore[no-untyped-def]
            engine.issue("kvik", "da", now)
            raise RuntimeError("a bug after the engine moved on")

        with pytest.raises(RuntimeError):
            hub.call(buggy)
        assert hub.call(lambda engine, now: engine.waiting_count("kvik")) == 0
        ticket = hub.call(lambda engine, now: engine.issue("kvik", "da", now)).ticket
        assert ticket.label == "K001"  # the number the bug took was never handed out
    finally:
        hub.stop()


def test_midnight_is_written_even_when_the_first_command_of_the_day_is_refused(tmp_path: Path) -> None:
    """Yesterday's leftovers are expired in the store, not only in memory, and numbers restart."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from server.config import SAMPLE_SITE, load_config
    from server.engine import Refusal
    from server.hub import Hub
    from server.store import SQLiteStore

    now = [datetime(2026, 11, 23, 17, 59, tzinfo=ZoneInfo("Europe/Copenhagen"))]
    hub = Hub(load_config(SAMPLE_SITE), SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro"),
              clock=lambda: now[0]).start()
    try:
        left = hub.call(lambda engine, at: engine.issue("kvik", "da", at)).ticket
        now[0] += timedelta(hours=7)  # 00:59 the next day: KVIK is closed, the issue is refused
        with pytest.raises(Refusal):
            hub.call(lambda engine, at: engine.issue("kvik", "da", at))
        status = sqlite3.connect(tmp_path / "hub.sqlite3").execute(
            "SELECT status FROM tickets WHERE id = ?", (left.id,)).fetchone()[0]
        assert status == "expired"
        now[0] += timedelta(hours=10)  # 10:59, open again
        assert hub.call(lambda engine, at: engine.issue("kvik", "da", at)).ticket.label == "K001"
    finally:
        hub.stop()
