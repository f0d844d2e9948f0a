"""The test kit: Vuoro's real parts, and the few fakes, as pytest fixtures.

As gpiozero ships its mock pins with the library, Vuoro ships what its tests
stand on: a real broker, a real hub process, a virtual printer, the hub's
faked clock. Load it from a ``conftest.py``::

    pytest_plugins = ["toolkit.fixtures"]

(``tests/conftest.py`` does; so can a plugin's own test suite.) One fixture
name per thing:

``broker`` (session)
    A real Mosquitto on a free loopback port for the whole session
    (``toolkit.broker.Broker``). A test that stops it leaves it running again.
``live_broker``
    The session's broker, started again if an earlier test stopped it.
``hub_site`` (session)
    The site file the hub fixtures run: the sample site with every service
    open all day (``toolkit.demo.always_open``), so no test depends on the
    hour. A project overrides it in its conftest (ours: tests/sites/).
``hub``
    A real hub process (``vuoro hub``, ``toolkit.hub_process.HubProcess``)
    on ``hub_site`` and ``live_broker``, under a topic root of its own.
``make_hub``
    ``make_hub(data_dir=None, *, site=None, broker=None, topic_root=FRESH,
    **options)``: more hub processes (``broker``: another broker, or just
    its URL; default ``live_broker``), not yet started (``.start()``, or use
    one as a context manager); each is stopped after the test. The faked
    clock is one of the options: ``make_hub(clock=datetime(...), tz="UTC")``
    starts the hub at that time on its test clock (``vuoro/clock.py``), and
    ``.set_clock()`` steps it while it runs. ``topic_root=None`` keeps the
    site's own root.
``hub_in_process``
    A whole hub in the test's own process (``toolkit.hub_in_process.
    RunningHub``: its engine, view and HTTP app at hand) on the sample site
    with the demo staff users, on ``live_broker``.
``fake_hub``
    A stand-in hub that publishes what the hub would, over MQTT, under
    topics of its own (``toolkit.fake_hub.FakeHub``; ``fake_hub.topics``).
``replay``
    A stand-in for the hub's HTTP stream, its phone page and the
    ``/signage/`` files, holding the demo state (``toolkit.fake_hub.Replay``).
``printer``
    The virtual network receipt printer (``hardware.virtual.VirtualPrinter``)
    on a free port: text, bytes and status answers. (Receipts as PNG: make
    one with ``out=``.)
``pins``
    gpiozero's mock pin factory for the test, reset after it (as
    ``gpiozero.testing``'s ``mock_factory``).
``watch``
    ``watch(*topics)``: a real MQTT subscriber that records what arrives
    (``toolkit.mqtt_watch.Watch``); all are closed after the test.
``browser`` (module)
    Debian's chromium, headless, through Playwright: one process for the session, the
    module's contexts closed after it.
``postgres`` (session)
    A private PostgreSQL cluster (``toolkit.postgres.PostgresCluster``):
    ``initdb`` in a temporary directory, on a free loopback port, run as
    ``nobody`` when the tests run as root; never the machine's 5432.
``postgres_db``
    A fresh, empty database on that cluster for one test: its connection URL.
``make_central``
    ``make_central(branches, database=None, extra="")``: the centre (``vuoro central``,
    ``toolkit.central_process.CentralProcess``) for these branches (site id →
    (token, site file)) on ``postgres_db``, with ``extra`` TOML appended to its
    config, not yet started; stopped after the test.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from toolkit.broker import Broker, fresh_root
from toolkit.hub_process import HubProcess
from toolkit.mqtt_watch import Watch

FRESH = "fresh"  # make_hub's topic_root default: a root of the hub's own
MakeHub = Callable[..., HubProcess]  # the type of make_hub, for a test's signature
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
SAMPLE_SITE = Path(__file__).resolve().parent.parent / "server" / "sites" / "sample.toml"


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    with Broker() as running:
        yield running


@pytest.fixture()
def live_broker(broker: Broker) -> Broker:
    broker.start()
    return broker


@pytest.fixture(scope="session")
def hub_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from toolkit.demo import always_open

    path = tmp_path_factory.mktemp("site") / "always_open.toml"
    path.write_text(always_open(SAMPLE_SITE.read_text(encoding="utf-8")), encoding="utf-8")
    return path


@pytest.fixture()
def make_hub(tmp_path: Path, live_broker: Broker, hub_site: Path) -> Iterator[MakeHub]:
    made: list[HubProcess] = []

    def make(data_dir: Path | None = None, *, site: Path | None = None, broker: Any = None,
             topic_root: str | None = FRESH, **options: Any) -> HubProcess:
        data = Path(data_dir) if data_dir else tmp_path / f"hub{len(made) + 1}"
        root = fresh_root() if topic_root == FRESH else topic_root
        url = broker if isinstance(broker, str) else (broker or live_broker).url
        hub = HubProcess(site or hub_site, data, url, topic_root=root, **options)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.stop()


@pytest.fixture()
def hub(make_hub: MakeHub, tmp_path: Path) -> HubProcess:
    return make_hub(tmp_path).start()


@pytest.fixture()
def hub_in_process(live_broker: Broker, tmp_path: Path) -> Iterator[Any]:
    from toolkit.hub_in_process import running_hub, site_config

    with running_hub(site_config(tmp_path, live_broker.url)) as running:
        yield running


@pytest.fixture()
def fake_hub(live_broker: Broker) -> Iterator[Any]:
    from toolkit.fake_hub import FakeHub, fresh_topics

    fake = FakeHub(live_broker.port, fresh_topics())
    yield fake
    fake.close()


@pytest.fixture()
def replay() -> Iterator[Any]:
    from display import sample
    from toolkit.fake_hub import Replay

    server = Replay()
    for topic, payload in sample.retained(message="Borgerservice lukker kl. 16").items():
        server.publish(topic, payload)
    yield server
    server.close()


@pytest.fixture()
def printer() -> Iterator[Any]:
    from hardware.virtual import VirtualPrinter

    with VirtualPrinter() as virtual:
        yield virtual


@pytest.fixture()
def pins() -> Iterator[Any]:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    saved = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = saved


@pytest.fixture()
def watch(live_broker: Broker) -> Iterator[Callable[..., Watch]]:
    watches: list[Watch] = []

    def make(*topics: str) -> Watch:
        watches.append(Watch(live_broker, *topics))
        return watches[-1]

    yield make
    for w in watches:
        w.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    from toolkit.postgres import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture()
def postgres_db(postgres: Any) -> str:
    postgres.start()  # again, if an earlier test stopped or killed it
    return str(postgres.create_database())


@pytest.fixture()
def make_central(tmp_path: Path, postgres_db: str) -> Iterator[Callable[..., Any]]:
    from toolkit.central_process import CentralProcess, write_centre_config

    made: list[CentralProcess] = []

    def make(branches: dict[str, tuple[str, Path]], database: str | None = None, tls: tuple[Path, Path] | None = None,
             extra: str = "", **options: Any) -> CentralProcess:
        config = write_centre_config(tmp_path / f"centre{len(made) + 1}.toml", database or postgres_db, branches,
                                     tls=tls, extra=extra)
        made.append(CentralProcess(config, **options))
        return made[-1]

    yield make
    for central in made:
        central.stop()


@pytest.fixture(scope="session")
def _chromium() -> Iterator[Any]:
    """One Chromium per test process (an xdist worker): starting it costs a second or more of a loaded machine."""
    assert shutil.which(CHROMIUM), "Debian's chromium is not installed (apt-get install chromium)"
    from playwright.sync_api import expect, sync_playwright

    # Web-first assertions wait for what a person would see: Playwright's 5 s was short for Swagger UI's 1.4 MB
    # bundle with three test workers and an emulated ARM guest on two cores. Waiting longer passes nothing wrong.
    expect.set_options(timeout=15_000)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def browser(_chromium: Any) -> Iterator[Any]:
    """The session's Chromium for one test module; the contexts (and pages) the module opened are closed after
    it, as a browser of its own would be: no page of an earlier module keeps polling a hub that is gone."""
    yield _chromium
    for context in list(_chromium.contexts):
        context.close()
