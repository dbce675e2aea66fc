"""The CA: a root as `openssl req -x509 -extensions v3_ca` makes it, signing by profile, and CRLs."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from kittylab import (
    CertificateAuthority,
    KittylabError,
    Revocation,
    generate_key,
    load_certificate,
    make_csr,
)
from kittylab.pki.ca import check_days
from kittylab.pki.keys import key_to_pem


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")


def ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


def test_rsa4096_ca_with_article_defaults():
    """The article's CA: RSA 4096, 7300 days (the one slow test of the CA, about a second)."""
    ca = CertificateAuthority.create()
    cert = ca.certificate
    assert ca.key.key_size == 4096
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=7300)
    assert ca.name == "kitty-ca" and cert.subject == cert.issuer
    assert cert.signature_hash_algorithm.name == "sha256"


def test_ca_extensions_as_v3_ca(ca):
    cert = ca.certificate
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length is None
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(ca.key.public_key())
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    cert.verify_directly_issued_by(cert)


def test_path_length():
    ca = CertificateAuthority.create("root", key="p256", path_length=0)
    assert ext(ca.certificate, x509.BasicConstraints).value.path_length == 0


@pytest.mark.parametrize("profile", ["server", "client"])
@pytest.mark.parametrize("kind", ["p256", "rsa2048"])
def test_sign_by_profile(ca, profile, kind):
    key = generate_key(kind)
    csr = make_csr(key, "picture-server", dns=["localhost"] if profile == "server" else [])
    cert = ca.sign(csr, profile=profile)
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(ca.certificate)
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert usage.value.key_encipherment == (kind == "rsa2048" and profile == "server")
    eku = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}[profile]
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [eku]
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ext(
        ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=375, minutes=1)


def test_serials_are_random_and_at_least_64_bits(ca):
    key = generate_key("p256")
    serials = {ca.sign(make_csr(key, "c"), profile="client").serial_number for _ in range(20)}
    assert len(serials) == 20
    assert all(s.bit_length() > 64 for s in serials)


def test_server_needs_a_name_and_extra_names_are_added(ca):
    key = generate_key("p256")
    with pytest.raises(KittylabError, match="needs at least one DNS name or IP"):
        ca.sign(make_csr(key, "s"), profile="server")
    cert = ca.sign(make_csr(key, "s"), profile="server", dns=["localhost"], ip=["127.0.0.1"])
    names = ext(cert, x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["localhost", "127.0.0.1"]


def test_unknown_profile(ca):
    with pytest.raises(KittylabError, match="unknown profile 'ca'"):
        ca.sign(make_csr(generate_key("p256"), "x"), profile="ca")


def test_load_with_encrypted_key(ca, tmp_path):
    (tmp_path / "ca.crt").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.key").write_bytes(key_to_pem(ca.key, passphrase="meow"))
    loaded = CertificateAuthority.load(tmp_path / "ca.crt", tmp_path / "ca.key", passphrase="meow")
    assert loaded.certificate == ca.certificate
    with pytest.raises(KittylabError, match="wrong passphrase"):
        CertificateAuthority.load(tmp_path / "ca.crt", tmp_path / "ca.key", passphrase="woof")


def test_key_must_match_and_certificate_must_be_a_ca(ca):
    with pytest.raises(KittylabError, match="does not belong"):
        CertificateAuthority(ca.certificate, generate_key("p256"))
    key = generate_key("p256")
    leaf = ca.sign(make_csr(key, "c"), profile="client")
    with pytest.raises(KittylabError, match="not a CA certificate"):
        CertificateAuthority(leaf, key)


def test_crl(ca):
    now = dt.datetime(2030, 1, 2, tzinfo=dt.timezone.utc)
    crl = ca.build_crl([Revocation(5, now, "key-compromise"), Revocation(7, now)], number=3, next_update_days=2,
                       now=now)
    assert crl.is_signature_valid(ca.key.public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    assert crl.next_update_utc == now + dt.timedelta(days=2)
    assert crl.get_revoked_certificate_by_serial_number(5).extensions.get_extension_for_class(
        x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert len(crl.get_revoked_certificate_by_serial_number(7).extensions) == 0
    with pytest.raises(KittylabError, match="next update"):
        ca.build_crl([], number=1, next_update_days=0)
    with pytest.raises(KittylabError, match="unknown revocation reason"):
        ca.build_crl([Revocation(1, now, "lost")], number=1)


@pytest.mark.parametrize("days", [0, -1, 1.5, True, "10", 36501])
def test_check_days(days):
    with pytest.raises(KittylabError):
        check_days(days)


def test_load_certificate_forms(ca):
    pem = ca.certificate.public_bytes(serialization.Encoding.PEM)
    assert load_certificate(pem) == load_certificate(ca.certificate.public_bytes(serialization.Encoding.DER))
    for bad in (b"junk", b"-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL-----\n"):
        with pytest.raises(KittylabError, match="not a certificate"):
            load_certificate(bad)


@settings(max_examples=30, deadline=None)
@given(cn=st.from_regex(r"\A[a-z][a-z0-9-]{0,30}\Z"), profile=st.sampled_from(["client", "server"]),
       days=st.integers(min_value=1, max_value=3650), der=st.booleans())
def test_certificate_round_trip(ca, cn, profile, days, der):
    key = generate_key("p256")
    cert = ca.sign(make_csr(key, cn, dns=["localhost"]), profile=profile, days=days)
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    loaded = load_certificate(cert.public_bytes(encoding))
    assert loaded == cert and loaded.public_key() == key.public_key()
    assert loaded.not_valid_after_utc - loaded.not_valid_before_utc == dt.timedelta(days=days, minutes=1)
