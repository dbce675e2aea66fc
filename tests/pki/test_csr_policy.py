"""CSR policy: whatever a CSR asks for, the profile decides (issue 7).

A CSR asking for CA:TRUE, keyCertSign, a path length, name constraints, an EKU the profile does
not allow, or a name a server profile would not accept never gets it: the certificate is a
leaf with the profile's extensions only, or the request is refused with a one-line error.
"""

from __future__ import annotations

import ipaddress
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from kittylab import KittylabError, generate_key, make_csr
from kittylab.pki.profiles import PROFILES

KEY = generate_key("p256")
#: Every extension a leaf may carry; the profile picks from these.
LEAF_EXTENSIONS = {
    x509.BasicConstraints, x509.KeyUsage, x509.ExtendedKeyUsage, x509.SubjectKeyIdentifier,
    x509.AuthorityKeyIdentifier, x509.SubjectAlternativeName, x509.AuthorityInformationAccess,
    x509.CRLDistributionPoints,
}


def greedy_csr(*extensions: tuple[x509.ExtensionType, bool], cn: str = "greedy",
               sans: list[x509.GeneralName] | None = None) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    names = sans if sans is not None else [x509.DNSName("greedy.kitty.test")]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(KEY, hashes.SHA256())


ALL_USAGES = x509.KeyUsage(
    digital_signature=True, content_commitment=True, key_encipherment=True, data_encipherment=True,
    key_agreement=True, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)
GREEDY = [
    (x509.BasicConstraints(ca=True, path_length=5), True),
    (ALL_USAGES, True),
    (x509.NameConstraints(permitted_subtrees=[x509.DNSName("kitty.test")], excluded_subtrees=None), True),
    (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
                            ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
                            ExtendedKeyUsageOID.OCSP_SIGNING]), False),
    (x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None), True),
    (x509.InhibitAnyPolicy(0), True),
    (x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"), False),
]


def extension(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


@pytest.mark.parametrize("profile", ["server", "client"])
def test_a_greedy_csr_gets_a_plain_leaf(workspace, profile):
    issued = workspace.sign_csr(greedy_csr(*GREEDY), profile=profile)
    cert = issued.certificate
    constraints = extension(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False and constraints.value.path_length is None
    usage = extension(cert, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.crl_sign
    assert not usage.content_commitment and not usage.data_encipherment and not usage.key_agreement
    assert list(extension(cert, x509.ExtendedKeyUsage).value) == [PROFILES[profile].extended_key_usage]
    assert {type(e.value) for e in cert.extensions} <= LEAF_EXTENSIONS
    for kind in (x509.NameConstraints, x509.PolicyConstraints, x509.InhibitAnyPolicy):
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(kind)
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ObjectIdentifier("1.3.6.1.4.1.55555.1"))


@pytest.mark.parametrize("greed", GREEDY[:4], ids=["CA:TRUE+pathlen", "keyCertSign", "nameConstraints", "EKU"])
def test_each_request_alone_is_ignored(ca_only, greed):
    cert = ca_only.sign(greedy_csr(greed), profile="client")
    assert extension(cert, x509.BasicConstraints).value == x509.BasicConstraints(ca=False, path_length=None)
    assert not extension(cert, x509.KeyUsage).value.key_cert_sign
    assert list(extension(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.NameConstraints)


@pytest.fixture
def ca_only(workspace):
    return workspace.ca


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([x509.RFC822Name("eager@kitty.test")], "cannot carry the name email:"),
        ([x509.UniformResourceIdentifier("https://kitty.test/")], "cannot carry the name URI:"),
        ([x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))], "cannot carry"),
        ([x509.RegisteredID(ObjectIdentifier("1.2.3.4"))], "cannot carry"),
        ([x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x01a")], "cannot carry"),
        ([x509.DNSName("bad_name.kitty.test")], "bad DNS name"),
        ([x509.DNSName("*.test")], "too broad"),
        ([x509.DNSName("www.*.kitty.test")], "bad DNS name"),
        ([x509.DNSName("localhost\x00.evil.test")], "bad DNS name"),
        ([], "needs at least one DNS name or IP"),
    ],
    ids=["email", "uri", "dirname", "rid", "othername", "underscore", "broad-wildcard", "inner-wildcard", "nul",
         "none"],
)
def test_names_a_server_profile_would_not_accept(workspace, names, message):
    with pytest.raises(KittylabError, match=message):
        workspace.sign_csr(greedy_csr(sans=names), profile="server")
    assert workspace.records(include_ca=False) == []


def test_a_server_may_have_a_wildcard_and_a_client_may_not(workspace):
    csr = greedy_csr(sans=[x509.DNSName("*.kitty.test")])
    assert workspace.sign_csr(csr, profile="server", name="wild").certificate
    with pytest.raises(KittylabError, match="wildcard"):
        workspace.sign_csr(csr, profile="client", name="wild-client")
    with pytest.raises(KittylabError, match="cannot carry the name IP"):
        workspace.sign_csr(greedy_csr(sans=[x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]), profile="client")


def test_openssl_refuses_to_chain_through_the_leaf(workspace, require, tmp_path):
    """The proof that matters: OpenSSL does not accept a certificate the greedy leaf signed."""
    openssl = require("openssl")
    leaf = workspace.sign_csr(greedy_csr(*GREEDY), profile="client")
    grandchild_key = generate_key("p256")
    grandchild = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "grandchild")]))
        .issuer_name(leaf.certificate.subject)
        .public_key(grandchild_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf.certificate.not_valid_before_utc)
        .not_valid_after(leaf.certificate.not_valid_after_utc)
        .sign(KEY, hashes.SHA256())
    )
    (tmp_path / "grandchild.crt").write_bytes(grandchild.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(
        [openssl, "verify", "-CAfile", str(workspace.ca_certificate_path), "-untrusted", str(leaf.files["crt"]),
         str(tmp_path / "grandchild.crt")], capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "invalid CA certificate" in done.stdout + done.stderr


def test_the_subject_is_checked_too(workspace):
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "x" * 64), x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, " padded "),
    ])).sign(KEY, hashes.SHA256())
    with pytest.raises(KittylabError, match="leading or trailing spaces"):
        workspace.sign_csr(csr, profile="client", name="padded")


def test_extra_names_from_the_ca_are_checked_like_the_csrs(workspace):
    with pytest.raises(KittylabError, match="bad DNS name"):
        workspace.sign_csr(make_csr(KEY, "s"), profile="server", dns=["bad_name"])
