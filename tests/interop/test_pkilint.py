"""pkilint, DigiCert's RFC 5280 linter, judges every kind of artifact kittylab makes: zero findings
at WARNING or above.

For each key type: a root and an intermediate (with name constraints, CRL and OCSP URLs), server
and client leaves (with and without email, IP and URI names, under the constraints and under the
root), a signed external CSR whose subject has an email address and no SAN, a renewed
certificate, CRLs (empty, and with entries and reasons, of the root and of the intermediate),
OCSP responses (good, revoked, unknown) and every issuer-subject pair as a chain.

Not linted here: pkilint's CA/B Forum profiles (``lint_cabf_serverauth_cert``, ``lint_crl -p BR``),
which judge public web-PKI CAs; the README lists the rules a private CA deliberately does not meet.
"""

from __future__ import annotations

from pathlib import Path

import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from support.oracles import lint

from kittylab import Workspace
from kittylab.net.ocsp import OcspResponder
from kittylab.pki.constraints import build_name_constraints
from kittylab.pki.csr import make_csr
from kittylab.pki.keys import KEY_KINDS, generate_key
from kittylab.pki.names import Subject
from kittylab.pki.profiles import AccessUrls

BASE = "http://pki.kitty.test"
README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def keys():
    """Three keys of each type, made once (RSA 4096 takes a while): root, intermediate, leaves."""
    return {kind: [generate_key(kind) for _ in range(3)] for kind in KEY_KINDS}


