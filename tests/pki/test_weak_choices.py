"""Weak choices are refused with a clear message (issue 7): RSA below 2048 bits, SHA-1 (and MD5)
signatures, validity beyond the CA's own, and a CA certificate that has expired."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from support.cli import run_cli, snapshot

from kittylab import (
    CertificateAuthority,
    KittylabError,
    Workspace,
    generate_key,
    make_csr,
)
from kittylab.pki.keys import key_to_pem

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def weak_rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture
def openssl_csr(require, tmp_path):
    """A CSR made by ``openssl req`` with the given digest and key size (cryptography refuses to make weak ones)."""
    openssl = require("openssl")

    def make(*, digest: str = "sha256", bits: int = 2048, cn: str = "weak-client"):
        key = tmp_path / f"{cn}.key"
        subprocess.run([openssl, "genrsa", "-out", str(key), str(bits)], check=True, capture_output=True)
        out = tmp_path / f"{cn}.csr"
        subprocess.run([openssl, "req", "-new", f"-{digest}", "-key", str(key), "-subj", f"/CN={cn}", "-out", str(out)],
                       check=True, capture_output=True)
        return out

    return make


# -- RSA below 2048 ---------------------------------------------------------------------------------


def test_rsa_below_2048_everywhere(workspace, weak_rsa):
    message = "RSA key of 1024 bits is too weak: use at least 2048 bits"
    with pytest.raises(KittylabError, match=message):
        make_csr(weak_rsa, "weak")
    with pytest.raises(KittylabError, match=message):
        workspace.issue("weak", profile="client", key=weak_rsa)
    with pytest.raises(KittylabError, match=message):
        CertificateAuthority.create("weak-ca", key=weak_rsa)
    with pytest.raises(KittylabError, match="unknown key type 'rsa1024'"):
        workspace.issue("weak", profile="client", key="rsa1024")
    with pytest.raises(KittylabError, match="not accepted"):
        workspace.issue("weak", profile="client", key=ec.generate_private_key(ec.SECP192R1()))
    assert workspace.records(include_ca=False) == []


def test_a_1024_bit_csr_from_openssl_is_refused(workspace, openssl_csr):
    before = snapshot(workspace.home)
    line = run_cli("sign", openssl_csr(bits=1024), "--profile", "client", home=workspace.home).assert_one_line_error()
    assert "1024 bits is too weak" in line
    assert snapshot(workspace.home) == before


def test_the_command_line_offers_no_weak_key(tmp_path):
    line = run_cli("issue", "client", "x", "--key", "rsa1024", home=tmp_path).assert_one_line_error()
    assert "invalid choice: 'rsa1024'" in line


# -- SHA-1 and MD5 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_broken_hashes_are_refused_by_name(workspace, openssl_csr, digest):
    csr = openssl_csr(digest=digest)
    with pytest.raises(KittylabError, match=f"signed with {digest.upper()}, which is broken: make it again with SHA-256"):
        workspace.sign_csr(csr, profile="client")
    line = run_cli("sign", csr, "--profile", "client", home=workspace.home).assert_one_line_error()
    assert f"signed with {digest.upper()}" in line
    assert workspace.records(include_ca=False) == []


def test_kittylab_itself_signs_with_sha256_or_better(story):
    workspace, server, client = story
    for cert in (workspace.ca.certificate, server.certificate, client.certificate):
        assert cert.signature_hash_algorithm.name in ("sha256", "sha384")
    p384 = workspace.issue("p384", profile="client", key="p384")
    assert p384.certificate.signature_hash_algorithm.name == "sha256"  # the CA's key decides: P-256 -> SHA-256


# -- validity beyond the CA's own -------------------------------------------------------------------


def test_validity_beyond_the_cas(tmp_path):
    with Workspace(tmp_path / "ws") as workspace:
        workspace.init_ca("kitty-ca", key="p256", days=100)
        with pytest.raises(KittylabError, match=r"375 days would outlive the CA, which expires on .*: use at most") as caught:
            workspace.issue("eager-client", profile="client", key="p256")
        at_most = int(re.search(r"use at most (\d+) days", str(caught.value)).group(1))
        assert at_most in (99, 100)
        line = run_cli("issue", "client", "eager-client", "--key", "p256", home=workspace.home).assert_one_line_error()
        assert "would outlive the CA" in line
        assert workspace.issue("eager-client", profile="client", key="p256", days=99).record.status() == "valid"


def test_an_intermediate_cannot_outlive_its_root():
    root = CertificateAuthority.create("root", key="p256", days=10)
    with pytest.raises(KittylabError, match="would outlive"):
        root.sign(make_csr(generate_key("p256"), "x"), profile="client", days=11)


# -- an expired CA -------------------------------------------------------------------------------------


def expired_workspace(home) -> Workspace:
    """A workspace whose CA expired yesterday (made with the store's own calls, as init_ca makes one)."""
    ca = CertificateAuthority.create("kitty-ca", key="p256", days=30, now=NOW - dt.timedelta(days=31))
    home.mkdir()
    workspace = Workspace(home)
    workspace.path("kitty-ca", "key").write_bytes(key_to_pem(ca.key))
    with workspace._store.transaction():
        workspace._store.add("kitty-ca", "ca", "kitty-ca", ca.certificate)
        workspace._store.set_meta("ca", "kitty-ca")
    workspace.close()
    return Workspace(home)


def test_an_expired_ca_signs_nothing(tmp_path):
    ca = CertificateAuthority.create("kitty-ca", key="p256", days=30, now=NOW - dt.timedelta(days=31))
    with pytest.raises(KittylabError, match=r"the CA certificate expired on .*: renew the CA before signing"):
        ca.sign(make_csr(generate_key("p256"), "x"), profile="client", days=1)
    with pytest.raises(KittylabError, match="expired"):  # not even backdated into its lifetime
        ca.sign(make_csr(generate_key("p256"), "x"), profile="client", days=1, now=NOW - dt.timedelta(days=20))
    workspace = expired_workspace(tmp_path / "ws")
    before = snapshot(workspace.home)
    with pytest.raises(KittylabError, match="expired"):
        workspace.issue("eager-client", profile="client", key="p256")
    line = run_cli("issue", "client", "eager-client", "--key", "p256", home=workspace.home).assert_one_line_error()
    assert "the CA certificate expired on" in line
    assert snapshot(workspace.home) == before
    workspace.close()


def test_a_ca_not_valid_yet_signs_nothing():
    ca = CertificateAuthority.create("kitty-ca", key="p256", now=NOW + dt.timedelta(days=2))
    with pytest.raises(KittylabError, match="not valid yet: check the system clock"):
        ca.sign(make_csr(generate_key("p256"), "x"), profile="client")
