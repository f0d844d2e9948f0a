"""python-escpos, imported quietly.

Two side effects of the library are contained here so no other module has to
know about them: importing ``escpos.capabilities`` calls ``mkdtemp()`` even
when ``ESCPOS_CAPABILITIES_PICKLE_DIR`` is set (a new empty ``/tmp/tmpXXXX``
per process, which piles up on a kiosk that restarts daily), and
``barcode()`` prints "Using hardware barcode renderer" to stdout.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import tempfile
from pathlib import Path

_created: list[str] = []
_real_mkdtemp = tempfile.mkdtemp


def _recording_mkdtemp(*args: object, **kwargs: object) -> str:
    path = _real_mkdtemp(*args, **kwargs)  # type: ignore[call-overload]
    _created.append(path)
    return path


_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vuoro" / "escpos"
try:
    _cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(_cache))
except OSError:  # read-only home: the library's own temporary folder is fine
    pass

# The library rewrites its pickle in that shared folder whenever its JSON is newer (a fresh venv), and a
# second process importing meanwhile reads it half-written (EOFError): one process at a time, by a lock.
_lock = None
with contextlib.suppress(OSError):
    _lock = open(Path(os.environ.get("ESCPOS_CAPABILITIES_PICKLE_DIR", tempfile.gettempdir())) / "import.lock", "w")  # noqa: SIM115 (held across the import)
    fcntl.flock(_lock, fcntl.LOCK_EX)
tempfile.mkdtemp = _recording_mkdtemp  # type: ignore[assignment]
try:
    from escpos import printer as _printer  # noqa: E402
    from escpos.exceptions import DeviceNotFoundError  # noqa: E402
finally:
    tempfile.mkdtemp = _real_mkdtemp
    if _lock is not None:
        _lock.close()  # closing releases the lock
for _path in _created:
    if _path != os.environ.get("ESCPOS_CAPABILITIES_PICKLE_DIR"):
        with contextlib.suppress(OSError):
            os.rmdir(_path)  # only removes it if empty

Dummy = _printer.Dummy
Usb = _printer.Usb


@contextlib.contextmanager
def quiet():
    """Swallow the library's prints to stdout (barcode renderer notice)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


__all__ = ["Dummy", "Usb", "DeviceNotFoundError", "quiet"]
