"""The OpenSSL commands that make what kittylab makes, and the article's own commands beside them.

kittylab's certificates get their extensions from a profile, never from the request. The OpenSSL
commands here say so in full: ``-addext`` names every extension kittylab sets, and
``-copy_extensions none`` keeps the request's own wishes out. Run in a folder holding the files
they name, they give certificates with the same basic constraints, key usage, extended key usage,
name constraints and alternative names as kittylab's (``tests/interop/test_openssl_commands.py``
runs every one the notebooks and the command line show). Signing uses ``openssl req -CA`` (OpenSSL
3.0 or newer): it needs no CA database, and picks a random 159-bit serial as kittylab does.

The article types different commands (``openssl ca -extensions server_cert``): they depend on an
``openssl.cnf`` that defines those sections, and the stock one does not define ``server_cert`` and
gives ``usr_cert`` no clientAuth. :data:`ARTICLE` holds them, for the notebooks to show beside
these; ``kittylab export-openssl-db`` writes an ``openssl.cnf`` that makes them work.
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import KittylabError, check_choice
from .ca import CA_DAYS, INTERMEDIATE_DAYS, LEAF_DAYS
from .crl import OPENSSL_REASONS, check_reason
from .extensions import extension_value
from .names import Subject, describe_san, subject_of

#: The ``openssl.cnf`` sections the article names for each profile (``kittylab export-openssl-db``
#: writes them; ``server_cert_ec`` is the server section for a key that is not RSA).
EXTENSION_SECTIONS = {"server": "server_cert", "client": "usr_cert"}
_EKU = {"server": "serverAuth", "client": "clientAuth"}


# -- the extensions, as OpenSSL spells them -----------------------------------------------------


def ca_extensions(*, path_length: int | None = None, name_constraints: x509.NameConstraints | None = None) -> list[str]:
    """A kittylab CA's extensions as ``name=value`` lines (for ``-addext`` or an ``openssl.cnf`` section).

    Digital Signature is there besides Certificate Sign and CRL Sign because the CA also signs OCSP answers.
    """
    lines = [
        "basicConstraints=critical,CA:TRUE" + (f",pathlen:{path_length}" if path_length is not None else ""),
        "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
    ]
    if name_constraints is not None:
        lines.append("nameConstraints=critical," + ",".join(_subtrees(name_constraints)))
    return lines


def leaf_extensions(profile: str, *, rsa: bool, sans: Iterable[str] = ()) -> list[str]:
    """A leaf's extensions as kittylab's profile ``profile`` sets them, as ``name=value`` lines.

    keyEncipherment only for an RSA server key (the TLS 1.2 RSA key exchange encrypts to it);
    RFC 8813 forbids it for ECDSA keys. ``sans`` in OpenSSL's form: ``DNS:x``, ``IP:y``, ``email:z``.
    """
    check_choice(profile, _EKU, "profile")
    usage = "digitalSignature,keyEncipherment" if rsa and profile == "server" else "digitalSignature"
    lines = ["basicConstraints=critical,CA:FALSE", f"keyUsage=critical,{usage}", f"extendedKeyUsage={_EKU[profile]}"]
    names = list(sans)
    if names:
        lines.append("subjectAltName=" + ",".join(names))
    return lines


def sans_of(certificate: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    """Its alternative names in OpenSSL's form (``DNS:localhost``, ``IP:127.0.0.1``, ``email:...``)."""
    return [describe_san(name) for name in extension_value(certificate, x509.SubjectAlternativeName) or []]


