"""``vuoro doctor`` against real parts: the real hub, a real Mosquitto, the virtual printer.

Each broken part is reported in plain words, and only the broken part.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from hardware.virtual import VirtualPrinter
from server.config import SAMPLE_SITE, load_config
from toolkit import doctor
from toolkit.broker import Broker, free_port
from toolkit.fixtures import MakeHub
from toolkit.hub_process import HubProcess
from toolkit.mqtt_watch import publish_retained

CONFIG = load_config(SAMPLE_SITE)
WAIT = 30.0  # upper bound for the hub to come up; not a measured duration


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, dict[str, str], str]:
    """Run the doctor; return its exit code, each check's printed block by name, and the whole output."""
    code = doctor.main(["--config", str(SAMPLE_SITE), "--timeout", "3", *args])
    out = capsys.readouterr().out
    blocks: dict[str, str] = {}
    for block in out.split("\n["):
        head = block.lstrip("[")
        if "] " in head:
            name = head.split("] ", 1)[1].split(":", 1)[0]
            blocks[name] = head
    return code, blocks, out


def ok(block: str) -> bool:
    return block.startswith("ok")


def wait_healthy(hub: HubProcess, broker: str) -> dict:
    """Wait until /health answers with the given broker state (connected/disconnected)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert hub.process is not None and hub.process.poll() is None, f"the hub exited: {hub.log_path.read_text()}"
        try:
            body = requests.get(hub.url + "/api/v1/health", timeout=2).json()
            if body.get("broker") == broker:
                return body
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the hub did not report broker={broker} within {WAIT:.0f} s")


@pytest.fixture()
def hub(make_hub: MakeHub, tmp_path: Path) -> HubProcess:
    """The kit's hub on the sample site and its own topic root, as the doctor reads them from the config."""
    running = make_hub(tmp_path, site=SAMPLE_SITE, topic_root=None).start()
    wait_healthy(running, "connected")
    return running


def dead_url(scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{free_port()}"


def test_all_well(capsys, hub: HubProcess, live_broker: Broker, printer: VirtualPrinter) -> None:
    code, blocks, out = run(capsys, "--hub", hub.url, "--broker", live_broker.url, "--printer", printer.url)
    assert code == 0, out
    assert all(ok(blocks[name]) for name in ("config", "hub", "broker", "printer")), out
    assert "All 4 checks passed." in out


def test_bad_config_lists_every_problem(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text(SAMPLE_SITE.read_text().replace('letter = "K"', 'letter = "kv"')
                   .replace('id = "sonderbro"', 'id = "Sønderbro"'))
    code = doctor.main(["--config", str(bad), "--hub", dead_url("http"), "--timeout", "3"])
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAIL] config:" in out and "2 problem(s)" in out
    assert "services.kvik.letter: expected one capital letter A–Z, got 'kv'" in out
    assert "site.id: expected an id" in out
    assert "[SKIP] broker" in out


def test_missing_config_file(capsys, tmp_path: Path) -> None:
    code = doctor.main(["--config", str(tmp_path / "nope.toml"), "--hub", dead_url("http"), "--timeout", "3"])
    out = capsys.readouterr().out
    assert code == 1 and "cannot read the file" in out


def test_hub_down(capsys, live_broker: Broker) -> None:
    url = dead_url("http")
    code, blocks, out = run(capsys, "--hub", url, "--broker", live_broker.url)
    assert code == 1
    assert ok(blocks["config"])
    assert blocks["hub"].startswith("FAIL") and f"The hub at {url} does not answer: is the hub running?" in out
    assert "systemctl status vuoro-hub" in blocks["hub"]


def test_hub_without_broker(capsys, tmp_path: Path, make_hub: MakeHub) -> None:
    """The real hub, pointed at a broker that is not there: it runs, and says so."""
    dead_broker = dead_url("mqtt")
    running = make_hub(tmp_path, site=SAMPLE_SITE, topic_root=None, broker=dead_broker).start()
    try:
        wait_healthy(running, "disconnected")
        code, blocks, out = run(capsys, "--hub", running.url, "--broker", dead_broker)
    finally:
        running.stop()
    assert code == 1
    assert "runs, but it is not connected to the broker" in blocks["hub"]
    port = dead_broker.rsplit(":", 1)[1]
    assert f"The broker at 127.0.0.1:{port} does not answer (connection refused): is mosquitto running?" in out
    assert "systemctl status mosquitto" in blocks["broker"]


def test_something_else_on_the_hub_port(capsys, live_broker: Broker) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, blocks, _ = run(capsys, "--hub", url, "--broker", live_broker.url)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and "it is not a Vuoro hub" in blocks["hub"]


def test_hub_with_a_failing_store(capsys, live_broker: Broker) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"status": "degraded", "store": "error: disk I/O error", "broker": "connected"})
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, blocks, _ = run(capsys, "--hub", f"http://127.0.0.1:{server.server_address[1]}",
                              "--broker", live_broker.url)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and "its store fails (error: disk I/O error)" in blocks["hub"]


