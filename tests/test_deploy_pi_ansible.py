"""The Pi install script and the Ansible playbook: lint-clean, and consistent with the site config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
ANSIBLE = DEPLOY / "ansible"
INSTALL = DEPLOY / "pi" / "install.sh"
EXAMPLE = ANSIBLE / "inventory" / "example"

sys.path.insert(0, str(REPO))
from server.config import load_config  # noqa: E402


def tool(name: str, package: str) -> str:
    exe = shutil.which(name) or (str(Path(sys.executable).parent / name) if (Path(sys.executable).parent / name)
                                 .exists() else None)
    if exe is None:
        pytest.fail(f"{name} is not installed ({package}); CI must install it")
    return exe


def run(*argv: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


# -- install.sh -----------------------------------------------------------------------------------


def test_install_script_parses_and_is_shellcheck_clean() -> None:
    result = run("bash", "-n", str(INSTALL))
    assert result.returncode == 0, result.stderr
    result = run(tool("shellcheck", "apt-get install shellcheck"), "--severity=style", str(INSTALL))
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(INSTALL, os.X_OK), "install.sh must be executable"


def test_install_script_help_and_refusals() -> None:
    result = run("bash", str(INSTALL), "--help")
    assert result.returncode == 0 and "ROLE: hub | kiosk | display | button" in result.stdout
    result = run("bash", str(INSTALL), "toaster")
    assert result.returncode == 1 and "unknown role 'toaster'" in result.stderr
    result = run("bash", str(INSTALL), "kiosk", "--colour", "red")
    assert result.returncode == 1 and "unknown option '--colour'" in result.stderr


@pytest.mark.parametrize("role", ["hub", "kiosk", "display", "button"])
def test_install_script_uses_the_units_and_extras(role: str) -> None:
    text = INSTALL.read_text()
    assert 'EXTRA="$ROLE"' in text and '"$PREFIX/src[$EXTRA]"' in text
    assert (DEPLOY / "systemd" / f"vuoro-{role}.service").exists()
    assert role in json.loads(run(sys.executable, "-c", "import tomllib, json; print(json.dumps(tomllib.load("
                                  "open('pyproject.toml', 'rb'))['project']['optional-dependencies']))")
                              .stdout), f"pyproject has no extra [{role}]"


def fill(template: Path, **values: str) -> str:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    assert "@" not in text.split("#")[0], "an unfilled placeholder"
    return text


def test_config_templates_are_read_by_the_apps(tmp_path: Path) -> None:
    values = dict(DEVICE="kiosk1", TOKEN="demo-kiosk1-token-change-me", HUB_URL="http://10.0.0.2:8080",
                  BROKER_URL="mqtt://10.0.0.2:1883", SITE="sonderbro", LANGUAGE="sv", PRINTER="tcp://10.0.0.40:9100")
    kiosk_file = tmp_path / "kiosk.toml"
    kiosk_file.write_text(fill(DEPLOY / "config" / "kiosk.toml", **values))
    from kiosk.config import load_file

    kiosk = load_file(kiosk_file)
    assert (kiosk.device, kiosk.hub, kiosk.printer, kiosk.language) == ("kiosk1", values["HUB_URL"],
                                                                        values["PRINTER"], "sv")
    assert not kiosk.extra, f"keys the kiosk does not know: {kiosk.extra}"

    display_file = tmp_path / "display.toml"
    display_file.write_text(fill(DEPLOY / "config" / "display.toml", **{**values, "DEVICE": "screen1"}))
    from display.config import load

    display = load(["--config", str(display_file)])
    assert (display.device, display.username, display.site, display.lang) == ("screen1", "screen1", "sonderbro", "sv")


# -- Ansible ---------------------------------------------------------------------------------------


def test_playbook_syntax_check() -> None:
    result = run(tool("ansible-playbook", "apt-get install ansible"), "--syntax-check", "site.yml", cwd=ANSIBLE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint() -> None:
    result = run(tool("ansible-lint", "apt-get install ansible-lint"), "--nocolor", cwd=ANSIBLE,
                 env={"ANSIBLE_LOCAL_TEMP": "/tmp", "NO_COLOR": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout + result.stderr


def test_example_inventory_matches_its_site_config() -> None:
    result = run(tool("ansible-inventory", "apt-get install ansible"), "--list", cwd=ANSIBLE)
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    groups = {g: inventory[g]["hosts"] for g in ("hub", "kiosks", "displays", "buttons")}
    assert [len(groups[g]) for g in ("hub", "kiosks", "displays", "buttons")] == [1, 2, 3, 2]
    config = load_config(EXAMPLE / "site.toml")
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 8080), "devices reach the hub over the LAN"
    kinds = {"kiosks": "kiosk", "displays": "display", "buttons": "button"}
    seen = set()
    for group, kind in kinds.items():
        for host in groups[group]:
            device = inventory["_meta"]["hostvars"][host]["vuoro_device"]
            assert config.devices[device].kind == kind, f"{host}: {device} is not a {kind}"
            seen.add(device)
    assert seen == set(config.devices), "every device in the site config has a host, and no more"


def test_ansible_renders_device_configs_the_apps_read(tmp_path: Path) -> None:
    """Ansible itself renders the role templates; the kiosk and the screen read the result."""
    facts = run(sys.executable, str(ANSIBLE / "files" / "site_facts.py"), str(EXAMPLE / "site.toml"))
    assert facts.returncode == 0, facts.stderr
    site = json.loads(facts.stdout)
    assert site["devices"]["buttons2"]["counters"] == ["borger1", "bib1"]
    variables = {"vuoro_site": site, "vuoro_hub_url": "http://10.20.0.2:8080",
                 "vuoro_broker_url": "mqtt://10.20.0.2:1883", "vuoro_language": "fi",
                 "vuoro_display_services": ["borgerservice"], "vuoro_rotation": 90,
                 "vuoro_state": "/var/lib/vuoro", "vuoro_role": "kiosk", "vuoro_speech_card": "Headphones"}
    plays = [{"name": "render", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": f"render {name}", "vars": {"vuoro_device": device},
         "ansible.builtin.template": {"src": str(ANSIBLE / "roles" / src), "dest": str(tmp_path / name),
                                      "mode": "0600"}}
        for name, src, device in [("kiosk.toml", "kiosk/templates/kiosk.toml.j2", "kiosk2"),
                                  ("display.toml", "display/templates/display.toml.j2", "screen3"),
                                  ("button.toml", "button/templates/button.toml.j2", "buttons2"),
                                  ("config.ini", "common/templates/kivy-config.ini.j2", "kiosk2"),
                                  ("asound.conf", "kiosk/templates/asound.conf.j2", "kiosk2")]]}]
    playbook = tmp_path / "render.yml"
    playbook.write_text(json.dumps(plays))
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({**variables, "vuoro_printer": "usb://04b8:0e15"}))
    result = run(tool("ansible-playbook", "apt-get install ansible"), "-i", "localhost,", str(playbook),
                 "-e", f"@{extra}", cwd=tmp_path, env={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")})
    assert result.returncode == 0, result.stdout + result.stderr

    from display.config import load
    from kiosk.config import load_file

    kiosk = load_file(tmp_path / "kiosk.toml")
    assert (kiosk.device, kiosk.token, kiosk.site, kiosk.printer) == (
        "kiosk2", "example-kiosk2-token-change-me", "sonderbro", "usb://04b8:0e15")
    assert not kiosk.extra
    assert (kiosk.speech, kiosk.speech_device) == ("aplay", "vuoro_speech")  # speech mode's ALSA device...
    rendered = (tmp_path / "asound.conf").read_text().split("\n", 1)[1]  # ...is install.sh's file, for a Pi 4
    assert rendered == (REPO / "deploy" / "alsa" / "asound.conf").read_text()
    assert "pcm.vuoro_speech {" in rendered and "hw:CARD=Headphones,DEV=0" in rendered
    display = load(["--config", str(tmp_path / "display.toml")])
    assert (display.username, display.password, display.services, display.lang) == (
        "screen3", "example-screen3-token-change-me", ("borgerservice",), "fi")
    import tomllib

    from hardware.button_cli import parse_button_config

    button = parse_button_config(tomllib.loads((tmp_path / "button.toml").read_text()))  # what `vuoro button` reads
    assert (button.device, button.site, button.password) == (
        "buttons2", "sonderbro", "example-buttons2-token-change-me")
    assert [(b.counter, b.pin) for b in button.buttons.values()] == [("borger1", 17), ("bib1", 27)]
    assert "rotation = 90" in (tmp_path / "config.ini").read_text()


def role_tasks(path: str, first: str, last: str) -> list[dict]:
    """The role's own tasks from FIRST to LAST (by name), as Ansible would run them."""
    import yaml

    tasks = yaml.safe_load((ANSIBLE / "roles" / path).read_text())
    names = [task.get("name", "").split("  #")[0] for task in tasks]
    return tasks[names.index(first):names.index(last) + 1]