def _subtrees(constraints: x509.NameConstraints) -> list[str]:
    subtrees = []
    for label, trees in (("permitted", constraints.permitted_subtrees), ("excluded", constraints.excluded_subtrees)):
        for tree in trees or ():
            if isinstance(tree, x509.IPAddress) and isinstance(tree.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                subtrees.append(f"{label};IP:{tree.value.network_address}/{tree.value.netmask}")
            else:
                subtrees.append(f"{label};{describe_san(tree)}")
    return subtrees


def _addext(lines: Iterable[str]) -> str:
    return "".join(f" -addext {_q(line)}" for line in lines)


# -- the commands ---------------------------------------------------------------------------------


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


def self_signed_ca(
    key: str,
    out: str,
    subject: Subject | str,
    *,
    days: int = CA_DAYS,
    path_length: int | None = None,
    name_constraints: x509.NameConstraints | None = None,
) -> str:
    """``openssl req -x509``: the CA signs its own certificate, with kittylab's CA extensions."""
    lines = ca_extensions(path_length=path_length, name_constraints=name_constraints)
    return (
        f"openssl req -x509 -new -key {_q(key)} -sha256 -days {days} -subj {_q(subject_of(subject).openssl())}"
        f"{_addext(lines)} -out {_q(out)}"
    )


def csr(key: str, out: str, subject: Subject | str, *, sans: Iterable[str] = ()) -> str:
    """``openssl req -new``: a request for ``subject``, SANs given as ``DNS:x``, ``IP:y``, ..."""
    names = list(sans)
    addext = _addext(["subjectAltName=" + ",".join(names)]) if names else ""
    return f"openssl req -new -key {_q(key)} -subj {_q(subject_of(subject).openssl())}{addext} -out {_q(out)}"


def sign(
    csr_file: str,
    out: str,
    *,
    profile: str,
    ca_cert: str,
    ca_key: str,
    rsa: bool,
    sans: Iterable[str] = (),
    days: int = LEAF_DAYS,
) -> str:
    """``openssl req -CA``: the CA signs a request, every extension from the profile, none from the request.

    ``sans`` are the names kittylab checked and kept, ``rsa`` whether the request's key is RSA.
    """
    return _signed_by_ca(csr_file, out, ca_cert, ca_key, days, leaf_extensions(profile, rsa=rsa, sans=sans))


def sign_intermediate(
    csr_file: str,
    out: str,
    *,
    ca_cert: str,
    ca_key: str,
    days: int = INTERMEDIATE_DAYS,
    path_length: int | None = None,
    name_constraints: x509.NameConstraints | None = None,
) -> str:
    """``openssl req -CA``: the parent CA signs an issuing CA's request, with its path length and name constraints."""
    extensions = ca_extensions(path_length=path_length, name_constraints=name_constraints)
    return _signed_by_ca(csr_file, out, ca_cert, ca_key, days, extensions)


def _signed_by_ca(csr_file: str, out: str, ca_cert: str, ca_key: str, days: int, extensions: list[str]) -> str:
    """``openssl req -CA`` with exactly ``extensions``: ``-copy_extensions none`` leaves the request's own out."""
    return (
        f"openssl req -in {_q(csr_file)} -CA {_q(ca_cert)} -CAkey {_q(ca_key)} -days {days} -sha256"
        f" -copy_extensions none{_addext(extensions)} -out {_q(out)}"
    )


def reproduce(certificate: x509.Certificate, *, csr_file: str, out: str, ca_cert: str, ca_key: str) -> str:
    """The ``openssl req -CA`` command that signs ``csr_file`` into a certificate like ``certificate``.

    Read from the certificate itself: a CA's path length and name constraints, a leaf's profile
    (its extended key usage), its key type and its alternative names, and its lifetime in days.
    """
    days = (certificate.not_valid_after_utc - certificate.not_valid_before_utc).days
    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    if basic.ca:
        constraints = extension_value(certificate, x509.NameConstraints)
        return sign_intermediate(csr_file, out, ca_cert=ca_cert, ca_key=ca_key, days=days,
                                 path_length=basic.path_length, name_constraints=constraints)
    usages = extension_value(certificate, x509.ExtendedKeyUsage) or []
    profile = "server" if x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usages else "client"
    return sign(csr_file, out, profile=profile, ca_cert=ca_cert, ca_key=ca_key,
                rsa=isinstance(certificate.public_key(), rsa.RSAPublicKey), sans=sans_of(certificate), days=days)


def pkcs12(key: str, cert: str, ca: str, out: str, *, name: str, legacy: bool = False) -> str:
    """``openssl pkcs12 -export``: key, certificate and CA chain in one password-protected file.

    The legacy flavour is kittylab's: 3DES for key and certificates and a SHA-1 MAC, the one the
    macOS and iOS keychains import (``-legacy`` alone would encrypt the certificates with 40-bit RC2).
    """
    flavour = " -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1" if legacy else ""
    return (
        f"openssl pkcs12 -export{flavour} -inkey {_q(key)} -in {_q(cert)} -certfile {_q(ca)}"
        f" -name {_q(name)} -out {_q(out)}"
    )


def revoke(cert: str, *, reason: str = "unspecified", config: str = "openssl.cnf") -> str:
    """``openssl ca -revoke``: mark a certificate revoked in the CA's database (``kittylab export-openssl-db``)."""
    return f"openssl ca -config {_q(config)} -revoke {_q(cert)} -crl_reason {OPENSSL_REASONS[check_reason(reason)]}"


def gencrl(out: str, *, days: int = 30, config: str = "openssl.cnf") -> str:
    """``openssl ca -gencrl``: publish the list of revoked certificates (``kittylab export-openssl-db``)."""
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


# -- the article's commands -------------------------------------------------------------------------


def article_self_signed_ca(key: str, out: str, subject: Subject | str, *, days: int = CA_DAYS) -> str:
    """The article's step 2: the stock ``v3_ca`` section, which sets no key usage."""
    return (
        f"openssl req -x509 -new -key {_q(key)} -sha256 -days {days} -extensions v3_ca"
        f" -subj {_q(subject_of(subject).openssl())} -out {_q(out)}"
    )


def article_sign(csr_file: str, out: str, *, profile: str, days: int = LEAF_DAYS, config: str = "openssl.cnf") -> str:
    """The article's steps 7 and 13: ``openssl ca`` with a section of an ``openssl.cnf``."""
    check_choice(profile, EXTENSION_SECTIONS, "profile")
    return (
        f"openssl ca -config {_q(config)} -extensions {EXTENSION_SECTIONS[profile]} -days {days}"
        f" -notext -md sha256 -in {_q(csr_file)} -out {_q(out)}"
    )


def _q(value: str) -> str:
    return shlex.quote(str(value))
