"""The OpenSSL equivalents: the strings the notebooks show, and the runnable ones really run."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from kittylab import KittylabError
from kittylab.pki import openssl


def test_strings():
    assert openssl.genkey("rsa2048", "k.key") == "openssl genrsa -out k.key 2048"
    assert openssl.genkey("rsa4096", "ca.key", passphrase=True) == "openssl genrsa -aes256 -out ca.key 4096"
    assert "ec_paramgen_curve:P-384" in openssl.genkey("p384", "k.key")
    assert openssl.genkey("ed25519", "k.key") == "openssl genpkey -algorithm ed25519 -out k.key"
    assert openssl.self_signed_ca("ca.key", "ca.crt", "/O=Kitty Inc/CN=kitty-ca") == (
        "openssl req -x509 -new -key ca.key -sha256 -days 7300 -extensions v3_ca -subj '/O=Kitty Inc/CN=kitty-ca'"
        " -out ca.crt")
    assert openssl.csr("s.key", "s.csr", "picture-server", sans=["DNS:localhost", "IP:127.0.0.1"]).endswith(
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -out s.csr")
    assert "-extensions server_cert -days 375" in openssl.sign("s.csr", "s.crt", profile="server")
    assert "-extensions usr_cert" in openssl.sign("c.csr", "c.crt", profile="client")
    assert openssl.pkcs12("c.key", "c.crt", "ca.crt", "c.p12", name="eager-client", legacy=True).startswith(
        "openssl pkcs12 -export -legacy ")
    assert openssl.revoke("c.crt", reason="key-compromise").endswith("-crl_reason keyCompromise")
    assert "-gencrl -crldays 7" in openssl.gencrl("ca.crl", days=7)
    assert openssl.verify("c.crt", "ca.crt", purpose="client", crl="ca.crl") == (
        "openssl verify -CAfile ca.crt -crl_check -CRLfile ca.crl -purpose sslclient c.crt")
    assert openssl.show("my file.crt") == "openssl x509 -in 'my file.crt' -noout -text"


def test_refusals():
    with pytest.raises(KittylabError):
        openssl.genkey("dsa", "k")
    with pytest.raises(KittylabError):
        openssl.sign("a", "b", profile="ca")
    with pytest.raises(KittylabError):
        openssl.revoke("a", reason="lost")


def run(command: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(shlex.split(command), cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_runnable_commands_run_and_agree_with_kittylab(story, require):
    """genkey, req -new, verify and x509 -text run as shown, on the files kittylab wrote."""
    require("openssl")
    workspace, server, client = story
    home = workspace.home
    assert run(openssl.genkey("p256", "extra.key"), home).returncode == 0
    assert run(openssl.csr("extra.key", "extra.csr", "/O=Kitty Inc/CN=extra", sans=["DNS:extra.test"]),
               home).returncode == 0
    assert workspace.sign_csr(home / "extra.csr", profile="server").name == "extra"
    ok = run(openssl.verify("eager-client.crt", "kitty-ca.crt", purpose="client", crl="kitty-ca.crl"), home)
    assert ok.returncode == 0 and "eager-client.crt: OK" in ok.stdout
    shown = run(openssl.show("picture-server.crt"), home)
    assert "DNS:localhost, IP Address:127.0.0.1" in shown.stdout
    assert run(openssl.pkcs12("eager-client.key", "eager-client.crt", "kitty-ca.crt", "o.p12", name="eager-client")
               + " -passout pass:x", home).returncode == 0
