"""Three independent validators judge the same generated matrix: kittylab's verify (cryptography's
RFC 5280 verifier plus kittylab's CRL checks), ``openssl verify -x509_strict -crl_check_all`` and
pyhanko-certvalidator with revocation required. They must agree, on every case, with each other
and with what the case is (good, or one kind of bad); the only exceptions are listed in
:data:`DOCUMENTED`, each with its RFC reason, and each must still happen (or be removed).

Cases: every defect below, for P-256, Ed25519 and RSA-2048 chains, for the purposes client,
server and none, directly under a root and below an intermediate where the defect allows it.
Keys are made once per session; certificates are made behind kittylab's back with its own
profiles, so that each case differs from a good one by its defect only. The matrix calls
:func:`kittylab.pki.verify.verify_certificate`, the function behind ``kittylab verify``; the last
test runs the command line itself against a workspace it made, beside the same two judges.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from support.cli import run_cli, run_cli_steps
from support.oracles import pyhanko_verdict
from support.pki import forged_leaf, openssl

from kittylab import Workspace
from kittylab.pki.ca import load_certificate, utcnow
from kittylab.pki.constraints import build_name_constraints
from kittylab.pki.crl import load_crl
from kittylab.pki.keys import generate_key, signature_hash
from kittylab.pki.profiles import PROFILES, authority_key_identifier, ca_extensions
from kittylab.pki.verify import verify_certificate

KINDS = ("p256", "ed25519", "rsa2048")
PURPOSES = ("client", "server", None)
OPENSSL_PURPOSE = {"client": "sslclient", "server": "sslserver"}
#: Disagreements that are allowed, by (defect, judge): each with its reason. Judges: kittylab,
#: openssl, pyhanko. A judge listed here may say anything for that defect; the others must agree
#: with the case.
DOCUMENTED = {
    ("weak signature algorithm", "openssl"): (
        "OpenSSL 3.0 at its default security level 1 counts a SHA-1 signature as 80 bits and accepts it"
        " (it refuses it from -auth_level 2 on); RFC 5280 itself names no hash as weak, but SHA-1 collisions"
        " are practical (RFC 9155 deprecates SHA-1 signatures in TLS 1.2) and cryptography's verifier and"
        " pyhanko-certvalidator refuse it, as kittylab does"
    ),
    ("name constraint violated by IP", "pyhanko"): (
        "pyhanko-certvalidator does not implement iPAddress name constraints (RFC 5280 4.2.1.10): when a"
        " certificate's IP address meets a CA's iPAddress subtrees it raises NotImplementedError instead of"
        " judging the path; OpenSSL and cryptography refuse the address. It does judge the DNS and email cases,"
        " whose CA also carries iPAddress subtrees (build_name_constraints excludes 0.0.0.0/0 and ::/0 when"
        " only DNS and email names are permitted), because their leaves hold no IP address"
    ),
}


@dataclass
class Case:
    defect: str
    kind: str
    purpose: str | None
    leaf: x509.Certificate
    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return self.defect == "good"

    @property
    def label(self) -> str:
        depth = "below an intermediate" if self.intermediates or "intermediate" in self.defect else "under the root"
        return f"{self.defect} [{self.kind}, purpose {self.purpose}, {depth}]"


class Maker:
    """Certificates and CRLs of one key type, signed with kittylab's profiles (or against them)."""

    def __init__(self, kind: str, keys: list) -> None:
        self.kind = kind
        self.keys = keys  # root, intermediate, leaf, stranger, sub-CA
        self.now = utcnow()

    def certificate(
        self, cn: str, key, issuer: x509.Certificate | None, issuer_key, *, ca: bool = False, path_length=None,
        constraints=None, profile: str = "client", names=(), days=(-1, 30), weak: bool = False,
    ) -> x509.Certificate:
        public = key.public_key()
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
        builder = (
            x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(self.now + dt.timedelta(days=days[0])).not_valid_after(self.now + dt.timedelta(days=days[1]))
        )
        if ca:
            extensions = ca_extensions(public, issuer, path_length=path_length, name_constraints=constraints)
        else:
            extensions = PROFILES[profile].extensions(public, issuer, list(names))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        certificate = builder.sign(issuer_key, signature_hash(issuer_key))
        return sha1_signed(certificate, issuer_key) if weak else certificate

    def crl(self, issuer: x509.Certificate, key, revoked=(), *, expired: bool = False) -> x509.CertificateRevocationList:
        last = self.now - dt.timedelta(days=10 if expired else 0, hours=1)
        builder = x509.CertificateRevocationListBuilder(
            issuer_name=issuer.subject, last_update=last, next_update=last + dt.timedelta(days=7 if not expired else 5),
            revoked_certificates=[
                x509.RevokedCertificateBuilder().serial_number(c.serial_number).revocation_date(last).build()
                for c in revoked
            ],
            extensions=[x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(1)),
                        x509.Extension(x509.AuthorityKeyIdentifier.oid, False, authority_key_identifier(issuer))],
        )
        return builder.sign(key, signature_hash(key))


