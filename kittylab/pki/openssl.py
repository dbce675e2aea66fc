"""The OpenSSL command that does what each kittylab call does, as the article types it.

The notebooks show these beside each call, so a learner sees both ways side by side.
"""

from __future__ import annotations

import shlex
from typing import Iterable

from ..errors import KittylabError
from .crl import OPENSSL_REASONS, check_reason
from .names import Subject, subject_of

_EXTENSION_SECTIONS = {"server": "server_cert", "client": "usr_cert"}


def genkey(kind: str, out: str, *, passphrase: bool = False) -> str:
    """``openssl genrsa`` / ``genpkey`` for a key of ``kind`` written to ``out``."""
    cipher = " -aes256" if passphrase else ""
    if kind.startswith("rsa") and kind[3:].isdigit():
        return f"openssl genrsa{cipher} -out {_q(out)} {kind[3:]}"
    curves = {"p256": "P-256", "p384": "P-384"}
    if kind in curves:
        return f"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:{curves[kind]}{cipher} -out {_q(out)}"
    if kind == "ed25519":
        return f"openssl genpkey -algorithm ed25519{cipher} -out {_q(out)}"
    raise KittylabError(f"unknown key type {kind!r}")


def self_signed_ca(key: str, out: str, subject: Subject | str, *, days: int = 7300) -> str:
    """``openssl req -x509``: the CA signs its own certificate with the ``v3_ca`` extensions."""
    return (
        f"openssl req -x509 -new -key {_q(key)} -sha256 -days {days} -extensions v3_ca"
        f" -subj {_q(subject_of(subject).openssl())} -out {_q(out)}"
    )


def csr(key: str, out: str, subject: Subject | str, *, sans: Iterable[str] = ()) -> str:
    """``openssl req -new``: a request for ``subject``, SANs given as ``DNS:x``, ``IP:y``, ..."""
    names = list(sans)
    addext = f" -addext {_q('subjectAltName=' + ','.join(names))}" if names else ""
    return f"openssl req -new -key {_q(key)} -subj {_q(subject_of(subject).openssl())}{addext} -out {_q(out)}"


def sign(csr_file: str, out: str, *, profile: str, days: int = 375, config: str = "openssl.cnf") -> str:
    """``openssl ca``: the CA signs a request with the extensions of a profile's section."""
    if profile not in _EXTENSION_SECTIONS:
        raise KittylabError(f"unknown profile {profile!r}: choose server or client")
    return (
        f"openssl ca -config {_q(config)} -extensions {_EXTENSION_SECTIONS[profile]} -days {days}"
        f" -notext -md sha256 -in {_q(csr_file)} -out {_q(out)}"
    )


def sign_intermediate(csr_file: str, out: str, *, days: int = 7300, config: str = "openssl.cnf") -> str:
    """``openssl ca -extensions v3_intermediate_ca``: the parent CA signs an issuing CA's request."""
    return (
        f"openssl ca -config {_q(config)} -extensions v3_intermediate_ca -days {days}"
        f" -notext -md sha256 -in {_q(csr_file)} -out {_q(out)}"
    )


def pkcs12(key: str, cert: str, ca: str, out: str, *, name: str, legacy: bool = False) -> str:
    """``openssl pkcs12 -export``: key, certificate and CA chain in one password-protected file."""
    flavour = " -legacy" if legacy else ""
    return (
        f"openssl pkcs12 -export{flavour} -inkey {_q(key)} -in {_q(cert)} -certfile {_q(ca)}"
        f" -name {_q(name)} -out {_q(out)}"
    )


def revoke(cert: str, *, reason: str = "unspecified", config: str = "openssl.cnf") -> str:
    """``openssl ca -revoke``: mark a certificate revoked in the CA's database."""
    return f"openssl ca -config {_q(config)} -revoke {_q(cert)} -crl_reason {OPENSSL_REASONS[check_reason(reason)]}"


def gencrl(out: str, *, days: int = 30, config: str = "openssl.cnf") -> str:
    """``openssl ca -gencrl``: publish the list of revoked certificates."""
    return f"openssl ca -config {_q(config)} -gencrl -crldays {days} -out {_q(out)}"


def verify(
    cert: str, ca: str, *, purpose: str | None = None, crl: str | None = None, every_level: bool = False
) -> str:
    """``openssl verify``: check a certificate against the CA (and its CRL).

    ``every_level`` checks the CRL of each CA of a chain (``ca`` and ``crl`` then hold every level).
    """
    purposes = {"client": "sslclient", "server": "sslserver", None: None}
    parts = ["openssl verify", f"-CAfile {_q(ca)}"]
    if crl:
        parts.append(f"{'-crl_check_all' if every_level else '-crl_check'} -CRLfile {_q(crl)}")
    if purposes.get(purpose):
        parts.append(f"-purpose {purposes[purpose]}")
    parts.append(_q(cert))
    return " ".join(parts)


def show(cert: str) -> str:
    """``openssl x509 -text``: print what a certificate says."""
    return f"openssl x509 -in {_q(cert)} -noout -text"


def _q(value: str) -> str:
    return shlex.quote(str(value))
