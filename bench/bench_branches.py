"""Seven branches and the centre on one machine, each branch on a network of its own (issue 16's proof).

One command starts a private PostgreSQL (fsync on), the central Mosquitto and the centre (``vuoro central``)
in the root namespace on a WAN bridge, and N branch hubs, each in its own network namespace with its own
Mosquitto (bridged up to the central one) and its own visitors and staff (``bench/central_harness/load.py``,
inside the namespace, so a WAN cut does not cut a kiosk from its hub). Then:

1. steady load (``--rate`` tickets/s per branch, four desks calling): committed at a branch → stored at the
   centre, p50/p99; the branches' ticket latency with the uplink against the same branches without it,
   interleaved A/B ``--ab-rounds`` times;
2. a WAN cut of ``--cut`` branches for ``--cut-minutes`` under load (the veth's WAN side set down: TCP left
   half-open): failed kiosk requests at the cut branches; after the link is back, the time to ship the backlog;
3. the centre down (PostgreSQL, the central broker and the centre SIGKILLed) for ``--down-minutes``: the
   branches' kiosk figures meanwhile; the catch-up time;
4. the uplink SIGKILLed between the centre's commit and the local mark, ``--kills`` times
   (``bench_central.kill_rounds``, one branch on loopback);
5. a branch hub's disk wiped mid-day and the hub started again: its numbers go on, none repeated;
6. a config push: time to applied at a connected branch, a bad version refused and reported, a version
   published while a branch's WAN is cut applied when it is back;
7. after all of it: the centre's totals against the branches' own statistics, numbers repeated per branch,
   letter and day, rows missing or extra (every branch's SQLite files against the centre's rows).

Needs root (network namespaces). Everything it starts is stopped and its namespaces deleted on the way out,
Ctrl-C included; ``--clean`` removes what a SIGKILLed run left.

    sudo .venv/bin/python bench/bench_branches.py                     # the full run (~45 min)
    sudo .venv/bin/python bench/bench_branches.py --quick             # 1-minute cut and outage, 10 kills
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.central_harness import checks  # noqa: E402
from bench.central_harness.branch import Branch  # noqa: E402
from bench.central_harness.harness import Harness  # noqa: E402
from toolkit.netns import clean_leftovers, unavailable  # noqa: E402


def say(line: str) -> None:
    print(line, flush=True)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def load_now() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_phase(h: Harness, name: str, seconds: float, args: argparse.Namespace,
              ids: list[str] | None = None) -> dict[str, Path]:
    files = {}
    for bid in ids or h.ids:
        files[bid] = h.branches[bid].start_load(name, args.rate, args.call_every)
    time.sleep(seconds)
    for bid in ids or h.ids:
        h.branches[bid].stop_load()
    return files


def everyone_shipped(h: Harness, timeout: float = 120) -> dict[str, float | None]:
    return checks.wait_shipped(h.database, {bid: b.position() for bid, b in h.branches.items()}, timeout)


# -- 1. steady load, A/B -------------------------------------------------------------

def steady(h: Harness, args: argparse.Namespace) -> dict[str, Any]:
    say(f"\n## 1. steady load: {len(h.ids)} branches x {args.rate:g} tickets/s, 4 desks each; "
        f"A (uplink) / B (no [central]) x {args.ab_rounds}, {args.steady:g} s each (load {load_now()})")
    lags: list[float] = []
    a_recs: list[dict[str, Any]] = []
    b_recs: list[dict[str, Any]] = []
    cpu = {"a_hubs": 0.0, "a_centre": 0.0, "b_hubs": 0.0, "b_centre": 0.0}
    if args.warmup:  # not measured: the first phase after the start was slower whichever side it was (A, always)
        run_phase(h, "warmup", args.warmup, args)
        everyone_shipped(h)
    for round_ in range(args.ab_rounds):
        since = datetime.now(UTC)
        before = h.cpu_seconds()
        files = run_phase(h, f"steady-a{round_}", args.steady, args)
        after = h.cpu_seconds()
        cpu["a_hubs"] += after["hubs"] - before["hubs"]
        cpu["a_centre"] += after["centre"] - before["centre"]
        until = datetime.now(UTC)
        a_recs += checks.records(files.values())
        everyone_shipped(h)
        with h.db() as db:
            lags += checks.lag_ms(db, since, until)
        alone: dict[str, Any] = {}

        def swap_to_alone(b: Branch, alone: dict[str, Any] = alone) -> None:
            b.hub.stop()
            healed = b.broker_alive()
            if healed:
                say(f"  NOTE: {healed}")
            alone[b.id] = b.make_hub(b.alone_site, b.dir / "alone").start(timeout=60)

        h.each(swap_to_alone)
        originals = {bid: b.hub for bid, b in h.branches.items()}
        for bid, b in h.branches.items():
            b.hub = alone[bid]
        try:
            before = h.cpu_seconds()
            files = run_phase(h, f"steady-b{round_}", args.steady, args)
            after = h.cpu_seconds()
            cpu["b_hubs"] += after["hubs"] - before["hubs"]
            cpu["b_centre"] += after["centre"] - before["centre"]
            b_recs += checks.records(files.values())
        finally:
            for bid, b in h.branches.items():
                b.hub.stop()
                b.hub = originals[bid]
            h.each(lambda b: b.hub.start(timeout=60))
    a, b = checks.kiosk_figures(a_recs), checks.kiosk_figures(b_recs)
    p50, p99 = checks.pct(lags, 50), checks.pct(lags, 99)
    say(f"committed at a branch -> stored at the centre: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max "
        f"{max(lags or [float('nan')]):.0f} ms over {len(lags)} rows   target p50 <= 200 ms, p99 <= 1 s: "
        f"{verdict(p50 <= 200 and p99 <= 1000)}")
    ratio = a["p99"] / b["p99"] if b["p99"] else float("nan")
    say(f"branch ticket latency with the uplink:    p50 {a['p50']:.1f} ms, p99 {a['p99']:.1f} ms "
        f"({a['tickets']} tickets, {a['failed']} failed)")
    say(f"branch ticket latency without it (B):     p50 {b['p50']:.1f} ms, p99 {b['p99']:.1f} ms "
        f"({b['tickets']} tickets, {b['failed']} failed)")
    say(f"p99 with / without: {ratio:.2f} (p50 {a['p50'] / b['p50']:.2f})   target p99 within 10 %: "
        f"{verdict(ratio <= 1.10)}")
    seconds = args.steady * args.ab_rounds
    say(f"CPU of this 2-core machine taken, A: hubs {cpu['a_hubs'] / seconds * 100:.0f} %, centre + PostgreSQL "
        f"{cpu['a_centre'] / seconds * 100:.0f} % of one core; B: hubs {cpu['b_hubs'] / seconds * 100:.0f} %, "
        f"centre + PostgreSQL {cpu['b_centre'] / seconds * 100:.0f} % (idle)   (the centre runs on the branches' "
        f"machine here; PostgreSQL fsync {'on' if args.centre_fsync else 'off'}"
        f"{f', the centre and PostgreSQL at nice {args.centre_nice}' if args.centre_nice else ''})")
    return {"lag_p50": p50, "lag_p99": p99, "a": a, "b": b, "ratio": ratio, "cpu": cpu}


# -- 2. WAN cut ----------------------------------------------------------------------

def uplink_inside(b: Branch) -> dict[str, Any]:
    """The hub's uplink state, asked from inside the branch (its WAN may be cut)."""
    url = f"http://127.0.0.1:{b.hub.port}/api/v1/health"
    return dict(b.ns.run(lambda: requests.get(url, timeout=10).json()["uplink"]))