def sha1_signed(certificate: x509.Certificate, key) -> x509.Certificate:
    """The same certificate signed with SHA-1, which cryptography no longer signs with (asn1crypto does the DER)."""
    algorithm = "sha1_rsa" if isinstance(key, rsa.RSAPrivateKey) else "sha1_ecdsa"
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = {"algorithm": algorithm}
    data = tbs.dump(force=True)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA1())
    else:
        signature = key.sign(data, ec.ECDSA(hashes.SHA1()))
    weak = asn1_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": {"algorithm": algorithm}, "signature_value": signature}
    )
    return x509.load_der_x509_certificate(weak.dump())


def leaf_profile(purpose: str | None, defect: str) -> tuple[str, list[x509.GeneralName]]:
    """The leaf's profile and names for a purpose (the wrong one for the wrong-EKU defect)."""
    profile = "server" if purpose == "server" else "client"
    if defect == "wrong EKU":
        profile = "client" if profile == "server" else "server"
    names = [x509.DNSName("www.kitty.test")] if profile == "server" else [x509.RFC822Name("alice@kitty.test")]
    if profile == "client" and purpose == "server":  # a client certificate with a name a server needs
        names = [x509.DNSName("www.kitty.test")]
    bad = {
        "name constraint violated by DNS": [x509.DNSName("www.evil.test")],
        "name constraint violated by IP": [x509.IPAddress(ipaddress.ip_address("192.168.1.1"))],
        "name constraint violated by email": [x509.RFC822Name("mallory@evil.test")],
    }
    return profile, bad.get(defect, names)


DEFECTS_UNDER_ROOT = (
    "good", "expired", "not yet valid", "wrong EKU", "issuer without CA:TRUE", "revoked leaf", "expired CRL",
    "CRL from the wrong CA", "tampered signature", "unknown CA", "weak signature algorithm",
)
DEFECTS_BELOW_INTERMEDIATE = (
    "good", "expired", "not yet valid", "wrong EKU", "issuer without CA:TRUE", "path length exceeded",
    "name constraint violated by DNS", "name constraint violated by IP", "name constraint violated by email",
    "revoked leaf", "revoked intermediate", "expired CRL", "expired CRL of the root", "CRL from the wrong CA",
    "tampered signature", "unknown CA", "missing intermediate", "weak signature algorithm",
)


