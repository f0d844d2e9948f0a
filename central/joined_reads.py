"""Identical reads asked at the same moment, made once (the free times at a morning release: every citizen asks
for the same branch, service and day at once).

A caller that finds the read of its key under way does NOT take that read's answer (it began before the caller
asked, and may miss a sale the caller already knows of): it waits for the NEXT read of the key, which begins only
after the one under way has ended, and which every caller arriving meanwhile shares. So every answer is as fresh as
a read of the caller's own would have been, and at most two reads of a key are ever under way or waiting.
Blocking: call from a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Read(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: T | None = None
        self.error: BaseException | None = None
        self.callers = 1  # who will take this read's answer

    def result(self) -> T:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.answer  # type: ignore[return-value]


class _Key(Generic[T]):
    def __init__(self) -> None:
        self.running: _Read[T] | None = None  # under way (or about to begin: its caller was woken)
        self.next: _Read[T] | None = None  # begins when ``running`` ends; callers arriving now share it


class JoinedReads(Generic[T]):
    """``run(key, read)``: ``read()``'s answer, the read shared with the callers of the same key that asked while
    the previous read of it was under way (see the module's doc). Its errors reach every caller that shared it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[Hashable, _Key[T]] = {}
        self.reads = 0  # how many reads were made (for the tests and the benchmark)

    def run(self, key: Hashable, read: Callable[[], T]) -> T:
        ahead: _Read[T] | None = None
        with self._lock:
            state = self._keys.setdefault(key, _Key())
            shared = state.next
            if shared is not None:
                shared.callers += 1
            else:
                mine: _Read[T] = _Read()
                if state.running is None:
                    state.running = mine
                else:
                    ahead, state.next = state.running, mine
        if shared is not None:  # the next read is someone else's to make: its answer
            return shared.result()
        if ahead is not None:
            ahead.done.wait()  # it ended: ``mine`` is ``running`` now, and no one joins it any more
        try:
            with self._lock:
                self.reads += 1
            mine.answer = read()
        except BaseException as exc:
            mine.error = exc
        finally:
            with self._lock:
                state.running, state.next = state.next, None
                if state.running is None:
                    del self._keys[key]
            mine.done.set()
        return mine.result()