def wan_cut(h: Harness, args: argparse.Namespace) -> dict[str, Any]:
    cut = h.ids[:args.cut]
    say(f"\n## 2. WAN cut of {', '.join(cut)} for {args.cut_minutes:g} min under load (veth WAN side down: "
        f"TCP half-open) (load {load_now()})")
    files = {bid: h.branches[bid].start_load("wan-cut", args.rate, args.call_every) for bid in h.ids}
    time.sleep(10)
    for bid in cut:
        h.branches[bid].ns.cut()
    cut_at = time.monotonic()
    time.sleep(min(60.0, args.cut_minutes * 30))
    states = {bid: uplink_inside(h.branches[bid]) for bid in cut}
    say("  during the cut: " + "; ".join(f"{bid} uplink {s['state']}, backlog {s['backlog']}, "
                                          f"...{(s['last_error'] or '')[-70:]}" for bid, s in states.items()))
    time.sleep(max(0.0, args.cut_minutes * 60 - (time.monotonic() - cut_at)))
    targets = {bid: h.branches[bid].position() for bid in cut}
    with h.db() as db:
        waiting = {bid: seq - checks.centre_position(db, bid, stream) for bid, (stream, seq) in targets.items()}
    for bid in cut:
        h.branches[bid].ns.restore()
    shipped = checks.wait_shipped(h.database, targets, timeout=600)
    for bid in h.ids:
        h.branches[bid].stop_load()
    at_cut = checks.kiosk_figures(checks.records(files[bid] for bid in cut))
    others = checks.kiosk_figures(checks.records(files[bid] for bid in h.ids if bid not in cut))
    say(f"kiosk requests at the cut branches: {at_cut['tickets']} tickets, {at_cut['failed']} failed, "
        f"desk calls {at_cut['desk_calls']} ({at_cut['desk_failed']} failed); p50 {at_cut['p50']:.1f} ms, "
        f"p99 {at_cut['p99']:.1f} ms (not cut: p99 {others['p99']:.1f} ms, desk calls failed "
        f"{others['desk_failed']})   target 0 failed kiosk requests: {verdict(at_cut['failed'] == 0)}")
    worst = max((s for s in shipped.values() if s is not None), default=float("nan"))
    say("backlog shipped after the link returned: " + ", ".join(
        f"{bid} {waiting[bid]} rows in {shipped[bid]:.1f} s" if shipped[bid] is not None
        else f"{bid} {waiting[bid]} rows NOT within 600 s" for bid in cut)
        + f"   target <= 10 s (for a 10-min cut): {verdict(all(shipped.values()) and worst <= 10)}")
    if at_cut["first_failure"]:
        say(f"  first failure: {at_cut['first_failure']}")
    return {"failed": at_cut["failed"], "shipped_s": shipped, "rows": waiting}