def build_case(maker: Maker, defect: str, purpose: str | None, below: bool) -> Case | None:
    if defect == "wrong EKU" and purpose is None:
        return None  # without a purpose, any EKU is right
    if defect == "weak signature algorithm" and maker.kind == "ed25519":
        return None  # Ed25519 names no separate hash
    root_key, inter_key, leaf_key, stranger_key, sub_key = maker.keys
    root = maker.certificate("diff-root", root_key, None, root_key, ca=True, path_length=None)
    crls = {}
    chain: list[tuple[x509.Certificate, object]] = [(root, root_key)]  # (certificate, its key), root first
    if below:
        constraints = None
        if defect.startswith("name constraint"):
            # Without permit_ip, every IP address is excluded (the default): the DNS and email cases
            # check that a CA with iPAddress subtrees still has its other constraints judged by all three.
            constraints = build_name_constraints(permit_dns=["kitty.test"], permit_email=["kitty.test"],
                                                 permit_ip=["10.0.0.0/8"] if "IP" in defect else ())
            assert constraints.excluded_subtrees if "IP" not in defect else not constraints.excluded_subtrees
        inter = maker.certificate("diff-issuing", inter_key, root, root_key, ca=True, path_length=0,
                                  constraints=constraints)
        chain.append((inter, inter_key))
        if defect == "path length exceeded":
            chain.append((maker.certificate("diff-sub", sub_key, inter, inter_key, ca=True, path_length=0), sub_key))
    if defect == "issuer without CA:TRUE":
        issuer, issuer_key = chain[-1]
        chain.append((maker.certificate("diff-not-a-ca", sub_key, issuer, issuer_key, profile="client"), sub_key))
    issuer, issuer_key = chain[-1]
    profile, names = leaf_profile(purpose, defect)
    days = {"expired": (-30, -1), "not yet valid": (1, 30)}.get(defect, (-1, 30))
    leaf = maker.certificate("diff-leaf", leaf_key, issuer, issuer_key, profile=profile, names=names, days=days,
                             weak=defect == "weak signature algorithm")
    if defect == "tampered signature":
        der = bytearray(leaf.public_bytes(serialization.Encoding.DER))
        der[-3] ^= 0x01
        leaf = x509.load_der_x509_certificate(bytes(der))
    # Every CA publishes a CRL (the root's lists the intermediate when it is revoked).
    for index, (ca, key) in enumerate(chain):
        child = chain[index + 1][0] if index + 1 < len(chain) else leaf
        revoked = [child] if (defect == "revoked leaf" and child is leaf) or (
            defect == "revoked intermediate" and index == 0) else []
        expired = (defect == "expired CRL" and index == len(chain) - 1) or (defect == "expired CRL of the root" and index == 0)
        crls[ca.subject] = maker.crl(ca, key, revoked, expired=expired)
    if defect == "CRL from the wrong CA":  # same name, another key: an impostor's CRL
        crls[issuer.subject] = maker.crl(issuer, stranger_key)
    roots = [root]
    if defect == "unknown CA":
        roots = [maker.certificate("diff-root", stranger_key, None, stranger_key, ca=True)]
    intermediates = [c for c, _ in chain[1:]]
    if defect == "missing intermediate":
        intermediates = []
    return Case(defect, maker.kind, purpose, leaf, roots, intermediates, list(crls.values()))


@pytest.fixture(scope="session")
def cases():
    made = []
    for kind in KINDS:
        maker = Maker(kind, [generate_key(kind) for _ in range(5)])
        for purpose in PURPOSES:
            for below, defects in ((False, DEFECTS_UNDER_ROOT), (True, DEFECTS_BELOW_INTERMEDIATE)):
                made += [c for d in defects if (c := build_case(maker, d, purpose, below)) is not None]
    return made


def pem(*objects) -> bytes:
    return b"".join(o.public_bytes(serialization.Encoding.PEM) for o in objects)


def judge_openssl(case: Case, folder: Path) -> tuple[bool, str]:
    (folder / "leaf.pem").write_bytes(pem(case.leaf))
    (folder / "roots.pem").write_bytes(pem(*case.roots))
    (folder / "untrusted.pem").write_bytes(pem(*case.intermediates))
    (folder / "crls.pem").write_bytes(pem(*case.crls))
    args = ["verify", "-x509_strict", "-crl_check_all", "-CAfile", folder / "roots.pem", "-CRLfile", folder / "crls.pem"]
    if case.intermediates:
        args += ["-untrusted", folder / "untrusted.pem"]
    if case.purpose:
        args += ["-purpose", OPENSSL_PURPOSE[case.purpose]]
    done = openssl(*args, folder / "leaf.pem")
    return done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()[-1:]


def judge_pyhanko(case: Case) -> tuple[bool | None, str]:
    try:
        return pyhanko_verdict(
            pem(case.leaf), roots=[pem(r) for r in case.roots], intermediates=[pem(c) for c in case.intermediates],
            crls=[pem(c) for c in case.crls], purpose=case.purpose,
        )
    except NotImplementedError as exc:
        return None, f"NotImplementedError: {exc}"


def judge_kittylab(case: Case) -> tuple[bool, str]:
    result = verify_certificate(case.leaf, roots=case.roots, intermediates=case.intermediates, crls=case.crls,
                                purpose=case.purpose)
    return result.ok, str(result).splitlines()[-1]


