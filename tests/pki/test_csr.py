"""CSRs: built with SANs, loaded from PEM or DER, their signature checked."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from kittylab import KittylabError, Subject, generate_key, load_csr, make_csr, save_csr

KEY = generate_key("p256")
label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")


def sans(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    return list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def test_make_csr_with_every_kind_of_san():
    csr = make_csr(KEY, "/C=DE/O=Kitty Inc/CN=picture-server", dns=["localhost"], ip=["127.0.0.1"],
                   email=["a@kitty.test"], uri=["https://kitty.test/"])
    assert csr.is_signature_valid
    assert Subject.from_name(csr.subject) == Subject(cn="picture-server", o="Kitty Inc", c="DE")
    assert [type(n).__name__ for n in sans(csr)] == ["DNSName", "IPAddress", "RFC822Name", "UniformResourceIdentifier"]


def test_no_san_extension_without_names():
    with pytest.raises(x509.ExtensionNotFound):
        make_csr(KEY, "eager-client").extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_bad_san_is_refused_before_signing():
    with pytest.raises(KittylabError, match="bad DNS name"):
        make_csr(KEY, "x", dns=["bad_name"])


def test_save_and_load_pem_der(tmp_path):
    csr = make_csr(KEY, "eager-client")
    save_csr(csr, tmp_path / "c.csr")
    assert load_csr(tmp_path / "c.csr") == csr
    assert load_csr(csr.public_bytes(serialization.Encoding.DER)) == csr
    assert load_csr(csr.public_bytes(serialization.Encoding.PEM).decode()) == csr


def test_tampered_csr_is_refused():
    der = bytearray(make_csr(KEY, "eager-client").public_bytes(serialization.Encoding.DER))
    position = der.index(b"eager-client")
    der[position] = ord("b")  # change the subject after signing
    with pytest.raises(KittylabError, match="tampered"):
        load_csr(bytes(der))


@pytest.mark.parametrize("data", [b"", b"junk", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_not_a_csr(data):
    with pytest.raises(KittylabError, match="not a certificate signing request"):
        load_csr(data)


@settings(max_examples=30, deadline=None)
@given(cn=st.text(alphabet="abcdefghij-", min_size=1, max_size=20).filter(lambda s: s.strip() == s),
       dns=st.lists(st.lists(label, min_size=1, max_size=3).map(".".join), max_size=3, unique=True),
       der=st.booleans())
def test_csr_round_trip(cn, dns, der):
    csr = make_csr(KEY, cn, dns=dns)
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    loaded = load_csr(csr.public_bytes(encoding))
    assert Subject.from_name(loaded.subject).cn == cn
    assert [n.value for n in (sans(loaded) if dns else [])] == dns


def test_an_email_in_the_subject_is_asked_for_as_an_alternative_name_too():
    """The form's Email field (notebook 04) ends up where the CA puts it: in the SAN, once."""
    from cryptography import x509

    from kittylab import Subject, generate_key, make_csr

    csr = make_csr(generate_key("p256"), Subject(cn="my-laptop", email="me@kitty.test"), email=["me@kitty.test"])
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.RFC822Name) == ["me@kitty.test"]
    plain = make_csr(generate_key("p256"), Subject(cn="my-laptop"))
    assert not [e for e in plain.extensions if isinstance(e.value, x509.SubjectAlternativeName)]
