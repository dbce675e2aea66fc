"""Interop with the real OpenSSL command line, both ways."""

from __future__ import annotations

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from support.system import PASSWORD

from kittylab import Subject, Workspace, load_csr, load_key


@pytest.fixture
def ossl(require):
    binary = require("openssl")

    def run(*args, cwd=None, check=True) -> subprocess.CompletedProcess:
        done = subprocess.run([binary, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return run


@pytest.mark.parametrize("algorithm", [["-newkey", "rsa:2048"], ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]])
def test_kittylab_signs_a_csr_made_by_openssl_req(workspace, ossl, tmp_path, algorithm):
    ossl("req", "-new", *algorithm, "-nodes", "-keyout", tmp_path / "s.key", "-subj", "/O=Elsewhere/CN=picture-server",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-out", tmp_path / "s.csr")
    issued = workspace.sign_csr(tmp_path / "s.csr", profile="server")
    assert issued.certificate.subject.rfc4514_string() == "CN=picture-server,O=Elsewhere"
    assert load_key(tmp_path / "s.key").public_key() == issued.certificate.public_key()
    done = ossl("verify", "-CAfile", workspace.ca_certificate_path, "-purpose", "sslserver", issued.files["crt"])
    assert ": OK" in done.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["genrsa", "-out", "{out}", "2048"],
        ["genrsa", "-traditional", "-out", "{out}", "2048"],
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "{out}"],
        ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "{out}"],
        ["genpkey", "-algorithm", "ed25519", "-out", "{out}"],
        ["genrsa", "-aes256", "-passout", "pass:kitty secret", "-out", "{out}", "2048"],
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-aes256", "-pass",
         "pass:kitty secret", "-out", "{out}"],
    ],
    ids=["genrsa", "genrsa-traditional", "genpkey-ec", "ecparam-sec1", "genpkey-ed25519", "genrsa-aes256",
         "genpkey-aes256"],
)
def test_kittylab_loads_keys_made_by_openssl(ossl, tmp_path, command):
    out = tmp_path / "k.pem"
    ossl(*[part.replace("{out}", str(out)) for part in command])
    encrypted = "-aes256" in command
    key = load_key(out, passphrase="kitty secret" if encrypted else None)
    public = ossl("pkey", "-in", out, "-pubout", *(["-passin", "pass:kitty secret"] if encrypted else [])).stdout
    assert public == key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def test_openssl_reads_kittylabs_encrypted_ca_key(tmp_path, ossl):
    with Workspace(tmp_path / "ws") as workspace:
        workspace.init_ca("kitty-ca", key="p256", passphrase="meow meow")
    ossl("pkey", "-in", tmp_path / "ws" / "kitty-ca.key", "-passin", "pass:meow meow", "-noout")
    assert ossl("pkey", "-in", tmp_path / "ws" / "kitty-ca.key", "-passin", "pass:woof", "-noout",
                check=False).returncode != 0


def test_openssl_verify_purposes(story, ossl):
    workspace, server, client = story
    ca, crl = workspace.ca_certificate_path, workspace.crl_path
    for purpose, path in (("sslclient", client.files["crt"]), ("sslserver", server.files["crt"])):
        done = ossl("verify", "-CAfile", ca, "-crl_check", "-CRLfile", crl, "-purpose", purpose, path)
        assert done.stdout.strip().endswith(": OK")
    wrong = ossl("verify", "-CAfile", ca, "-purpose", "sslclient", server.files["crt"], check=False)
    assert wrong.returncode != 0
    assert "error 26 " in wrong.stdout + wrong.stderr and "unsuitable certificate purpose" in wrong.stdout + wrong.stderr


def test_openssl_verify_crl_check_refuses_a_revoked_certificate(story, ossl):
    workspace, _, client = story
    workspace.revoke("eager-client", reason="key-compromise")
    done = ossl("verify", "-CAfile", workspace.ca_certificate_path, "-crl_check", "-CRLfile", workspace.crl_path,
                client.files["crt"], check=False)
    assert done.returncode == 2
    assert "error 23 " in done.stdout + done.stderr and "certificate revoked" in done.stdout + done.stderr
    crl_text = ossl("crl", "-in", workspace.crl_path, "-CAfile", workspace.ca_certificate_path, "-noout", "-text")
    assert "verify OK" in crl_text.stderr + crl_text.stdout
    assert f"Serial Number: {client.record.serial_hex}" in crl_text.stdout and "Key Compromise" in crl_text.stdout


@pytest.mark.parametrize("legacy", [False, True])
def test_openssl_pkcs12_info_reads_both_flavours(workspace, ossl, legacy):
    issued = workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password=PASSWORD,
                             legacy_p12=legacy)
    done = ossl("pkcs12", "-info", "-noout", "-in", issued.files["p12"], "-passin", f"pass:{PASSWORD}")
    text = done.stdout + done.stderr
    assert "MAC: sha1" in text if legacy else "MAC: sha256" in text
    assert ("pbeWithSHA1And3-KeyTripleDES-CBC" in text) == legacy
    assert ("AES-256-CBC" in text) == (not legacy)
    bad = ossl("pkcs12", "-info", "-noout", "-in", issued.files["p12"], "-passin", "pass:wrong", check=False)
    assert bad.returncode != 0


def test_the_ca_certificate_as_openssl_shows_it(workspace, ossl):
    text = ossl("x509", "-in", workspace.ca_certificate_path, "-noout", "-text").stdout
    assert "X509v3 Basic Constraints: critical\n                CA:TRUE" in text
    assert "X509v3 Key Usage: critical\n                Digital Signature, Certificate Sign, CRL Sign" in text
    assert "X509v3 Subject Key Identifier:" in text
    ski = workspace.ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ski.hex(":").upper() in text


def test_the_subj_form_means_the_same_to_openssl(ossl, tmp_path):
    """kittylab's ``/CN=...`` strings (shown beside each call) name what openssl req makes of them."""
    subject = Subject(cn="eager/client", o="Kitty \\ Inc", ou="A/B\\", c="DE", l="Köln")
    ossl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         tmp_path / "k.pem", "-subj", subject.openssl(), "-utf8", "-out", tmp_path / "x.csr")
    assert Subject.from_name(load_csr(tmp_path / "x.csr").subject) == subject
    assert Subject.parse(subject.openssl()) == subject
