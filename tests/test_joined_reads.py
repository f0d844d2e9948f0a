"""central/joined_reads.py: identical reads at the same moment made once, never an answer read before its caller
asked. Real threads; the reads are held open with events, so nothing depends on timing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from central.joined_reads import JoinedReads


class HeldRead:
    """A read that reports it began and then waits to be let go; it answers how many reads began before it."""

    def __init__(self) -> None:
        self.began: list[threading.Event] = []
        self.release: list[threading.Event] = []
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            n = len(self.began)
            began, release = threading.Event(), threading.Event()
            self.began.append(began)
            self.release.append(release)
        began.set()
        assert release.wait(10)
        return n


def call(reads: JoinedReads[Any], key: object, read: Any, answers: dict[str, Any], name: str) -> threading.Thread:
    def run() -> None:
        try:
            answers[name] = reads.run(key, read)
        except Exception as exc:
            answers[name] = exc

    t = threading.Thread(target=run)
    t.start()
    return t


def wait_for(condition: Any) -> None:
    done = threading.Event()
    for _ in range(2000):
        if condition():
            return
        done.wait(0.005)
    raise AssertionError("not reached in 10 s")


def test_callers_arriving_during_a_read_share_the_next_one_begun_after_them() -> None:
    reads: JoinedReads[int] = JoinedReads()
    read = HeldRead()
    answers: dict[str, Any] = {}
    first = call(reads, "k", read, answers, "first")
    wait_for(lambda: len(read.began) == 1)
    # Three callers arrive while the first read is under way: none takes its answer (read before they asked)
    late = [call(reads, "k", read, answers, f"late{i}") for i in range(3)]
    wait_for(lambda: reads._keys["k"].next is not None and reads._keys["k"].next.callers == 3)
    read.release[0].set()
    first.join(10)
    assert answers["first"] == 0
    wait_for(lambda: len(read.began) == 2)  # ONE more read, begun after all three asked
    read.release[1].set()
    for t in late:
        t.join(10)
    assert [answers[f"late{i}"] for i in range(3)] == [1, 1, 1]
    assert reads.reads == 2 and len(read.began) == 2
    assert reads._keys == {}  # nothing kept once no read is under way


def test_other_keys_do_not_wait_for_each_other() -> None:
    reads: JoinedReads[str] = JoinedReads()
    held = HeldRead()
    answers: dict[str, Any] = {}
    slow = call(reads, "a", held, answers, "a")
    wait_for(lambda: len(held.began) == 1)
    assert reads.run("b", lambda: "b's own") == "b's own"  # not held up by "a"
    held.release[0].set()
    slow.join(10)
    assert answers["a"] == 0 and reads.reads == 2


def test_an_error_reaches_every_caller_that_shared_the_read_and_the_next_read_is_made_afresh() -> None:
    reads: JoinedReads[int] = JoinedReads()
    held = HeldRead()
    answers: dict[str, Any] = {}
    first = call(reads, "k", held, answers, "first")
    wait_for(lambda: len(held.began) == 1)
    gate = threading.Event()

    def failing() -> int:
        gate.wait(10)
        raise LookupError("the database said no")

    late = [call(reads, "k", failing, answers, f"late{i}") for i in range(2)]
    wait_for(lambda: reads._keys["k"].next is not None and reads._keys["k"].next.callers == 2)
    held.release[0].set()
    gate.set()
    first.join(10)
    for t in late:
        t.join(10)
    assert answers["first"] == 0
    assert all(isinstance(answers[f"late{i}"], LookupError) for i in range(2))
    assert reads.run("k", lambda: 7) == 7  # nothing stuck after the error
    with pytest.raises(ValueError):
        reads.run("k", lambda: int("x"))
    assert reads._keys == {}
