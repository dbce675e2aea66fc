"""Helpers for the tests beyond the article: a root with an issuing intermediate, OpenSSL and
easy-rsa runs, and certificates made behind kittylab's back (as a rogue or buggy CA would make them)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from kittylab import Issued, Workspace
from kittylab.net.webconfig import write_site
from kittylab.pki.ca import utcnow
from kittylab.pki.constraints import build_name_constraints
from kittylab.pki.files import write_atomically
from kittylab.pki.keys import generate_key, key_to_pem
from kittylab.pki.profiles import PROFILES, ca_extensions
from kittylab.ui.sites import RunningSite
from support.system import PASSWORD, free_port, require_binary


@dataclass
class Hierarchy:
    """A workspace's CAs with picture-server and eager-client: kitty-root (offline-able) above kitty-issuing
    (build_hierarchy), or server-ca beside client-ca (build_two_roots)."""

    workspace: Workspace
    server: Issued
    client: Issued

    @property
    def home(self) -> Path:
        return self.workspace.home

    def file(self, name: str) -> str:
        return str(self.home / name)


def build_hierarchy(home: Path, *, constraints: bool = False) -> Hierarchy:
    """A root and an issuing CA (with name constraints for localhost and kitty.test if asked)."""
    workspace = Workspace(home)
    workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-root", key="p256")
    name_constraints = build_name_constraints(
        permit_dns=["localhost", "*.example.test"], permit_email=["kitty.test"], permit_ip=["127.0.0.0/8"]
    ) if constraints else None
    workspace.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-root", name_constraints=name_constraints)
    server = workspace.issue("picture-server", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"])
    client = workspace.issue(
        "eager-client", profile="client", key="p256", email=["eager-client@kitty.test"], p12=True,
        p12_password=PASSWORD,
    )
    return Hierarchy(workspace, server, client)


def build_two_roots(home: Path) -> Hierarchy:
    """Two independent roots, server-ca and then client-ca (the current CA since): picture-server (localhost,
    127.0.0.1) from server-ca, eager-client (a p12 with PASSWORD) from the current CA."""
    workspace = Workspace(home)
    workspace.init_ca("/O=Kitty Inc/CN=server-ca", key="p256")
    workspace.init_ca("/O=Kitty Inc/CN=client-ca", key="p256", another_root=True)
    server = workspace.issue(
        "picture-server", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"], ca="server-ca"
    )
    client = workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password=PASSWORD)
    return Hierarchy(workspace, server, client)


def encrypted_ca(home: Path, passphrase: str) -> Path:
    """A workspace at ``home`` whose CA kitty-ca (P-256) has its key file encrypted with ``passphrase``, closed
    again (to be opened with or without the passphrase): the key file's path."""
    with Workspace(home) as workspace:
        workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256", passphrase=passphrase)
    key = home / "kitty-ca.key"
    assert b"ENCRYPTED" in key.read_bytes()
    return key


def openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real OpenSSL command line (skips without it)."""
    binary = require_binary("openssl")
    return subprocess.run([binary, *map(str, args)], capture_output=True, cwd=cwd, timeout=60)


def easy_rsa(folder: Path, *steps: list[str]) -> Path:
    """Run the real easy-rsa's ``steps`` in ``folder`` (batch mode, P-256 keys; skips without it);
    every step must succeed. Returns the PKI folder it made, ``folder/pki``."""
    binary = require_binary("easyrsa", "/usr/share/easy-rsa/easyrsa")
    pki = folder / "pki"
    env = dict(os.environ, EASYRSA_BATCH="1", EASYRSA_PKI=str(pki), EASYRSA_ALGO="ec", EASYRSA_CURVE="prime256v1")
    for step in steps:
        done = subprocess.run([binary, *step], env=env, cwd=folder, capture_output=True, timeout=120)
        assert done.returncode == 0, (step, done.stderr)
    return pki


def forged_leaf(
    issuer_certificate: x509.Certificate,
    issuer_key,
    name: str,
    *,
    dns: list[str] = (),
    email: str | None = None,
    ip: list[str] = (),
    profile: str = "server",
    folder: Path,
) -> tuple[Path, Path]:
    """A leaf signed with a CA's key without kittylab's checks: (key, crt) files in ``folder``."""
    subject = [x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]
    if email:
        subject.append(x509.NameAttribute(x509.NameOID.EMAIL_ADDRESS, email))
    names = ([x509.DNSName(d) for d in dns] + ([x509.RFC822Name(email)] if email else [])
             + [x509.IPAddress(ipaddress.ip_address(address)) for address in ip])
    key, certificate = _forge(issuer_certificate, issuer_key, subject, days=30, extensions=lambda public_key: (
        PROFILES[profile].extensions(public_key, issuer_certificate, names)))
    return _write_pair(folder, name, key, certificate)


def forged_sub_ca(issuer_certificate: x509.Certificate, issuer_key, name: str, *, folder: Path):
    """A CA certificate under ``issuer`` that kittylab would refuse to make (its path length forbids it)."""
    subject = [x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]
    key, certificate = _forge(issuer_certificate, issuer_key, subject, days=60, extensions=lambda public_key: (
        ca_extensions(public_key, issuer_certificate, path_length=0)))
    _write_pair(folder, name, key, certificate)
    return certificate, key


def _forge(issuer_certificate: x509.Certificate, issuer_key, subject: list[x509.NameAttribute], *, days: int, extensions):
    """A new P-256 key and its certificate for ``days``, signed with ``issuer_key`` and no check at all;
    ``extensions(public_key)`` gives its (extension, critical) pairs."""
    key = generate_key("p256")
    start = utcnow() - dt.timedelta(minutes=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(issuer_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )
    for extension, critical in extensions(key.public_key()):
        builder = builder.add_extension(extension, critical=critical)
    return key, builder.sign(issuer_key, hashes.SHA256())


def _write_pair(folder: Path, name: str, key, certificate: x509.Certificate) -> tuple[Path, Path]:
    key_path = write_atomically(folder / f"{name}.key", key_to_pem(key), secret=True)
    crt_path = write_atomically(folder / f"{name}.crt", certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, crt_path


@contextlib.contextmanager
def web_site(workspace: Workspace, kind: str = "nginx", **options) -> Iterator[RunningSite]:
    """kittylab's nginx (or Apache) configuration for picture-server, running privately on a free port.

    The workers drop root's rights: the site gets its own world-readable folder (pytest's
    temporary folders are private to their owner).
    """
    require_binary("nginx") if kind == "nginx" else require_binary("apache2", "/usr/sbin/apache2")
    with tempfile.TemporaryDirectory(prefix="kittylab-beyond-") as directory:
        Path(directory).chmod(0o755)
        with RunningSite(write_site(kind, workspace, directory, port=free_port(), **options)) as web:
            yield web


def curl_status(url: str, p12: Path, *, ca: Path) -> str:
    """The HTTP status curl gets with a client p12 (password PASSWORD), trusting only ``ca``."""
    done = subprocess.run(
        [require_binary("curl"), "--silent", "--output", "/dev/null", "--write-out", "%{http_code}",
         "--cert-type", "P12", "--cert", f"{p12}:{PASSWORD}", "--cacert", str(ca), url],
        capture_output=True, text=True, timeout=60,
    )
    return done.stdout or f"curl error {done.returncode}: {done.stderr.strip()}"