# -- 3. the centre down --------------------------------------------------------------

def centre_down(h: Harness, args: argparse.Namespace) -> dict[str, Any]:
    say(f"\n## 3. the centre down (PostgreSQL, central broker, centre SIGKILLed) for {args.down_minutes:g} min "
        f"under load (load {load_now()})")
    files = {bid: h.branches[bid].start_load("centre-down", args.rate, args.call_every) for bid in h.ids}
    time.sleep(10)
    h.centre_down()
    time.sleep(args.down_minutes * 60)
    targets = {bid: b.position() for bid, b in h.branches.items()}
    started = time.monotonic()
    h.centre_up()
    answering = time.monotonic() - started
    shipped = checks.wait_shipped(h.database, targets, timeout=600)
    for b in h.branches.values():
        b.stop_load()
    fig = checks.kiosk_figures(checks.records(files.values()))
    say(f"branches while the centre was down: {fig['tickets']} tickets, {fig['failed']} failed, desk calls "
        f"{fig['desk_calls']} ({fig['desk_failed']} failed), ticket p50 {fig['p50']:.1f} ms p99 {fig['p99']:.1f} ms"
        f"   target unaffected (0 failed kiosk requests): {verdict(fig['failed'] == 0)}")
    done = [s for s in shipped.values() if s is not None]
    say(f"the centre answering again {answering:.1f} s after PostgreSQL was started; every branch's backlog "
        f"stored {max(done):.1f} s after that ({answering + max(done):.1f} s after PostgreSQL's start)"
        if len(done) == len(shipped) else
        f"NOT caught up within 600 s: {[bid for bid, s in shipped.items() if s is None]}")
    return {"failed": fig["failed"], "caught_up_s": answering + max(done) if len(done) == len(shipped) else None}


