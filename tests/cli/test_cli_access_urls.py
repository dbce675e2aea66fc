"""``init --crl-url --ocsp-url --ca-issuers-url``: stored per CA, carried by everything it issues from
then on (CRL Distribution Points, Authority Information Access), inherited by intermediates that
follow ``kittylab publish``'s layout, and shown by ``show`` and the cards."""

from __future__ import annotations

import json

import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID
from support.cli import run_cli

from kittylab import Workspace
from kittylab.pki.ca import load_certificate
from kittylab.render.display import certificate_card

BASE = "http://pki.kitty.test"


def urls_in(certificate: x509.Certificate) -> dict[str, list[str]]:
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert not points.critical and not access.critical
    methods = {AuthorityInformationAccessOID.OCSP: "ocsp", AuthorityInformationAccessOID.CA_ISSUERS: "ca_issuers"}
    found = {"crl": [n.value for p in points.value for n in p.full_name]}
    for description in access.value:
        found.setdefault(methods[description.access_method], []).append(description.access_location.value)
    return found


def test_urls_are_stored_per_ca_inherited_and_carried(tmp_path):
    home = tmp_path / "ws"
    root_urls = ["--crl-url", f"{BASE}/kitty-root.crl", "--ocsp-url", f"{BASE}:8888",
                 "--ca-issuers-url", f"{BASE}/kitty-root.crt"]
    made = run_cli("init", "--cn", "kitty-root", "--key", "p256", *root_urls, home=home)
    assert made.code == 0 and f"carries its CRL URL: {BASE}/kitty-root.crl" in made.out
    assert run_cli("init", "--cn", "kitty-issuing", "--intermediate-of", "kitty-root", "--key", "p256", home=home).code == 0
    own = run_cli("init", "--cn", "kitty-own", "--intermediate-of", "kitty-root", "--key", "p256",
                  "--crl-url", "http://crl.kitty.test/own.crl", home=home)
    assert own.code == 0
    for ca in ("kitty-root", "kitty-issuing", "kitty-own"):
        assert run_cli("issue", "client", f"c-{ca}", "--key", "p256", "--ca", ca, home=home).code == 0

    # The root's certificate carries nothing (nothing above it); the intermediates carry the root's URLs.
    root = load_certificate(home / "kitty-root.crt")
    with pytest.raises(x509.ExtensionNotFound):
        root.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert urls_in(load_certificate(home / "kitty-issuing.crt")) == {
        "crl": [f"{BASE}/kitty-root.crl"], "ocsp": [f"{BASE}:8888"], "ca_issuers": [f"{BASE}/kitty-root.crt"]}
    # Leaves carry their issuer's: inherited in publish's layout, or its own where given.
    assert urls_in(load_certificate(home / "c-kitty-root.crt"))["crl"] == [f"{BASE}/kitty-root.crl"]
    assert urls_in(load_certificate(home / "c-kitty-issuing.crt")) == {
        "crl": [f"{BASE}/kitty-issuing.crl"], "ocsp": [f"{BASE}:8888"], "ca_issuers": [f"{BASE}/kitty-issuing.crt"]}
    assert urls_in(load_certificate(home / "c-kitty-own.crt")) == {
        "crl": ["http://crl.kitty.test/own.crl"], "ocsp": [f"{BASE}:8888"], "ca_issuers": [f"{BASE}/kitty-own.crt"]}

    shown = run_cli("show", "kitty-issuing", "--json", home=home)
    summary = json.loads(shown.out)
    assert summary["crl_urls"] == [f"{BASE}/kitty-root.crl"]
    assert summary["issues_with"] == {"crl": f"{BASE}/kitty-issuing.crl", "ocsp": f"{BASE}:8888",
                                      "ca_issuers": f"{BASE}/kitty-issuing.crt"}
    text = run_cli("show", "c-kitty-own", home=home).out
    assert "CRL:                 http://crl.kitty.test/own.crl" in text and f"OCSP:                {BASE}:8888" in text
    with Workspace(home) as workspace:
        rows = dict(certificate_card(workspace.find("c-kitty-issuing").certificate).rows)
        assert rows["CRL"] == f"{BASE}/kitty-issuing.crl" and rows["CA issuers"] == f"{BASE}/kitty-issuing.crt"
        assert "CRL" not in dict(certificate_card(root).rows)
        # Renewing keeps carrying them (the CA's URLs, from then on).
        renewed = workspace.renew("c-kitty-issuing")
        assert urls_in(renewed.certificate)["crl"] == [f"{BASE}/kitty-issuing.crl"]


@pytest.mark.parametrize("url", ["https://pki.kitty.test/a.crl", "ftp://pki.kitty.test/a.crl", "pki.kitty.test/a.crl",
                                 "http://", "http://pki.kitty.test:0/", "http://pki.kitty.test/a b.crl"])
def test_a_bad_url_is_one_line_and_creates_nothing(tmp_path, url):
    home = tmp_path / "ws"
    error = run_cli("init", "--key", "p256", "--crl-url", url, home=home).assert_one_line_error()
    assert "--crl-url" in error and "plain http://" in error
    assert not home.exists()
