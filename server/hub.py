"""The hub's core loop: one writer thread owns the engine and the store.

Every command (HTTP, button press, timer) is queued to that thread. It takes
what has queued up, up to ``BATCH_MAX`` commands, applies each to the engine,
writes all their changes in ONE transaction (group commit: one fsync for
many tickets, so 8 kiosks at once do not wait on 8 fsyncs), and only after
the COMMIT answers the callers and announces the new state. Nothing is
announced or answered that is not on disk.

Readers never touch the engine from another thread: the writer leaves a
fresh ``view`` (plain dicts) after each batch, and point reads (a ticket by
id) go through the queue like writes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server import plugins, views
from server.config import SiteConfig
from server.engine import Outcome, QueueEngine, Refusal
from server.store import SQLiteStore
from vuoro import payloads, protocol

log = logging.getLogger("vuoro.hub")

BATCH_MAX = 128
TICK_SECONDS = 15.0  # re-check opening hours, midnight and estimates this often


def utc_now() -> datetime:
    return datetime.now(UTC)


class StoreUnavailable(Exception):
    """The store could not commit: nothing of the batch happened."""


Command = Callable[[QueueEngine, datetime], Any]


@dataclass
class _Job:
    command: Command
    future: Future[Any]
    read_only: bool = False


@dataclass
class View:
    """A read-only picture of the site after the last commit."""

    site: dict[str, Any] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent_calls: dict[str, Any] = field(default_factory=lambda: {"calls": []})


class Hub:
    """Holds the engine, the store and the writer thread; tells the plugins what changed.

    ``plugins`` is the hub's plugin manager: the hooks of ``server/hookspecs.py``. After each commit
    the hub calls ``announce(kind, name, payload)`` where kind is ``"state"`` (a retained topic
    suffix such as ``queue/kvik/state``) or ``"call"``: the MQTT link and the web signage streams
    implement it. Plugins add retained topics (``retained_state``), jobs for the writer's tick
    (``tick``), listen to devices (``device_status``) and stop with the hub (``stop``).
    """

    UNSAVED = "The hub could not save this change. Nothing was changed; try again."

    def __init__(self, config: SiteConfig, store: SQLiteStore, *, clock: Callable[[], datetime] = utc_now):
        self.config = config
        self.store = store
        self.clock = clock
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.view = View()
        self.plugins = plugins.manager()
        self.devices: dict[str, dict[str, Any]] = {}  # the last status of each device, from MQTT
        self.message: dict[str, Any] = payloads.Message().to_json()
        self._extra_state: dict[str, dict[str, Any]] = {}
        self._retained: dict[str, dict[str, Any]] = {}
        self._site_minute = -1
        self._thread: threading.Thread | None = None
        self._ticker: threading.Timer | None = None
        self._stopping = threading.Event()
        self._clock_behind = False
        self.engine = self._load_engine()
        # Before anything is answered: roll every day missed while the hub was off (or its disk was a
        # backup). If that cannot be saved, every batch tries again first and fails cleanly until it can.
        self._roll_day(self.clock())

    def _load_engine(self) -> QueueEngine:
        """The engine as the store left it: on the store's business day, not the wall clock's."""
        now = self.clock()
        day = self.store.business_day() or now.astimezone(self.config.timezone).date()
        return QueueEngine(self.config, self.store.load(day, now, self.config.recent_calls))

    def _roll_day(self, now: datetime) -> bool:
        """Begin a new business day if the site's date moved on, committed on its own: a command that
        fails after it cannot take the new day down with it. False if the store could not commit."""
        rolled = self.engine.roll_day(now)
        behind = now.astimezone(self.config.timezone).date() < self.engine.day
        if behind != self._clock_behind:
            self._clock_behind = behind
            if behind:
                log.warning("the clock (%s) is behind the business day %s: keeping the day and its numbering",
                            now.isoformat(), self.engine.day)
        if not rolled.changed:
            return True
        try:
            self.store.save([rolled])
        except Exception:
            log.exception("could not save the new business day %s; trying again with the next command",
                          self.engine.day)
            self.engine = self._load_engine()
            return False
        log.info("business day %s began (%d leftovers expired)", self.engine.day, len(rolled.tickets))
        return True

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Hub:
        self._refresh_view(self.clock())
        self._thread = threading.Thread(target=self._run, name="vuoro-writer", daemon=True)
        self._thread.start()
        self._schedule_tick()
        return self

    def stop(self) -> None:
        self._stopping.set()
        plugins.call_each(self.plugins.hook.stop)
        if self._ticker:
            self._ticker.cancel()
        self.jobs.put(None)
        if self._thread:
            self._thread.join(10)
        self.store.close()

    def _schedule_tick(self) -> None:
        if self._stopping.is_set():
            return
        self._ticker = threading.Timer(TICK_SECONDS, self._tick)
        self._ticker.daemon = True
        self._ticker.start()

    def _tick(self) -> None:
        # An empty command is enough for midnight: every batch rolls the day first (_run_batch),
        # and the refreshed view picks up opening and closing hours.
        self.submit(lambda engine, now: None)
        for job in plugins.commands(self.plugins.hook.tick):
            self.submit(job)
        self._schedule_tick()

    # -- commands ---------------------------------------------------------------------

    def submit(self, command: Command, *, read_only: bool = False) -> Future[Any]:
        """Queue a command; its future holds the command's return value, or its exception."""
        future: Future[Any] = Future()
        self.jobs.put(_Job(command, future, read_only))
        return future

    def call(self, command: Command, timeout: float = 10.0) -> Any:
        return self.submit(command).result(timeout)

    def _run(self) -> None:
        self.store.serve_from_this_thread()  # from here on, this thread alone uses the store's connection
        while True:
            job = self.jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < BATCH_MAX:
                try:
                    nxt = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.jobs.put(None)
                    break
                batch.append(nxt)
            try:
                self._run_batch(batch)
            except Exception:  # never let the writer die: a dead writer is a hub that answers nothing
                log.exception("writer batch failed")

    def _run_batch(self, batch: list[_Job]) -> None:
        now = self.clock()
        results: list[tuple[_Job, Any, BaseException | None]] = []
        outcomes: list[Outcome] = []
        day = self.engine.day
        if not self._roll_day(now):  # midnight first, in a transaction of its own
            for job in batch:
                job.future.set_exception(StoreUnavailable(self.UNSAVED))
            return
        new_day = self.engine.day != day
        engine_suspect = False
        for job in batch:
            try:
                value = job.command(self.engine, now)
            except Refusal as refusal:  # the rules refuse before they change anything (ApiError is one too)
                results.append((job, None, refusal))
                continue
            except Exception as exc:
                log.exception("command failed")
                results.append((job, None, exc))
                engine_suspect = True  # it may have changed the engine before failing
                continue
            for outcome in value if isinstance(value, tuple) else (value,):
                if isinstance(outcome, Outcome) and outcome.changed:
                    outcomes.append(outcome)
            results.append((job, value, None))
        if outcomes:
            try:
                self.store.save(outcomes)
            except Exception as exc:
                log.exception("commit failed; reloading the queue from the store")
                # The engine already moved on in memory: go back to what is on disk.
                self.engine = self._load_engine()
                error = StoreUnavailable(self.UNSAVED)
                error.__cause__ = exc
                for job, _, _ in results:
                    job.future.set_exception(error)
                return
        # Calls go out first, straight after the commit: a hall of screens is waiting for them,
        # while the desk that pressed "next" can wait the fraction of a millisecond.
        for call in (c for o in outcomes for c in o.calls):
            self._announce("call", protocol.CALLS_SUFFIX, views.call_json(self.engine, call))
        for job, value, error in results:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)
        if engine_suspect:
            # Back to exactly what is on disk: nothing half-done may live on in memory only.
            self.engine = self._load_engine()
        if outcomes or new_day or not self._retained or any(not j.read_only for j in batch):
            self._refresh_view(now)

    # -- what the outside sees ------------------------------------------------------

    def _refresh_view(self, now: datetime) -> None:
        engine = self.engine
        # The site payload changes only with the hours: rebuild it once a minute, not per batch.
        minute = int(now.timestamp() // 60)
        if self._site_minute != minute or not self.view.site:
            self._site_minute = minute
            site = views.site_info(engine, now)
        else:
            site = self.view.site
        view = View(
            site=site,
            queues={sid: views.queue_state(engine, sid, now) for sid in self.config.services},
            counters={cid: views.counter_state(engine, cid) for cid in self.config.counters},
            recent_calls=views.recent_calls(engine),
        )
        self.view = view
        for extra in plugins.call_each(self.plugins.hook.retained_state, engine=engine, now=now):
            self._extra_state.update(extra)
        for name, payload in self.retained_state().items():
            if self._retained.get(name) != payload:
                self._retained[name] = payload
                self._announce("state", name, payload)

    def retained_state(self) -> dict[str, dict[str, Any]]:
        """Every retained topic suffix with its payload: what a screen needs to draw everything."""
        view = self.view
        state: dict[str, dict[str, Any]] = {protocol.SITE_SUFFIX: view.site,
                                            protocol.RECENT_CALLS_SUFFIX: view.recent_calls,
                                            protocol.MESSAGE_SUFFIX: self.message}
        for sid, payload in view.queues.items():
            state[protocol.queue_state_suffix(sid)] = payload
        for cid, payload in view.counters.items():
            state[protocol.counter_state_suffix(cid)] = payload
        state.update(self._extra_state)
        return state

    def board(self) -> dict[str, Any]:
        """The screens' board (``vuoro.payloads.Board``): the retained states it carries, from the last view.
        Any thread may ask (the MQTT link does, gathering changes): a view is never changed, only replaced."""
        states = {name: payload for name, payload in self.retained_state().items() if payloads.in_board(name)}
        return payloads.Board(states=states).to_json()

    def record_device(self, status: dict[str, Any]) -> None:
        """A device reported its presence or health: keep it and tell the plugins (``device_status``)."""
        self.devices[status["device"]] = status
        plugins.call_each(self.plugins.hook.device_status, status=status)

    def set_message(self, text: str) -> None:
        self.message = payloads.Message(text=text).to_json()
        self.submit(lambda engine, now: None)  # refresh and announce through the writer

    def _announce(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        plugins.call_each(self.plugins.hook.announce, kind=kind, name=name, payload=payload)
