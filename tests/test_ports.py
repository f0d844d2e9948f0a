"""The test kit's free ports (toolkit/ports.py): below the kernel's ephemeral range, a slice per test worker,
never one that is taken, never the same one twice in a row."""

from __future__ import annotations

import os
import socket

from toolkit import ports


def test_ports_are_below_the_ephemeral_range_in_this_workers_slice_and_all_different() -> None:
    found = ports.free_ports(5)
    assert len(set(found)) == 5
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") else 8
    first = ports.LOWEST + index * ports.SLICE
    assert all(first <= port < min(first + ports.SLICE, ports.ephemeral_floor()) for port in found), (found, worker)
    assert ports.free_port() not in found  # the next one is another again


def test_a_port_someone_holds_is_passed_over() -> None:
    upcoming = ports.free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", upcoming + 1))  # the one the turn gives next, unless it wrapped round
        holder.listen()
        assert not ports.bindable(upcoming + 1)
        assert ports.free_port() != upcoming + 1