# -- 5. a wiped hub ------------------------------------------------------------------

def last_numbers(store: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        return {letter: n for letter, n in db.execute(
            "SELECT substr(label, 1, 1), MAX(CAST(substr(label, 2) AS INTEGER)) FROM tickets GROUP BY 1")}


def first_numbers(store: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        return {letter: n for letter, n in db.execute(
            "SELECT substr(label, 1, 1), MIN(CAST(substr(label, 2) AS INTEGER)) FROM tickets GROUP BY 1")}


def wipe(h: Harness, args: argparse.Namespace) -> tuple[str, Path, dict[str, Any]]:
    b = h.branches[h.ids[-1]]
    say(f"\n## 5. {b.id}'s disk wiped mid-day: the hub SIGKILLed, its SQLite files gone, started again "
        f"(load {load_now()})")
    checks.wait_shipped(h.database, {b.id: b.position()}, 120)  # what the old disk held is at the centre
    before = checks.branch_summary(b)
    last = last_numbers(b.store)
    b.hub.kill()
    old = b.dir / "wiped-disk"
    old.mkdir()
    for path in b.hub.data_dir.glob("hub.sqlite3*"):
        shutil.move(str(path), old / path.name)
    b.hub.start(timeout=60)
    run_phase(h, "after-wipe", 20, args, [b.id])
    first = first_numbers(b.store)
    follows = all(first.get(letter, n + 1) == n + 1 for letter, n in last.items())
    say(f"last numbers on the old disk {last}; first on the new one {first}   target numbering continues, "
        f"0 repeats: {verdict(follows)}")
    return b.id, old / "hub.sqlite3", before


# -- 6. a config push ---------------------------------------------------------------

def config_push(h: Harness) -> None:
    """Central configuration (docs/central.md): a version published for a connected branch, a bad one, and one
    for a branch whose WAN is cut, applied when it is back. No load meanwhile: applying restarts the hub in place."""
    say(f"\n## 6. config push (load {load_now()})")
    assert h.centre is not None
    admin = {"Authorization": "Bearer test-centre-admin-token"}
    centre = h.centre.url

    def publish(bid: str, text: str) -> int:
        answer = requests.post(f"{centre}/api/v1/branches/{bid}/config", data=text.encode(), timeout=30,
                               headers={**admin, "Content-Type": "text/plain"})
        assert answer.status_code == 201, answer.text
        return int(answer.json()["version"])

    def state(bid: str) -> dict[str, Any]:
        try:
            branches = requests.get(f"{centre}/api/v1/configs", headers=admin, timeout=5).json()["branches"]
        except (requests.RequestException, ValueError):
            return {}
        return dict(next(b for b in branches if b["branch"] == bid))

    def seconds_until(ok: Any, timeout: float = 120) -> float | None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if ok():
                return time.monotonic() - started
            time.sleep(0.05)
        return None

    def renamed(b: Branch, suffix: str) -> str:
        return b.site.read_text(encoding="utf-8").replace("KVIK – hurtig hjælp", f"KVIK – hurtig hjælp {suffix}", 1)

    # not the branches cut (b1-b3) or wiped (the last) before, where there are enough
    connected, bad, offline = (h.branches[bid] for bid in (h.ids[3:6] if len(h.ids) >= 7 else h.ids[-3:]))
    version = publish(connected.id, renamed(connected, "(v2)"))
    took = seconds_until(lambda: state(connected.id).get("applied") == version)
    say(f"{connected.id}: published version {version} -> the branch reports it runs on it: "
        + (f"{took:.1f} s   target <= 5 s: {verdict(took <= 5)}" if took is not None else "NOT within 120 s"))

    version = publish(bad.id, bad.site.read_text(encoding="utf-8").replace('letter = "K"', 'letter = "KV"', 1))
    took = seconds_until(lambda: state(bad.id).get("refused") == version)
    problems = state(bad.id).get("problems") or []
    serving = requests.get(f"{bad.hub.url}/api/v1/health", timeout=10).status_code == 200
    say(f"{bad.id}: a bad version {version} (a two-letter ticket letter): "
        + (f"refused and reported in {took:.1f} s: {problems[:1]}; the branch serves on its last good config: "
           f"{verdict(serving)}" if took is not None else "NOT reported within 120 s"))

    offline.ns.cut()
    try:
        version = publish(offline.id, renamed(offline, "(offline)"))
        time.sleep(20)
        before = state(offline.id).get("applied")
    finally:
        offline.ns.restore()
    took = seconds_until(lambda: state(offline.id).get("applied") == version)
    say(f"{offline.id}: version {version} published while its WAN was cut (20 s): applied there meanwhile: "
        f"{before == version}; applied {took:.1f} s after the link came back" if took is not None else
        f"{offline.id}: NOT applied within 120 s of the link's return")


# -- 7. after all of it ----------------------------------------------------------------

def totals(h: Harness, wiped: tuple[str, Path, dict[str, Any]]) -> bool:
    say(f"\n## 7. after all of it: the centre against the branches (load {load_now()})")
    caught = everyone_shipped(h, 300)
    if not all(s is not None for s in caught.values()):
        say(f"  NOT shipped within 300 s: {caught}")
    wiped_id, wiped_store, wiped_before = wiped
    ok = True
    own_parts = []
    admin = {"Authorization": "Bearer test-centre-admin-token"}
    assert h.centre is not None
    for bid, b in h.branches.items():
        own = checks.branch_summary(b)
        central = requests.get(f"{h.centre.url}/api/v1/branches/{bid}/summary", headers=admin, timeout=60).json()
        if bid == wiped_id:  # the old disk's figures (taken before the wipe) and the new one's: counts add up
            own_parts += [own, wiped_before]
            same = checks.added([own, wiped_before]) == checks.added([central["total"]])
        else:
            own_parts.append(own)
            same = own == central["total"]
        ok &= same
        if not same:
            say(f"  {bid}: branch {checks.added([own])} centre {checks.added([central['total']])}")
    together = requests.get(f"{h.centre.url}/api/v1/summary", headers=admin, timeout=60).json()["all"]
    summed = checks.added(own_parts)
    equal = summed == checks.added([together])
    say(f"central totals vs the sum of the branches' own statistics: {summed['issued']} issued, "
        f"{summed['served']} served, {summed['called']} called at the branches; centre {together['issued']}, "
        f"{together['served']}, {together['called']}; every branch figure for figure: {verdict(ok)}; "
        f"all: {verdict(equal)}   target equal")
    with h.db() as db:
        repeats = checks.repeated_numbers(db)
        missing = {bid: checks.missing_at_centre(db, bid, [b.store] + ([wiped_store] if bid == wiped_id else []))
                   for bid, b in h.branches.items()}
        count = db.execute("SELECT COUNT(*) FROM tickets").fetchone()
    bad = {bid: m for bid, m in missing.items() if any(m.values())}
    say(f"numbers repeated per branch, letter and day: {len(repeats)} {repeats[:5] if repeats else ''}   "
        f"target 0: {verdict(not repeats)}")
    say(f"rows missing at the centre or extra there (tickets with their state, history lines, calls; "
        f"{count[0] if count else 0} tickets): {bad or 'none'}   target none: {verdict(not bad)}")
    return ok and equal and not repeats and not bad


def kill_rounds(h: Harness, rounds: int) -> None:
    say(f"\n## 4. the uplink SIGKILLed between the centre's commit and the local mark, x {rounds} "
        f"(bench_central.kill_rounds: one branch on loopback, the harness's PostgreSQL) (load {load_now()})")
    from bench.bench_central import kill_rounds as rounds_of
    from toolkit.broker import Broker

    with Broker() as broker:
        rounds_of(rounds, h.work, broker, h.pg.create_database("central_kills"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--branches", type=int, default=7)
    parser.add_argument("--rate", type=float, default=2.0, help="tickets per second per branch")
    parser.add_argument("--call-every", type=float, default=1.5, help="seconds between one desk's calls")
    parser.add_argument("--steady", type=float, default=60, help="seconds of each A and each B")
    parser.add_argument("--ab-rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=20, help="seconds of load, not measured, before the first "
                                                                 "A: the first phase after the start is slower")
    parser.add_argument("--cut", type=int, default=3, help="branches whose WAN is cut")
    parser.add_argument("--cut-minutes", type=float, default=10)
    parser.add_argument("--down-minutes", type=float, default=10)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--only", default="1,2,3,4,5,6,7", help="the scenarios to run, e.g. 1 or 1,2 (7 needs 5)")
    parser.add_argument("--centre-fsync", choices=("on", "off"), default="on",
                        help="the centre's PostgreSQL; off shows how much of the A/B is the disk both share here")
    parser.add_argument("--centre-nice", type=int, default=0, metavar="N",
                        help="run the centre and its PostgreSQL at nice N (e.g. 19): they yield the CPU to the "
                             "branches, as on a machine of their own; shows how much of the A/B is their CPU here")
    parser.add_argument("--quick", action="store_true", help="30 s A/B once, 1-minute cut and outage, 10 kills")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, load records, files)")
    parser.add_argument("--clean", action="store_true", help="only remove what a killed run left behind")
    args = parser.parse_args()
    if args.clean:
        say(f"removed: {clean_leftovers() or 'nothing'}")
        return 0
    if args.quick:  # shorter, except where asked for explicitly
        for name, value in (("steady", 30), ("ab_rounds", 1), ("cut_minutes", 1), ("down_minutes", 1), ("kills", 10)):
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    why = unavailable()
    if why:
        say(f"cannot run: {why}")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    say(f"# bench_branches {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {platform.node()}, {os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}, load {load_now()} (machine shared with other "
        f"engineers' work)")
    started = time.monotonic()
    args.centre_fsync = args.centre_fsync == "on"
    only = {int(n) for n in args.only.split(",")}
    ok = True
    h = Harness(args.branches if only != {4} else 1, keep=args.keep, centre_fsync=args.centre_fsync,
                centre_nice=args.centre_nice)
    try:
        h.start()  # with --only 4: one branch, the rest is for the kill rounds
        say(f"started {len(h.ids)} branches in namespaces on 10.77.{h.net.subnet}.0/24, the centre on "
            f"{h.centre_url} in {time.monotonic() - started:.0f} s; work folder {h.work}")
        if 1 in only:
            steady(h, args)
        if 2 in only:
            wan_cut(h, args)
        if 3 in only:
            centre_down(h, args)
        if 5 in only:
            wiped = wipe(h, args)
        if 6 in only:
            config_push(h)
        if 7 in only and 5 in only:
            ok = totals(h, wiped)
        if 4 in only and args.kills:
            kill_rounds(h, args.kills)
    except KeyboardInterrupt:
        say("interrupted: cleaning up")
        return 130
    finally:
        h.close()
    say(f"\nwhole run {(time.monotonic() - started) / 60:.1f} min, load at the end {load_now()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
