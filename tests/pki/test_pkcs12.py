"""PKCS#12: both flavours, with chain and friendly name; wrong passwords and damaged files."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from hypothesis import given, settings
from hypothesis import strategies as st

from kittylab import (
    CertificateAuthority,
    KittylabError,
    export_p12,
    generate_key,
    load_p12,
    make_csr,
)
from kittylab.pki.pkcs12 import generate_password

CA = CertificateAuthority.create("kitty-ca", key="p256")
KEY = generate_key("p256")
CERT = CA.sign(make_csr(KEY, "eager-client"), profile="client")


@pytest.mark.parametrize("legacy", [False, True])
def test_round_trip_both_flavours(legacy):
    data = export_p12(KEY, CERT, password="kitty-pass", chain=[CA.certificate], name="eager-client", legacy=legacy)
    contents = load_p12(data, password="kitty-pass")
    assert contents.certificate == CERT and contents.chain == [CA.certificate]
    assert contents.key.public_key() == KEY.public_key()
    assert contents.friendly_name == "eager-client"


def test_flavours_use_the_promised_algorithms():
    """Modern is AES-256 (PBES2); legacy is 3DES with a SHA-1 MAC: look at the encoded algorithm OIDs."""
    aes256_cbc = bytes.fromhex("060960864801650304012a")  # OID 2.16.840.1.101.3.4.1.42
    pbe_sha1_3des = bytes.fromhex("060a2a864886f70d010c0103")  # OID 1.2.840.113549.1.12.1.3
    sha1, sha256 = bytes.fromhex("06052b0e03021a"), bytes.fromhex("0609608648016503040201")
    modern = export_p12(KEY, CERT, password="p")
    legacy = export_p12(KEY, CERT, password="p", legacy=True)
    assert aes256_cbc in modern and pbe_sha1_3des not in modern
    assert pbe_sha1_3des in legacy and aes256_cbc not in legacy
    assert sha256 in modern and sha1 not in modern  # the MAC
    assert sha1 in legacy


def test_wrong_password_and_damage():
    data = export_p12(KEY, CERT, password="right")
    with pytest.raises(KittylabError, match="wrong password"):
        load_p12(data, password="wrong")
    with pytest.raises(KittylabError, match="not a PKCS#12 file"):
        load_p12(b"\x30\x03\x02\x01\x03", password="right")


def test_refusals():
    with pytest.raises(KittylabError, match="needs a password"):
        export_p12(KEY, CERT, password="")
    with pytest.raises(KittylabError, match="cannot contain a NUL"):
        export_p12(KEY, CERT, password="a\x00b")
    with pytest.raises(KittylabError, match="cannot contain a NUL"):
        load_p12(export_p12(KEY, CERT, password="a"), password="a\x00")
    with pytest.raises(KittylabError, match="does not belong"):
        export_p12(generate_key("p256"), CERT, password="x")
    only_cert = pkcs12.serialize_key_and_certificates(None, None, CERT, None, BestAvailableEncryption(b"x"))
    with pytest.raises(KittylabError, match="does not hold both"):
        load_p12(only_cert, password="x")


def test_generated_passwords_are_strong_and_distinct():
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) >= 20 and p.count("-") == 2 for p in passwords)


@settings(max_examples=15, deadline=None)
@given(password=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        min_size=1, max_size=40), legacy=st.booleans())
def test_p12_round_trip(password, legacy):
    data = export_p12(KEY, CERT, password=password, legacy=legacy, kdf_rounds=1)
    assert load_p12(data, password=password).certificate == CERT
