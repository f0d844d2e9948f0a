"""A private OpenLDAP server (Debian's ``slapd``) for the staff-login tests: a folder, a free port, an LDIF.

Configured the way a municipality's directory looks to the hub: people under
``ou=people``, ``groupOfNames`` groups under ``ou=groups`` with ``member`` DNs, and
access rules that let anonymous clients do nothing but bind (so the hub must bind
as the user, as it does against Active Directory). ``stop()`` and ``start()`` again
model the directory going down and coming back.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.ports import free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SUFFIX = "dc=kommune,dc=test"
SCHEMAS = ("core", "cosine", "inetorgperson")


@dataclass(frozen=True)
class Person:
    uid: str
    password: str
    groups: tuple[str, ...] = ()  # cn of groups under ou=groups
    disabled: bool = False  # employeeType: disabled (the tests' user_filter leaves such accounts out)

    @property
    def dn(self) -> str:
        return f"uid={self.uid},ou=people,{SUFFIX}"


def group_dn(cn: str) -> str:
    return f"cn={cn},ou=groups,{SUFFIX}"


def ssha(password: str) -> str:
    """``{SSHA}`` as slappasswd makes it: SHA-1 over password + salt, then the salt."""
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def _config_ldif(folder: Path, tls: tuple[Path, Path] | None) -> str:
    includes = "\n".join(f"include: file:///etc/ldap/schema/{name}.ldif" for name in SCHEMAS)
    certificate = f"olcTLSCertificateFile: {tls[0]}\nolcTLSCertificateKeyFile: {tls[1]}\n" if tls else ""
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {folder}/slapd.pid
{certificate}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcDbDirectory: {folder}/data
olcRootDN: cn=admin,{SUFFIX}
olcRootPW: {ssha("directory-admin")}
olcDbMaxSize: 16777216
olcAccess: {{0}}to attrs=userPassword by self read by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none
"""


def _data_ldif(people: list[Person]) -> str:
    entries = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: kommune\no: Test Kommune\n",
               f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
               f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n"]
    for p in people:
        entry = (f"dn: {p.dn}\nobjectClass: inetOrgPerson\nuid: {p.uid}\ncn: {p.uid}\nsn: {p.uid}\n"
                 f"userPassword: {ssha(p.password)}\n")
        if p.disabled:
            entry += "employeeType: disabled\n"
        entries.append(entry)
    for cn in sorted({g for p in people for g in p.groups}):
        members = "".join(f"member: {p.dn}\n" for p in people if cn in p.groups)
        entries.append(f"dn: {group_dn(cn)}\nobjectClass: groupOfNames\ncn: {cn}\n{members}")
    return "\n".join(entries)


@dataclass
class Slapd:
    folder: Path
    people: list[Person]
    tls: tuple[Path, Path] | None = None  # certificate and key: also listen with ldaps:// on tls_port, and StartTLS
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def build(self) -> Slapd:
        assert shutil.which(SLAPD) or Path(SLAPD).exists(), "slapd is not installed (apt-get install slapd ldap-utils)"
        config, data = self.folder / "slapd.d", self.folder / "data"
        config.mkdir(parents=True)
        data.mkdir()
        (self.folder / "config.ldif").write_text(_config_ldif(self.folder, self.tls))
        (self.folder / "data.ldif").write_text(_data_ldif(self.people))
        for number, ldif in (("0", "config.ldif"), ("1", "data.ldif")):
            subprocess.run([SLAPADD, "-n", number, "-F", str(config), "-l", str(self.folder / ldif)],
                           check=True, capture_output=True)
        return self

    def start(self) -> Slapd:
        # -d 0: stay in the foreground (no fork), so the test owns the process and its end.
        listen = f"{self.url}/ {self.ldaps_url}/" if self.tls else f"{self.url}/"
        self.process = subprocess.Popen([SLAPD, "-d", "0", "-h", listen, "-F", str(self.folder / "slapd.d")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"slapd stopped: {said}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not open its port in 10 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # slapd's clean shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