def test_broker_down(capsys, hub: HubProcess) -> None:
    url = dead_url("mqtt")
    code, blocks, _ = run(capsys, "--hub", hub.url, "--broker", url)
    assert code == 1
    assert ok(blocks["hub"]) and ok(blocks["config"])
    assert "does not answer (connection refused): is mosquitto running?" in blocks["broker"]


def test_broker_without_hub_status(capsys) -> None:
    with Broker(persistence=False) as empty:
        code, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", empty.url)
    assert code == 1
    assert "holds no hub status on vuoro/sonderbro/hub/status" in blocks["broker"]


def test_broker_says_hub_offline(capsys) -> None:
    with Broker(persistence=False) as broker:
        publish_retained(broker, "vuoro/sonderbro/hub/status", b'{"v":1,"online":false}')
        code, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", broker.url)
    assert code == 1 and "says the hub is offline" in blocks["broker"]


def test_broker_refuses_wrong_password(capsys, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from deploy import mosquitto_acl

    mosquitto_acl.generate(CONFIG, tmp_path, group=None)
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {tmp_path}/passwd\n"
                    f"acl_file {tmp_path}/acl\nuser {os.environ.get('USER') or 'root'}\n")
    from toolkit.broker import mosquitto_path, wait_for_port

    proc = subprocess.Popen([mosquitto_path(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        url = f"mqtt://127.0.0.1:{port}"
        code, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", url, "--mqtt-user", "kiosk1",
                              "--mqtt-password=-wrong-password-000")  # a password may begin with '-': given with '='
        assert code == 1 and "refused user 'kiosk1'" in blocks["broker"]
        code, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", url, "--mqtt-user", "kiosk1",
                              "--mqtt-password", CONFIG.devices["kiosk1"].token)
        assert "holds no hub status" in blocks["broker"]  # logged in; the hub never came
    finally:
        proc.terminate()
        proc.wait(10)


def test_printer_unreachable(capsys, hub: HubProcess, live_broker: Broker) -> None:
    url = dead_url("tcp")
    code, blocks, out = run(capsys, "--hub", hub.url, "--broker", live_broker.url, "--printer", url)
    assert code == 1
    assert ok(blocks["hub"]) and ok(blocks["broker"])
    assert f"The printer at {url}: printer not reachable." in blocks["printer"]
    assert "1 of 4 checks failed (printer)" in out


def test_printer_out_of_paper_and_bad_url(capsys, printer: VirtualPrinter) -> None:
    printer.set_paper("out")
    _, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", dead_url("mqtt"), "--printer", printer.url)
    assert blocks["printer"].startswith("FAIL") and "out of paper" in blocks["printer"]
    assert "Put in a new roll" in blocks["printer"]
    _, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", dead_url("mqtt"), "--printer", "lpt://x")
    assert "is not a printer address" in blocks["printer"]


def test_a_printer_code_page_that_cannot_print_the_sites_languages_fails(capsys, printer: VirtualPrinter) -> None:
    """The sample site speaks da, sv, fi, nl and en: CP437 has no ø. The doctor names the fix."""
    _, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", dead_url("mqtt"), "--printer",
                       printer.url + "?codepage=CP437")
    assert blocks["printer"].startswith("FAIL") and "cannot print ø Ø (Danish)" in blocks["printer"]
    assert "?codepage=CP858" in blocks["printer"]
    _, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", dead_url("mqtt"), "--printer",
                       printer.url + "?codepage=CP865")
    assert ok(blocks["printer"]), blocks["printer"]


def test_printer_paper_low_passes_with_a_note(capsys, printer: VirtualPrinter) -> None:
    printer.set_paper("near_end")
    _, blocks, _ = run(capsys, "--hub", dead_url("http"), "--broker", dead_url("mqtt"), "--printer", printer.url)
    assert ok(blocks["printer"]) and "paper is low" in blocks["printer"]


def test_cli_dispatches_to_doctor() -> None:
    result = subprocess.run([sys.executable, "-m", "vuoro.cli", "doctor", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "--printer" in result.stdout


def test_pointed_at_the_demos_site_file_it_checks_the_demos_hub_and_broker(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    """The demo writes its own hub address and private broker into <data-dir>/site.toml: the first version
    left the sample's 127.0.0.1:8080 and port 1883 there, so the doctor checked a broker the demo never
    used."""
    from toolkit.demo import Demo, parse_args

    demo = Demo(parse_args(["--data-dir", str(tmp_path), "--port", "0"]))
    try:
        demo.start()
        assert demo.broker and demo.hub
        code = doctor.main(["--config", str(demo.site), "--timeout", "5"])
        out = capsys.readouterr().out
    finally:
        demo.stop()
    port = demo.broker.url.rsplit(":", 1)[1]
    assert code == 0, out
    assert f"The broker at 127.0.0.1:{port} works and the hub is online" in out, out
    assert f"The hub at {demo.hub.url} is healthy" in out, out
