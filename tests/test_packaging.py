"""A Pi installs with 'pip install .[role]', not from this checkout: the wheel must carry every file."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vuoro", "server", "kiosk", "display", "hardware", "toolkit")


def test_the_wheel_carries_every_tracked_file_of_the_packages(tmp_path: Path) -> None:
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("vuoro-*.whl"))
    shipped = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", *PACKAGES], capture_output=True, text=True, cwd=ROOT,
                             check=True).stdout.split()
    assert len(tracked) > 50
    assert [f for f in tracked if f not in shipped] == []
