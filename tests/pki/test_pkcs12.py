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


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _children(data: bytes) -> list[bytes]:
    """The encoded elements inside a DER SEQUENCE's content."""
    from kittylab.pki.pkcs12 import _element

    found, position = [], 0
    while position < len(data):
        _, _, _, after = _element(data, position, len(data))
        found.append(data[position:after])
        position = after
    return found


def with_mac_iterations(p12: bytes, iterations: int) -> bytes:
    """The same p12 with its MacData asking for ``iterations`` (the file a hostile sender makes)."""
    from kittylab.pki.pkcs12 import _element

    _, start, stop, _ = _element(p12, 0, len(p12))
    version, auth_safe, mac_data = _children(p12[start:stop])
    _, start, stop, _ = _element(mac_data, 0, len(mac_data))
    digest, salt, _ = _children(mac_data[start:stop])
    count = _der(0x02, iterations.to_bytes((iterations.bit_length() + 8) // 8, "big"))
    return _der(0x30, version + auth_safe + _der(0x30, digest + salt + count))


@pytest.mark.parametrize("legacy", [False, True])
def test_a_p12_asking_for_billions_of_iterations_is_refused_before_deriving(legacy):
    """Issue 11: 2^31-1 MAC iterations made load_p12, fetch and import hang for minutes."""
    import time

    data = export_p12(KEY, CERT, password="kitty-pass", legacy=legacy)
    assert load_p12(with_mac_iterations(data, 2048), password="kitty-pass").certificate == CERT  # the surgery is sound
    started = time.monotonic()
    with pytest.raises(KittylabError, match="asks for 2,147,483,647 key-derivation iterations"):
        load_p12(with_mac_iterations(data, 2**31 - 1), password="kitty-pass")
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("tail", [b"\x00", b"\x30", b"\x30\x85", b"\x04\x05ab"])
def test_what_the_iteration_walk_cannot_follow_is_refused(tail):
    """A crafted 2^31-1-iteration p12 with a trailing byte made the walk give up and let it through (a hang)."""
    import time

    data = with_mac_iterations(export_p12(KEY, CERT, password="kitty-pass"), 2**31 - 1) + tail
    started = time.monotonic()
    with pytest.raises(KittylabError, match="^not a PKCS#12 file, or it is damaged .*nothing was derived$"):
        load_p12(data, password="kitty-pass")
    assert time.monotonic() - started < 1


def test_every_iteration_count_is_found():
    """The key bag's and the certificate bag's PBE iterations and the MAC's, in kittylab's and OpenSSL's p12."""
    from kittylab.pki.pkcs12 import _iteration_counts

    assert sorted(_iteration_counts(export_p12(KEY, CERT, password="pw", kdf_rounds=30_000))) == [2048, 30_000, 30_000]
    assert _iteration_counts(export_p12(KEY, CERT, password="pw", legacy=True)) == [2048, 2048, 2048]
