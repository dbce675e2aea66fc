"""Keys: the six kinds, PEM files written 0600, encrypted or not, and loading what others made."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from kittylab import KEY_KINDS, KittylabError, generate_key, load_key, save_key
from kittylab.pki.keys import (
    check_key_strength,
    describe_key,
    key_kind,
    key_to_pem,
    signature_hash,
)

P256 = generate_key("p256")
passphrases = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "p384", "ed25519"])
def test_generate_save_load(kind, tmp_path):
    key = generate_key(kind)
    assert key_kind(key) == kind
    path = tmp_path / f"{kind}.key"
    save_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()
    assert load_key(path).public_key() == key.public_key()


def test_every_kind_is_named_and_described():
    assert set(KEY_KINDS) == {"rsa2048", "rsa3072", "rsa4096", "p256", "p384", "ed25519"}
    assert describe_key(P256) == "ECDSA P-256"
    assert describe_key(generate_key("ed25519")) == "Ed25519"


def test_unknown_kind():
    with pytest.raises(KittylabError, match="unknown key type 'rsa1024'"):
        generate_key("rsa1024")


def test_encrypted_key(tmp_path):
    path = tmp_path / "ca.key"
    save_key(P256, path, passphrase="kitty secret")
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path, passphrase="kitty secret").public_key() == P256.public_key()
    with pytest.raises(KittylabError, match="encrypted: give its passphrase"):
        load_key(path)
    with pytest.raises(KittylabError, match="wrong passphrase"):
        load_key(path, passphrase="wrong")


def test_unneeded_passphrase_is_ignored():
    assert load_key(key_to_pem(P256), passphrase="unused").public_key() == P256.public_key()


def test_der_and_pem_text():
    der = P256.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert load_key(der).public_key() == P256.public_key()
    assert load_key(key_to_pem(P256).decode()).public_key() == P256.public_key()


def test_what_is_not_a_private_key(tmp_path):
    public = P256.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KittylabError, match="public key or certificate, not a private key"):
        load_key(public)
    with pytest.raises(KittylabError, match="not a private key"):
        load_key(b"hello")
    with pytest.raises(KittylabError, match="not found"):
        load_key(tmp_path / "missing.key")


def test_strength():
    with pytest.raises(KittylabError, match="1024 bits is too weak"):
        check_key_strength(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(KittylabError, match="not accepted"):
        check_key_strength(ec.generate_private_key(ec.SECP192R1()))
    with pytest.raises(KittylabError, match="DSAPublicKey keys are not supported"):
        check_key_strength(dsa.generate_private_key(key_size=1024))
    check_key_strength(P256)


def test_signature_hash_by_key():
    assert signature_hash(P256).name == "sha256"
    assert signature_hash(generate_key("p384")).name == "sha384"
    assert signature_hash(generate_key("ed25519")) is None


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["p256", "p384", "ed25519"]), passphrase=st.one_of(st.none(), passphrases))
def test_key_round_trip(kind, passphrase):
    key = generate_key(kind)
    pem = key_to_pem(key, passphrase=passphrase)
    assert (b"ENCRYPTED" in pem) == bool(passphrase)
    assert load_key(pem, passphrase=passphrase).public_key() == key.public_key()