def as_not_root(tasks: list[dict]) -> None:
    """The tasks without their owner and group: the tests do not run as root (the roles' files do not change)."""
    for task in tasks:
        for module in task.values():
            if isinstance(module, dict):
                module.pop("owner", None), module.pop("group", None)


def play(tmp_path: Path, tasks: list[dict], variables: dict, times: int = 1) -> list[str]:
    """Run the tasks on localhost; the PLAY RECAP line of each run."""
    handlers = [{"name": "Restart the Vuoro service", "listen": "Vuoro's Python packages changed",
                 "ansible.builtin.debug": {"msg": "restart"}}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                     "vars": variables, "handlers": handlers, "tasks": tasks}]))
    recaps = []
    for _ in range(times):
        result = run(tool("ansible-playbook", "apt-get install ansible"), "-i", "localhost,", str(playbook),
                     cwd=tmp_path, env={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_NOCOLOR": "1"})
        assert result.returncode == 0, result.stdout + result.stderr
        recaps.append(next(line for line in result.stdout.splitlines() if line.startswith("localhost ")))
    return recaps


@pytest.mark.parametrize("before", ["console=serial0,115200 root=PARTUUID=1 rootwait\n",
                                    "console=serial0,115200 root=PARTUUID=1 rootwait consoleblank=0 "
                                    "vt.global_cursor_default=0 logo.nologo quiet loglevel=3\n",
                                    "console=serial0,115200 quiet root=PARTUUID=1 rootwait  \n"])
def test_the_screen_role_keeps_cmdline_txt_one_line(tmp_path: Path, before: str) -> None:
    """Fresh, after install.sh (which adds the same options), half done: one line, each option
    once, and the second run changes nothing. The firmware reads only the first line."""
    cmdline = tmp_path / "cmdline.txt"
    cmdline.write_text(before)
    [task] = role_tasks("common/tasks/screen.yml", "No screen blanking, no cursor, a quiet boot",
                        "No screen blanking, no cursor, a quiet boot")
    task["ansible.builtin.replace"]["path"] = str(cmdline)
    first, second = play(tmp_path, [task], {}, times=2)
    assert "changed=0" in second, second
    text = cmdline.read_text()
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    words = text.split()
    assert words[:len(before.split())] == before.split(), "what was there stays, in its order"
    for option in ["consoleblank=0", "vt.global_cursor_default=0", "logo.nologo", "quiet", "loglevel=3",
                   "rootwait"]:
        assert words.count(option) == 1, f"{option} in {text!r}"


def test_the_pip_step_runs_again_only_when_code_or_dependencies_change(tmp_path: Path) -> None:
    """pip reinstalls a project given as a folder every time: the role's pip task must not run
    (and restart the service) on a run where nothing changed. A small project stands in for Vuoro."""
    repo = tmp_path / "checkout"
    (repo / "tinyapp").mkdir(parents=True)
    (repo / "tinyapp" / "__init__.py").write_text("")
    (repo / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                         '"setuptools.build_meta"\n[project]\nname = "tinyapp"\nversion = "1"\n'
                                         '[project.optional-dependencies]\nhub = []\nkiosk = []\n')
    (repo / "constraints.txt").write_text("")
    tasks = [*role_tasks("common/tasks/code.yml", "Make a file for the packed checkout on the controller",
                         "Remove the packed checkout on the controller"),
             *role_tasks("common/tasks/venv.yml", "Fingerprint the Python dependencies on the controller",
                         "Remember what this extra was installed from")]
    as_not_root(tasks)
    prefix = tmp_path / "opt"
    variables = {"vuoro_repo": str(repo), "vuoro_prefix": str(prefix), "vuoro_extra": "hub"}
    [first] = play(tmp_path, tasks, variables)  # pip builds it with setuptools from the index
    assert "skipped=0" in first, first
    (repo / ".ruff_cache").mkdir()  # a tool's cache on the controller is not the code
    (repo / ".ruff_cache" / "x").write_text("x")
    [second] = play(tmp_path, tasks, variables)
    assert "changed=0" in second and "skipped=1" in second, second  # pip did not run
    (repo / "constraints.txt").write_text("# a pin changed\n")
    [third] = play(tmp_path, tasks, variables)
    assert "changed=0" not in third and "skipped=0" in third, third  # pip ran, the stamp moved
    assert (prefix / "bin" / "python").exists()

    # One box, two roles (site.yml plays them one after the other): the code changes, the first role's play
    # copies it and reinstalls; the second role's play finds the code already copied, and must still reinstall
    # its extra (and so restart its service), or it runs the old code until the next reboot.
    kiosk = {**variables, "vuoro_extra": "kiosk"}
    play(tmp_path, tasks, kiosk)
    [quiet] = play(tmp_path, tasks, kiosk)
    assert "changed=0" in quiet and "skipped=1" in quiet, quiet
    (repo / "tinyapp" / "__init__.py").write_text("VERSION = 2\n")
    [hub_play] = play(tmp_path, tasks, variables)
    assert "skipped=0" in hub_play, hub_play  # the code copied, pip ran
    [kiosk_play] = play(tmp_path, tasks, kiosk)
    assert "skipped=0" in kiosk_play and "changed=0" not in kiosk_play, kiosk_play  # the code was there: pip ran


def test_the_screen_role_gives_kivy_its_settings_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    """Kivy rewrites config.ini at its first start (every default added): the ARM proof's second playbook run
    saw the role's template differ and restart the kiosk every time. Real Kivy starts between the runs here."""
    tasks = role_tasks("common/tasks/screen.yml", "Write Kivy's settings (full screen, rotation, touch, no cursor)",
                       "Give Kivy the settings")
    as_not_root(tasks)
    tasks[0]["ansible.builtin.template"]["src"] = str(ANSIBLE / "roles" / "common" / "templates" / "kivy-config.ini.j2")
    home = tmp_path / "state" / "kiosk" / "kivy"
    home.mkdir(parents=True)
    variables = {"vuoro_state": str(tmp_path / "state"), "vuoro_role": "kiosk", "vuoro_rotation": 90}
    [first] = play(tmp_path, tasks, variables)
    assert "changed=2" in first, first  # written, handed to Kivy (and the restart notified)
    ours = (home / "config.ini").read_text()
    as_on_a_kiosk = {k: v for k, v in os.environ.items() if k != "KIVY_NO_CONFIG"}  # the suite's own Kivy reads none
    kivy = subprocess.run([sys.executable, "-c", "import kivy.config as c; print('rotation=' + c.Config.get("
                           "'graphics', 'rotation'))"], capture_output=True, text=True, timeout=120,
                          env={**as_on_a_kiosk, "KIVY_HOME": str(home), "KIVY_NO_ARGS": "1", "KIVY_NO_FILELOG": "1"})
    assert kivy.returncode == 0 and "rotation=90" in kivy.stdout.splitlines(), kivy.stdout + kivy.stderr
    assert (home / "config.ini").read_text() != ours, "Kivy rewrote the file, as on a kiosk"
    [second] = play(tmp_path, tasks, variables)
    assert "changed=0" in second, second
    variables["vuoro_rotation"] = 180  # a real change still reaches Kivy
    [third] = play(tmp_path, tasks, variables)
    assert "changed=2" in third and "rotation = 180" in (home / "config.ini").read_text(), third
