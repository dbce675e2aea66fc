"""Private keys: the six kinds kittylab makes, and writing and reading them as PEM."""

from __future__ import annotations

import os
from typing import Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..errors import KittylabError, check_choice
from .files import password_bytes, read_input, write_atomically

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey]

#: The key kinds, by the names the command line uses, with the trade-off in one line.
KEY_KINDS: dict[str, str] = {
    "rsa2048": "RSA 2048: works everywhere, the article's choice for the server and client",
    "rsa3072": "RSA 3072: stronger RSA, slower to make and to sign with",
    "rsa4096": "RSA 4096: the article's CA key, slow to make (about half a second)",
    "p256": "ECDSA P-256: small and fast, supported by every current browser and server",
    "p384": "ECDSA P-384: a stronger curve, still fast",
    "ed25519": "Ed25519: modern and fastest, but browsers do not accept it for TLS yet",
}
_CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1}
MIN_RSA_BITS = 2048


def generate_key(kind: str = "rsa2048") -> PrivateKey:
    """Make a new private key of ``kind`` (one of :data:`KEY_KINDS`)."""
    check_choice(kind, KEY_KINDS, "key type")
    if kind in _CURVES:
        return ec.generate_private_key(_CURVES[kind]())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))


def key_kind(key: PrivateKey | PublicKey) -> str:
    """The kind name of a key (``rsa2048``, ``p256``, ...), for display and OpenSSL commands."""
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, rsa.RSAPublicKey):
        return f"rsa{public.key_size}"
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}.get(
            public.curve.name, public.curve.name
        )
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "ed25519"
    return type(public).__name__


def describe_key(key: PrivateKey | PublicKey) -> str:
    """A short human name for a key's type and size, such as ``RSA 2048`` or ``ECDSA P-256``."""
    kind = key_kind(key)
    if kind.startswith("rsa"):
        return f"RSA {kind[3:]}"
    if kind.startswith("p") and kind[1:].isdigit():
        return f"ECDSA P-{kind[1:]}"
    return {"ed25519": "Ed25519"}.get(kind, kind)


def check_key_strength(key: PrivateKey | PublicKey) -> None:
    """Refuse keys too weak to certify: RSA below 2048 bits and keys of unsupported types."""
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise KittylabError(
                f"RSA key of {public.key_size} bits is too weak: use at least {MIN_RSA_BITS} bits"
            )
        return
    if isinstance(public, ec.EllipticCurvePublicKey):
        if public.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise KittylabError(f"elliptic curve {public.curve.name} is not accepted: use P-256 or P-384")
        return
    if isinstance(public, ed25519.Ed25519PublicKey):
        return
    raise KittylabError(f"{type(public).__name__} keys are not supported: use RSA, ECDSA or Ed25519")


def signature_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    """The hash to sign with: SHA-384 for P-384, none for Ed25519, SHA-256 otherwise."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


#: The shortest passphrase a CA key is encrypted with, as ``openssl genpkey -aes256`` and easy-rsa require.
MIN_PASSPHRASE = 4
#: From this length on a passphrase is not called weak.
GOOD_PASSPHRASE = 8


def check_new_passphrase(passphrase: str | None) -> KittylabError | None:
    """Refuse a new CA key passphrase shorter than :data:`MIN_PASSPHRASE`; return a warning (an error not
    raised: its remedy is ``fix="passphrase"``) when it is shorter than :data:`GOOD_PASSPHRASE` (None
    otherwise, and for no passphrase).

    Whoever copies the encrypted key file (a backup, a stolen disk) can try passphrases offline, as fast
    as they like: the key derivation slows each guess, but every passphrase of a few characters is
    tried within hours."""
    if passphrase is None:
        return None
    if len(passphrase) < MIN_PASSPHRASE:
        raise KittylabError(f"the passphrase is too short: a CA key's needs at least {MIN_PASSPHRASE} characters, as"
                            f" OpenSSL and easy-rsa require ({GOOD_PASSPHRASE} or more is better: anyone with a copy of"
                            " the key file can guess a short one offline)")
    if len(passphrase) < GOOD_PASSPHRASE:
        return KittylabError(f"the passphrase has only {len(passphrase)} characters: anyone with a copy of the key"
                             f" file (a backup) can guess it offline; {GOOD_PASSPHRASE} or more is better: change it"
                             " for a longer one", fix="passphrase")
    return None


def key_to_pem(key: PrivateKey, *, passphrase: str | bytes | None = None) -> bytes:
    """Serialize a private key as PKCS#8 PEM, encrypted (AES-256) when a passphrase is given."""
    if passphrase:
        secret = password_bytes(passphrase)
        encryption: serialization.KeySerializationEncryption = serialization.BestAvailableEncryption(secret)
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def save_key(key: PrivateKey, path: str | os.PathLike, *, passphrase: str | bytes | None = None) -> None:
    """Write a private key as PEM with mode 0600 from the start (as ``openssl genrsa -out`` does)."""
    write_atomically(path, key_to_pem(key, passphrase=passphrase), secret=True)


def load_key(source: bytes | str | os.PathLike, *, passphrase: str | bytes | None = None) -> PrivateKey:
    """Load a private key from a PEM or DER file or bytes, also those made by ``openssl genrsa``.

    A missing, wrong or unneeded passphrase, a public key or a file that holds no key at all
    each gives a one-line :class:`KittylabError`.
    """
    data = read_input(source, "key")
    secret = password_bytes(passphrase) if passphrase is not None else None
    loader = serialization.load_pem_private_key if b"-----BEGIN" in data else serialization.load_der_private_key
    try:
        key = loader(data, password=secret)
    except TypeError as exc:
        if "not encrypted" in str(exc):
            key = loader(data, password=None)
        else:
            raise KittylabError("the key is encrypted: give its passphrase") from None
    except ValueError as exc:
        if b"PUBLIC KEY" in data or b"CERTIFICATE" in data:
            raise KittylabError("this is a public key or certificate, not a private key") from None
        if b"ENCRYPTED" in data or "decrypt" in str(exc).lower() or "password" in str(exc).lower():
            raise KittylabError("wrong passphrase for the key") from None
        raise KittylabError("not a private key: expected a PEM or DER private key") from None
    except UnsupportedAlgorithm:
        raise KittylabError("the key uses an algorithm kittylab does not support") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise KittylabError(f"{type(key).__name__} keys are not supported: use RSA, ECDSA or Ed25519")
    return key
