"""The follower thread: brings the centre's newest site config and staff accounts to the branch.

Never the writer, never the uplink. It learns what should be here (``{"config": {"version", "checksum"},
"staff": <revision>}``) two ways: a long poll of its own (``GET /api/v1/branch/changes``, answered by the centre
the moment a version is published or an account changes, else after 25 s), and every uplink answer, which says
the same (so a centre without the long poll is still followed at each round trip, at least every
``heartbeat_s``). An offline branch catches up on its first answer after it reconnects. A nudge (``nudge()``,
e.g. from an MQTT message) only makes it look sooner: what to fetch always comes from the centre's HTTP answers,
with the branch's own token, and the text must match its checksum.

A new config version is checked with the hub's own loader (``pushed.check``). Refused: the branch stays on
what it runs and reports the problems by key path. Passed: it is written atomically beside the store, and the
hub restarts itself in place (``restart``: a clean stop, then the same command again — the same process id for
systemd) to run on it; the new process reports it applied. Every part of the hub reads its config at start
(the engine's services and hours, tokens, devices, plugins, MQTT topics), so a restart is the one way to apply
all of a version, not half of it; it costs about two seconds without HTTP, kiosks retry, and staff stay signed in
(their sessions are handed over, server/staff/accounts.py). A version whose contents equal what the hub runs on
is applied without a restart.

Staff accounts change live: they are written to ``central-staff.json`` and read by the sign-in at each try.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from server.config import ConfigError
from server.uplink import pushed
from vuoro.http_client import session as keep_alive_session

if TYPE_CHECKING:
    from server.config import CentralLink

log = logging.getLogger("vuoro.uplink")

TIMEOUT_S = (3.0, 30.0)
LONG_POLL_TIMEOUT_S = (3.0, 40.0)  # the centre answers a long poll within 25 s
RETRY_S = 5.0  # after a failed fetch or report; the next centre answer wakes it anyway
IDLE_POLL_S = 300.0  # on its own, when no answer came (the uplink asks far more often)


class CentreFollower:
    def __init__(self, link: CentralLink, folder: Path, current: pushed.Running, restart: Callable[[], None]):
        self.link = link
        self.folder = folder
        self.current = current
        self.restart = restart
        self.session = keep_alive_session(every_request_repeatable=True)  # as the uplink's (vuoro/http_client.py)
        self.session.headers["Authorization"] = f"Bearer {link.token}"
        self.wanted_config: dict[str, Any] | None = None
        self.wanted_staff: int | None = None
        self.heard = False  # the centre has said what should be here (a long poll's or an uplink's answer)
        self.staff_have = pushed.staff_revision(folder)
        self.refused: dict[str, Any] | None = current.refused
        self.report_due = True  # the version it runs on, at every start
        self.restarting = False
        self.long_poll = True  # False when the centre has no long poll (an older centre): rely on the answers
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CentreFollower:
        self._thread = threading.Thread(target=self._run, name="vuoro-follow", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Not waited for long: the thread may sit in a long poll, and it writes nothing of the store's (a file it
        writes is replaced atomically), so the hub's stop or restart never waits for it."""
        self._stopping.set()
        self._wake.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(0.2)

    # -- what the centre says should be here ----------------------------------------------------

    def centre_said(self, answer: dict[str, Any]) -> None:
        """Every uplink answer (called on the uplink's thread: only compares and wakes)."""
        config, staff = answer.get("config"), answer.get("staff")
        self.wanted_config = config if isinstance(config, dict) else None
        self.wanted_staff = staff if isinstance(staff, int) else None
        self.heard = True
        if self._config_to_fetch() or self._staff_to_fetch() or self.report_due:
            self._wake.set()

    def nudge(self) -> None:
        """Look now (an MQTT nudge): only sooner, never something else than the centre's HTTP answers say."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        wanted = self.wanted_config or {}
        return {"running": self.current.version, "wanted": wanted.get("version", 0),
                "refused": self.refused["version"] if self.refused else None,
                "problems": self.refused["problems"] if self.refused else [],
                "staff_revision": self.staff_have, "last_error": self.last_error}

    def _config_to_fetch(self) -> bool:
        wanted = self.wanted_config
        if not wanted or self.restarting:
            return False
        key = (wanted.get("version"), wanted.get("checksum"))
        if key == (self.current.version, self.current.checksum):
            return False
        return not (self.refused and key == (self.refused["version"], self.refused["checksum"]))

    def _staff_to_fetch(self) -> bool:
        return self.wanted_staff is not None and self.wanted_staff != self.staff_have

    # -- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.report_due:
                    self._report()
                if self._staff_to_fetch():
                    self._fetch_staff()
                if self._config_to_fetch():
                    self._follow_config()
                if self.restarting:  # the hub stops and starts again on the new version: nothing more to do here
                    return
                self.last_error = None
                self._wait_for_change()
            except (requests.RequestException, ValueError, OSError) as exc:
                if self._stopping.is_set():
                    return
                if str(exc) != self.last_error:
                    log.warning("could not bring the centre's config or accounts here (%s); the branch goes on "
                                "with what it has", exc)
                self.last_error = str(exc)
                self._wake.clear()
                self._wake.wait(RETRY_S)  # an uplink answer (the centre is back) wakes it sooner
            except Exception as exc:  # never let the follower die: the next version must still come
                log.exception("following the centre failed")
                self.last_error = str(exc)
                self._stopping.wait(RETRY_S)

    def _wait_for_change(self) -> None:
        """Until the centre says something should change here: its long poll, or an uplink answer / nudge."""
        if not self.long_poll:
            self._wake.wait(IDLE_POLL_S)
            self._wake.clear()
            return
        # what the centre said last (-1 before it said anything: answered at once)
        params = {"config": (self.wanted_config or {}).get("version", 0) if self.heard else -1,
                  "staff": self.wanted_staff if self.heard and self.wanted_staff is not None else -1}
        answer = self.session.get(self.link.url + "/api/v1/branch/changes", params=params,
                                  timeout=LONG_POLL_TIMEOUT_S, verify=self.link.ca_file or True)
        if answer.status_code == 404:
            log.info("the centre has no long poll for changes: following its uplink answers instead")
            self.long_poll = False
            return
        if answer.status_code != 200:
            raise requests.HTTPError(f"changes: {answer.status_code} {answer.text[:200]}")
        body = answer.json()
        config, staff = body.get("config"), body.get("staff")
        self.wanted_config = config if isinstance(config, dict) else None
        self.wanted_staff = staff if isinstance(staff, int) else None
        self.heard = True

    def _get(self, path: str) -> requests.Response:
        answer = self.session.get(self.link.url + path, timeout=TIMEOUT_S, verify=self.link.ca_file or True)
        if answer.status_code != 200:
            raise requests.HTTPError(f"{path}: {answer.status_code} {answer.text[:200]}")
        return answer

    def _report(self) -> None:
        body = {"running": {"version": self.current.version, "checksum": self.current.checksum},
                "refused": self.refused}
        answer = self.session.post(self.link.url + "/api/v1/branch/config/report", json=body, timeout=TIMEOUT_S,
                                   verify=self.link.ca_file or True)
        if answer.status_code != 200:
            raise requests.HTTPError(f"report: {answer.status_code} {answer.text[:200]}")
        self.report_due = False

    def _fetch_staff(self) -> None:
        body = self._get("/api/v1/branch/staff").json()
        if not isinstance(body.get("revision"), int) or not isinstance(body.get("accounts"), list):
            raise ValueError("the centre's staff answer is not {revision, accounts}")
        pushed.save_staff(self.folder, body)
        self.staff_have = body["revision"]
        log.info("staff accounts from the centre: revision %d, %d accounts for this branch", body["revision"],
                 len(body["accounts"]))

    def _follow_config(self) -> None:
        found = self._get("/api/v1/branch/config").json()
        text, version, digest = found.get("text"), found.get("version"), found.get("checksum")
        if not isinstance(text, str) or not isinstance(version, int) or pushed.checksum(text) != digest:
            raise ValueError("the centre's config does not match its checksum")
        try:
            config = pushed.check(text, self.current.config)  # the same id, store and file place as the own file
        except ConfigError as exc:
            log.error("the centre's config version %d refused; this branch stays on %s:\n%s", version,
                      f"version {self.current.version}" if self.current.version else "its own site file", exc)
            self.refused = {"version": version, "checksum": digest, "problems": list(exc.problems),
                            "at": datetime.now(UTC).isoformat()}
            pushed.remember_refused(self.folder, self.refused)  # not fetched and checked again after a restart
            self.report_due = True
            self._report()
            return
        pushed.save(self.folder, text, version, digest)
        self.refused = None
        if config.raw == self.current.config.raw:  # the same contents: nothing to restart for
            pushed.started(self.folder, version)  # served on already: not on trial
            self.current = pushed.Running(self.current.config, version, digest)
            self.report_due = True
            self._report()
            log.info("the centre's config version %d has the contents this hub runs on: applied", version)
            return
        log.warning("the centre's config version %d passed this hub's checks: restarting on it", version)
        self.restarting = True
        self.restart()