def test_the_matrix_covers_every_defect(cases):
    assert len(cases) >= 200
    defects = {c.defect for c in cases}
    assert defects == set(DEFECTS_UNDER_ROOT) | set(DEFECTS_BELOW_INTERMEDIATE)
    assert {c.kind for c in cases} == set(KINDS) and {c.purpose for c in cases} == set(PURPOSES)


def test_three_validators_agree(cases, tmp_path):
    disagreements, documented_seen = [], set()
    for number, case in enumerate(cases):
        folder = tmp_path / str(number)
        folder.mkdir()
        verdicts = {
            "kittylab": judge_kittylab(case),
            "openssl": judge_openssl(case, folder),
            "pyhanko": judge_pyhanko(case),
        }
        for judge, (accepted, why) in verdicts.items():
            if accepted is case.good:
                continue
            if (case.defect, judge) in DOCUMENTED:
                documented_seen.add((case.defect, judge))
                continue
            disagreements.append(f"{case.label}: {judge} {'accepted' if accepted else 'refused'} ({why})")
    print(f"{len(cases)} cases judged by kittylab, openssl verify and pyhanko-certvalidator")
    assert not disagreements, "\n".join(disagreements)
    assert documented_seen == set(DOCUMENTED), "a documented disagreement no longer happens: remove it"


def test_the_command_line_gives_the_same_verdicts(tmp_path):
    """``kittylab verify FILE --purpose P`` against a workspace made by the command line agrees with
    openssl and pyhanko given that workspace's certificates and CRLs."""
    home = tmp_path / "ws"
    run_cli_steps(
        ("init", "--cn", "kitty-root", "--key", "p256"),
        ("init", "--cn", "kitty-issuing", "--intermediate-of", "kitty-root", "--key", "p256",
         "--permit-dns", "kitty.test", "--permit-email", "kitty.test"),
        ("issue", "client", "good", "--key", "p256", "--email", "good@kitty.test"),
        ("issue", "server", "www", "--key", "p256", "--dns", "www.kitty.test"),
        ("issue", "client", "gone", "--key", "p256", "--email", "gone@kitty.test"),
        ("revoke", "gone", "--reason", "key-compromise"),
        home=home,
    )
    with Workspace(home) as ws:
        issuing = ws.ca_for("kitty-issuing")
        _, bank = forged_leaf(issuing.certificate, issuing.key, "bank", dns=["bank.test"], folder=tmp_path)
    with Workspace(tmp_path / "other") as other:
        other.init_ca("kitty-root", key="p256")  # same name, another key
        stranger = other.issue("stranger", profile="client", key="p256").files["crt"]
    files = {"good": home / "good.crt", "www": home / "www.crt", "gone": home / "gone.crt", "bank": bank,
             "stranger": stranger}
    phases = [
        [("good", "client", True), ("www", "server", True), ("www", "client", False), ("good", "server", False),
         ("gone", "client", False), ("bank", "server", False), ("stranger", "client", False), ("good", None, True)],
        [("good", "client", False), ("www", "server", False)],  # after the intermediate is revoked
    ]
    judged = 0
    for number, phase in enumerate(phases):
        if number == 1:
            assert run_cli("revoke", "kitty-issuing", "--reason", "ca-compromise", home=home).code == 0
        roots = [load_certificate(home / "kitty-root.crt")]
        intermediates = [load_certificate(home / "kitty-issuing.crt")]
        crls = [load_crl(home / "kitty-root.crl"), load_crl(home / "kitty-issuing.crl")]
        for name, purpose, expected in phase:
            leaf = load_certificate(files[name])
            case = Case("good" if expected else name, "p256", purpose, leaf, roots, intermediates, crls)
            cli = run_cli("verify", files[name], *(["--purpose", purpose] if purpose else []), home=home)
            verdicts = {"kittylab verify": (cli.code == 0, cli.out.strip().splitlines()[-1]),
                        "openssl": judge_openssl(case, _fresh(tmp_path, f"{number}-{name}-{purpose}")),
                        "pyhanko": judge_pyhanko(case)}
            wrong = {judge: why for judge, (accepted, why) in verdicts.items() if accepted is not expected}
            assert not wrong, f"{name} for {purpose} (expected {'accepted' if expected else 'refused'}): {wrong}"
            judged += 1
    assert judged == 10


def _fresh(base: Path, name: str) -> Path:
    folder = base / "openssl" / name
    folder.mkdir(parents=True)
    return folder
