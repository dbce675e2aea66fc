"""Helpers for the mTLS tests: certificates the workspace will not make (expired, from another CA)."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from kittylab import Workspace
from kittylab.ca import utcnow
from kittylab.files import write_atomically
from kittylab.keys import generate_key, key_to_pem
from kittylab.profiles import PROFILES
from kittylab.subjects import Subject


def expired_client(workspace: Workspace, name: str) -> tuple[Path, Path]:
    """A client certificate signed by the workspace's CA that expired a year ago: (key, crt) files.

    The CA refuses to backdate before its own start, so this is built directly with the CA's key.
    """
    key = generate_key("p256")
    ca = workspace.ca
    start = utcnow() - dt.timedelta(days=400)
    builder = (
        x509.CertificateBuilder()
        .subject_name(Subject(cn=name, o="Kitty Inc").to_name())
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(64) | 1 << 63)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
    )
    for extension, critical in PROFILES["client"].extensions(key.public_key(), ca.certificate, []):
        builder = builder.add_extension(extension, critical=critical)
    certificate = builder.sign(ca.key, hashes.SHA256())
    key_path = write_atomically(workspace.home / f"{name}.key", key_to_pem(key), secret=True)
    crt_path = write_atomically(workspace.home / f"{name}.crt", certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, crt_path
