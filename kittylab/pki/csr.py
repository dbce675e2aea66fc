"""Certificate signing requests: what a server or client sends to the CA to ask for a certificate."""

from __future__ import annotations

import os
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from ..errors import KittylabError
from .files import load_pem_or_der, write_atomically
from .keys import PrivateKey, check_key_strength, signature_hash
from .names import AltNames, Subject, make_sans, subject_of


def make_csr(key: PrivateKey, subject: Subject | str, **names: Iterable[str]) -> x509.CertificateSigningRequest:
    """Build and sign a CSR for ``subject`` with ``key``, as ``openssl req -new`` does.

    The subject alternative names, ``dns``, ``ip``, ``email`` and ``uri`` (the fields of
    :class:`~kittylab.pki.names.AltNames`), are validated first. An email address in the subject
    is asked for as an alternative name too, as the CA will grant it (RFC 5280, 4.1.2.6): the
    request shows what the certificate will say.
    """
    check_key_strength(key)
    subject = subject_of(subject)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject.to_name())
    if subject.email:  # each name once: make_sans drops the repeat
        names = {**names, "email": (*AltNames(email=names.get("email", ())).email, subject.email)}
    sans = make_sans(**names)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, signature_hash(key))


#: What cryptography raises for bytes that are not a well-formed CSR or certificate.


def load_csr(source: bytes | str | os.PathLike) -> x509.CertificateSigningRequest:
    """Load a CSR from PEM or DER (file, bytes or PEM text) and check its signature.

    A file that is no CSR, or one whose content was changed after it was signed, is refused.
    """
    csr = load_pem_or_der(source, what="CSR", label="CERTIFICATE REQUEST", pem=x509.load_pem_x509_csr,
                          der=x509.load_der_x509_csr, description="a certificate signing request",
                          parse=lambda csr: (csr.subject, csr.extensions))
    return check_csr_signature(csr)


def check_csr_signature(csr: x509.CertificateSigningRequest) -> x509.CertificateSigningRequest:
    """Refuse a CSR signed with a broken hash (SHA-1, MD5), or whose signature does not verify."""
    try:
        algorithm = csr.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if isinstance(algorithm, (hashes.SHA1, hashes.MD5)):
        raise KittylabError(
            f"the CSR is signed with {algorithm.name.upper()}, which is broken:"
            " make it again with SHA-256 (openssl req -sha256)"
        )
    try:
        valid = csr.is_signature_valid
    except Exception:  # cryptography raises several types for unsupported or broken keys
        valid = False
    if not valid:
        raise KittylabError("the CSR's signature does not match its content: it was damaged or tampered with")
    return csr


def save_csr(csr: x509.CertificateSigningRequest, path: str | os.PathLike) -> None:
    """Write a CSR as PEM, as ``openssl req -new -out`` does."""
    write_atomically(path, csr.public_bytes(serialization.Encoding.PEM))
