"""PKCS#12 (.p12) bundles: the client's key, certificate and CA chain in one password-protected file.

Two flavours: ``modern`` (AES-256-CBC, PBKDF2-SHA256, SHA-256 MAC) for current browsers and
OpenSSL 3, and ``legacy`` (3DES, SHA-1 MAC) for Apple keychains (macOS and iOS), Windows before
10 1709 and Android 13 and earlier (older Java; Java reads modern files since 8u301, 11.0.12 and 17).
"""

from __future__ import annotations

import os
import secrets
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12

from ..errors import KittylabError
from .files import password_bytes, read_input
from .keys import PrivateKey

#: PBKDF2 rounds per bag for the modern flavour: cryptography's own default.
MODERN_KDF_ROUNDS = 20000
#: Rounds for the legacy flavour, as OpenSSL's ``pkcs12 -export -certpbe PBE-SHA1-3DES ...`` uses.
LEGACY_KDF_ROUNDS = 2048


@dataclass(frozen=True)
class P12Contents:
    """What a p12 file holds."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate]
    friendly_name: str | None


def generate_password() -> str:
    """A strong random password for a p12 (about 120 bits), easy to type from a handout."""
    return "-".join(secrets.token_urlsafe(6).replace("_", "x").replace("-", "y") for _ in range(3))


def export_p12(
    key: PrivateKey,
    certificate: x509.Certificate,
    *,
    password: str,
    chain: list[x509.Certificate] = (),
    name: str | None = None,
    legacy: bool = False,
    kdf_rounds: int | None = None,
) -> bytes:
    """Bundle key, certificate and CA chain into PKCS#12 bytes, as ``openssl pkcs12 -export`` does."""
    if not password:
        raise KittylabError("a p12 needs a password: browsers and keychains refuse empty ones")
    if certificate.public_key() != key.public_key():
        raise KittylabError("the key does not belong to the certificate")
    if legacy:
        algorithm = pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC
        mac: hashes.HashAlgorithm = hashes.SHA1()
        rounds = kdf_rounds or LEGACY_KDF_ROUNDS
    else:
        algorithm = pkcs12.PBES.PBESv2SHA256AndAES256CBC
        mac = hashes.SHA256()
        rounds = kdf_rounds or MODERN_KDF_ROUNDS
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(rounds)
        .key_cert_algorithm(algorithm)
        .hmac_hash(mac)
        .build(_password(password))
    )
    label = name.encode() if name else None
    return pkcs12.serialize_key_and_certificates(label, key, certificate, list(chain) or None, encryption)


def load_p12(source: bytes | str | os.PathLike, *, password: str) -> P12Contents:
    """Open a p12 (either flavour); a wrong password or a damaged file is a one-line error."""
    data = read_input(source, "p12")
    _check_iterations(data)
    secret = _password(password) if password else None
    try:
        with warnings.catch_warnings():
            # p12 files from some tools are BER, not DER: cryptography reads them but warns (to stderr).
            warnings.simplefilter("ignore", UserWarning)
            bundle = pkcs12.load_pkcs12(data, secret)
    except ValueError as exc:
        text = str(exc).lower()
        if "invalid password" in text or "mac" in text or "password" in text:
            raise KittylabError("wrong password for the p12 file") from None
        raise KittylabError("not a PKCS#12 file, or it is damaged") from None
    if bundle.key is None or bundle.cert is None:
        raise KittylabError("the p12 file does not hold both a private key and a certificate")
    name = bundle.cert.friendly_name.decode(errors="replace") if bundle.cert.friendly_name else None
    return P12Contents(
        key=bundle.key,
        certificate=bundle.cert.certificate,
        chain=[c.certificate for c in bundle.additional_certs],
        friendly_name=name,
    )


def _password(password: str) -> bytes:
    """The p12 password as bytes; PKCS#12 cannot hold a NUL (and cryptography 50 panics on one)."""
    secret = password_bytes(password)
    if b"\x00" in secret:
        raise KittylabError("a p12 password cannot contain a NUL character")
    return secret


#: The most key-derivation or MAC iterations a p12 may ask for: OpenSSL writes 2,048, kittylab
#: 20,000, careful tools a few 100,000. A file asking for 2^31 would take minutes to open.
MAX_ITERATIONS = 1_000_000


def _check_iterations(data: bytes) -> None:
    """Refuse a p12 that asks for more iterations than :data:`MAX_ITERATIONS`, before deriving any key."""
    try:
        counts = _iteration_counts(data)
    except (ValueError, IndexError, RecursionError) as exc:
        # Fail closed: what this walk cannot follow is not handed to a key derivation it could not bound.
        raise KittylabError(f"not a PKCS#12 file, or it is damaged ({exc or 'truncated'}): nothing was derived") from None
    if counts and max(counts) > MAX_ITERATIONS:
        raise KittylabError(
            f"the p12 file asks for {max(counts):,} key-derivation iterations (at most {MAX_ITERATIONS:,}):"
            " opening it would take minutes; export it again with the usual settings"
        )


def _iteration_counts(data: bytes, start: int = 0, end: int | None = None, *, wrapped: bool = False,
                      depth: int = 0) -> list[int]:
    """Every iteration count in a PKCS#12 file: an INTEGER right after an OCTET STRING (a salt)
    in one structure, as in MacData, the PBE parameters and PBKDF2's parameters.

    Walks the DER (BER's indefinite lengths too) and the OCTET STRINGs that wrap content
    (``[0] EXPLICIT OCTET STRING`` of a ContentInfo); encrypted bytes are never parsed.
    """
    end = len(data) if end is None else end
    if depth > 40:
        raise ValueError("nested too deeply")
    counts, previous, position = [], None, start
    while position < end:
        tag, first, last, position = _element(data, position, end)
        if tag == 0x02 and previous == 0x04:
            counts.append(int.from_bytes(data[first:last], "big", signed=True))
        if tag & 0x20 and tag != 0x24:  # constructed: SEQUENCE, SET, a context tag
            counts += _iteration_counts(data, first, last, wrapped=tag == 0xA0, depth=depth + 1)
        elif tag in (0x04, 0x24) and wrapped:
            content = data[first:last] if tag == 0x04 else _octets(data, first, last)
            counts += _iteration_counts(content, depth=depth + 1)
        previous = 0x04 if tag == 0x24 else tag
    return counts


def _element(data: bytes, position: int, end: int) -> tuple[int, int, int, int]:
    """(tag, content start, content end, next position) of the DER/BER element at ``position``."""
    if position + 2 > end:
        raise ValueError("truncated")
    tag, length = data[position], data[position + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("a high tag number")
    position += 2
    if length == 0x80:  # BER's indefinite length: up to the end-of-contents octets
        if not tag & 0x20:
            raise ValueError("an indefinite primitive")
        cursor = position
        while data[cursor:cursor + 2] != b"\0\0":
            cursor = _element(data, cursor, end)[3]
        return tag, position, cursor, cursor + 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4 or position + size > end:
            raise ValueError("a bad length")
        length = int.from_bytes(data[position:position + size], "big")
        position += size
    if position + length > end:
        raise ValueError("truncated")
    return tag, position, position + length, position + length


def _octets(data: bytes, first: int, last: int) -> bytes:
    """The content of a constructed (BER) OCTET STRING, its pieces joined."""
    pieces, position = [], first
    while position < last:
        tag, start, stop, position = _element(data, position, last)
        pieces.append(data[start:stop] if tag == 0x04 else _octets(data, start, stop))
    return b"".join(pieces)
