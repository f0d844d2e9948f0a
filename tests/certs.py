"""A test CA and certificates, made with Debian's ``openssl`` command, as a site would make its own.

Not a test module: the TLS tests import it. Each CA is made fresh in a
temporary folder, so a test never trusts anything it did not make.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclass(frozen=True)
class TestCA:
    """A certificate authority of its own: ``ca.cert`` is what clients are told to trust."""

    __test__ = False  # not a test class, whatever its name says
    folder: Path
    cert: Path
    key: Path

    @classmethod
    def create(cls, folder: Path, name: str = "Vuoro test CA") -> TestCA:
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / "ca.crt", folder / "ca.key"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                 "-keyout", str(key), "-out", str(cert))
        return cls(folder, cert, key)

    def issue(self, name: str, *, dns: tuple[str, ...] = ("localhost",),
              ips: tuple[str, ...] = ("127.0.0.1",)) -> Issued:
        """A certificate for ``name`` with these subject alternative names (what clients check)."""
        key, csr, cert = (self.folder / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
        san = ",".join([*(f"DNS:{d}" for d in dns), *(f"IP:{i}" for i in ips)])
        extfile = self.folder / f"{name}.ext"
        extfile.write_text(f"subjectAltName={san}\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key), "-CAcreateserial",
                 "-days", "2", "-extfile", str(extfile), "-out", str(cert))
        return Issued(cert, key)
