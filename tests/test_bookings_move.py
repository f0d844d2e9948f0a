"""Staff move a booking to another time (``PATCH /api/v1/bookings/{id}``): same code, the old places free, and a
refused move (the new time is full) leaves everything as it was. A whole hub in this process, over HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from toolkit.hub_in_process import RunningHub

STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}


def book(hub: RunningHub, start: str, **extra: Any) -> httpx.Response:
    return httpx.post(f"{hub.url}/api/v1/bookings", headers=STAFF, timeout=10,
                      json={"service": "bibliotekar", "start": f"2026-11-23T{start}:00+01:00", **extra})


def move(hub: RunningHub, booking_id: str, start: str, **extra: Any) -> httpx.Response:
    return httpx.patch(f"{hub.url}/api/v1/bookings/{booking_id}", headers=STAFF, timeout=10,
                       json={"start": f"2026-11-23T{start}:00+01:00", **extra})


def test_a_moved_booking_keeps_its_code_frees_its_old_time_and_a_refused_move_changes_nothing(
        hub_in_process: RunningHub) -> None:
    hub = hub_in_process  # Monday: one librarian takes bookings 10-16, so each slot has one place
    first = book(hub, "11:00", slots=2, name="Åse").json()
    other = book(hub, "13:00").json()

    moved = move(hub, first["id"], "14:00")
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["code"], body["start"][11:16], body["end"][11:16], body["slots"], body["name"]) == (
        first["code"], "14:00", "14:30", 2, "Åse")
    assert book(hub, "11:15").status_code == 201  # the old time is free again
    assert book(hub, "14:15").json()["error"]["code"] == "full"  # the new one is taken

    refused = move(hub, first["id"], "13:00", slots=1)  # the other booking's place
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "full"
    after = httpx.get(f"{hub.url}/api/v1/bookings?day=2026-11-23", headers=STAFF, timeout=10).json()["bookings"]
    mine = next(b for b in after if b["id"] == first["id"])
    assert (mine["start"][11:16], mine["slots"]) == ("14:00", 2)  # where it was
    assert book(hub, "14:00").json()["error"]["code"] == "full"  # and its places still held
    assert other["id"] in {b["id"] for b in after}

    # Kiosks do not move bookings; a cancelled booking is not moved.
    assert httpx.patch(f"{hub.url}/api/v1/bookings/{first['id']}", headers=KIOSK, timeout=10,
                       json={"start": "2026-11-23T15:00:00+01:00"}).status_code == 403
    assert httpx.delete(f"{hub.url}/api/v1/bookings/{other['id']}", headers=STAFF, timeout=10).status_code == 200
    assert move(hub, other["id"], "15:00").json()["error"]["code"] == "cancelled"


def test_a_staff_booking_retried_with_its_idempotency_key_books_once(hub_in_process: RunningHub) -> None:
    """The staff page sends an Idempotency-Key: a request retried after a lost answer gets the first booking."""
    hub = hub_in_process
    headers = {**STAFF, "Idempotency-Key": "staff-page-retry-1"}
    body = {"service": "bibliotekar", "start": "2026-11-23T15:00:00+01:00", "name": "Bo"}
    first = httpx.post(f"{hub.url}/api/v1/bookings", headers=headers, json=body, timeout=10)
    again = httpx.post(f"{hub.url}/api/v1/bookings", headers=headers, json=body, timeout=10)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["code"] == first.json()["code"]
    listed = httpx.get(f"{hub.url}/api/v1/bookings?day=2026-11-23", headers=STAFF, timeout=10).json()["bookings"]
    assert [b["name"] for b in listed] == ["Bo"]
    # Without a key, as before: each request books (the API's integrations are unchanged).
    other = httpx.post(f"{hub.url}/api/v1/bookings", headers=STAFF, json={**body, "start": "2026-11-23T15:30:00+01:00"},
                       timeout=10)
    assert other.status_code == 201
    assert httpx.post(f"{hub.url}/api/v1/bookings", headers={**STAFF, "Idempotency-Key": "x"}, json=body,
                      timeout=10).status_code == 400  # a malformed key is refused, not ignored