class Artifacts:
    """Files to lint, each with a label that says what it is."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.items: list[tuple[str, str, tuple[Path, ...]]] = []

    def add(self, kind: str, label: str, *objects) -> None:
        paths = []
        for number, thing in enumerate(objects):
            der = thing if isinstance(thing, bytes) else thing.public_bytes(serialization.Encoding.DER)
            path = self.folder / f"{len(self.items)}-{number}.der"
            path.write_bytes(der)
            paths.append(path)
        self.items.append((kind, label, tuple(paths)))

    def findings(self) -> list[str]:
        return [f"{label}: {finding}" for kind, label, paths in self.items for finding in lint(kind, *paths)]


def ocsp_answer(workspace: Workspace, certificate: x509.Certificate, issuer: x509.Certificate, serial=None) -> bytes:
    builder = ocsp.OCSPRequestBuilder()
    if serial is None:
        builder = builder.add_certificate(certificate, issuer, hashes.SHA256())
    else:
        request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256()).build()
        builder = builder.add_certificate_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, serial, hashes.SHA256()
        )
    der, _ = OcspResponder(workspace).respond(builder.build().public_bytes(serialization.Encoding.DER))
    return der


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_everything_kittylab_makes_is_lint_clean(kind, keys, tmp_path):
    root_key, issuing_key, leaf_key = keys[kind]
    out = Artifacts(tmp_path)
    ws = Workspace(tmp_path / "ws")
    urls = AccessUrls(f"{BASE}/kitty-root.crl", f"{BASE}:8888", f"{BASE}/kitty-root.crt")
    root = ws.init_ca(Subject(cn="kitty-root", o="Kitty Inc", c="DE", email="pki@kitty.test"), key=root_key, urls=urls)
    out.add("crl", "empty root CRL", ws.current_crl("kitty-root"))
    constraints = build_name_constraints(permit_dns=["kitty.test"], permit_email=["kitty.test"], permit_ip=["127.0.0.0/8"])
    issuing = ws.init_ca("kitty-issuing", key=issuing_key, intermediate_of="kitty-root", name_constraints=constraints)
    out.add("crl", "empty intermediate CRL", ws.current_crl("kitty-issuing"))

    leaves = {
        "server with DNS, IP and email": ws.issue(
            "www", profile="server", key=leaf_key, subject=Subject(cn="www", email="web@kitty.test"),
            dns=["www.kitty.test"], ip=["127.0.0.1"]),
        "client with email and URI": ws.issue(
            "alice", profile="client", key=leaf_key, email=["alice@kitty.test"], uri=["https://www.kitty.test/alice"]),
        "client without alternative names": ws.issue("bob", profile="client", key=leaf_key),
        "server with an IP only, under the root": ws.issue(
            "api", profile="server", key=leaf_key, ip=["10.0.0.1"], ca="kitty-root"),
        "client under the root": ws.issue("carol", profile="client", key=leaf_key, ca="kitty-root"),
    }
    csr = make_csr(leaf_key, Subject(cn="dave", o="Kitty Inc", email="dave@kitty.test"))  # email only in the subject
    (tmp_path / "dave.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    leaves["signed external CSR (email in the subject only)"] = ws.sign_csr(tmp_path / "dave.csr", profile="client")
    leaves["renewed client"] = ws.renew("alice")

    out.add("cert", "root CA", root.certificate)
    out.add("cert", "intermediate CA", issuing.certificate)
    out.add("chain", "root -> intermediate", root.certificate, issuing.certificate)
    for label, issued in leaves.items():
        issuer = root if issued.record.issuer == "kitty-root" else issuing
        out.add("cert", label, issued.certificate)
        out.add("chain", f"{issuer.name} -> {label}", issuer.certificate, issued.certificate)

    good = ocsp_answer(ws, leaves["server with DNS, IP and email"].certificate, issuing.certificate)
    unknown = ocsp_answer(ws, leaves["server with DNS, IP and email"].certificate, issuing.certificate, serial=0x1234ABCD)
    ws.revoke("bob", reason="key-compromise")
    ws.revoke("www")  # unspecified: no reason code on the CRL, none in OCSP
    ws.revoke("carol", reason="superseded")
    revoked = ocsp_answer(ws, leaves["client without alternative names"].certificate, issuing.certificate)
    unspecified = ocsp_answer(ws, leaves["server with DNS, IP and email"].certificate, issuing.certificate)
    for label, der in (("good", good), ("unknown", unknown), ("revoked", revoked), ("revoked, no reason", unspecified)):
        assert ocsp.load_der_ocsp_response(der).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        out.add("ocsp", f"OCSP {label}", der)
    out.add("crl", "intermediate CRL with entries and reasons", ws.current_crl("kitty-issuing"))
    out.add("crl", "root CRL with an entry", ws.current_crl("kitty-root"))
    assert len(ws.current_crl("kitty-issuing")) == 2

    assert len(out.items) >= 25
    assert out.findings() == []
    ws.close()


def test_the_linter_can_fail(tmp_path):
    """The oracle is not deaf: an email address only in the subject is the error kittylab used to make."""
    key = generate_key("p256")
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "old"),
                      x509.NameAttribute(x509.NameOID.EMAIL_ADDRESS, "old@kitty.test")])
    ws = Workspace(tmp_path / "ws")
    ca = ws.init_ca("kitty-ca", key="p256")
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(ca.certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.certificate.not_valid_before_utc).not_valid_after(ca.certificate.not_valid_after_utc)
    )
    path = tmp_path / "old.der"
    path.write_bytes(builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    assert any("pkix.subject_email_address_not_in_san" in finding for finding in lint("cert", path))
    ws.close()


def test_the_readme_lists_exactly_the_ca_b_forum_rules_kittylab_does_not_meet(keys, tmp_path):
    """The web-PKI lints find what the README says they find: no more (an undocumented departure)
    and no less (a stale line)."""
    documented = {code for line in re.findall(r"^\| (`cabf\.[^|]*)\|", README, re.MULTILINE)
                  for code in re.findall(r"`(cabf\.[a-z0-9_.]+)`", line)}
    out = Artifacts(tmp_path)
    ws = Workspace(tmp_path / "ws")
    root = ws.init_ca(Subject(cn="kitty-root", o="Kitty Inc", c="DE"), key=keys["p256"][0],
                      urls=AccessUrls(f"{BASE}/kitty-root.crl", f"{BASE}:8888", f"{BASE}/kitty-root.crt"))
    issuing = ws.init_ca("kitty-issuing", key=keys["p256"][1], intermediate_of="kitty-root")
    out.add("cabf-root", "root", root.certificate)
    out.add("cabf-leaf", "intermediate", issuing.certificate)
    for kind in ("p256", "rsa2048"):
        out.add("cabf-leaf", f"{kind} server", ws.issue(f"www-{kind}", profile="server", key=keys[kind][2],
                                                          dns=["www.kitty.test"]).certificate)
    out.add("cabf-crl", "CRL", ws.current_crl("kitty-issuing"))
    found = {re.search(r"\b(?:FATAL|ERROR|WARNING) ([a-z0-9_.]+)", finding).group(1) for finding in out.findings()}
    ws.close()
    assert found == documented, f"found, not in the README: {found - documented}; in the README, not found: {documented - found}"
