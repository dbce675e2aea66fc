"""Checking a certificate the way a TLS peer would, and saying which check failed.

The verdict on the path is cryptography's own RFC 5280 verifier (``cryptography.x509.verification``):
path building, signatures, validity, basic constraints and path length, key usage, extended key
usage and name constraints. It follows the web PKI; where that refuses what a private CA may
legitimately do, its extension policies are relaxed (a client certificate without alternative
names; a CA whose basicConstraints is not marked critical, as easy-rsa makes them), and for
Ed25519, which the web PKI does not allow, kittylab checks the signatures itself and lets the
verifier judge everything else on a stand-in chain with the same names, dates and extensions.

The verifier checks no revocation, so kittylab checks a CRL at every level on top: issued and
signed by the certificate's issuer, current, and not listing the certificate. When the verifier
refuses, kittylab looks for a reason a learner can act on (an expired certificate, a wrong
purpose, a name outside the constraints...) and shows the verifier's own words beside it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from ..errors import KittylabError, check_choice
from .constraints import check_name_constraints, name_constraints_of
from .crl import entry_reason
from .extensions import extension_value, is_ca
from .facts import when
from .names import readable_name

PURPOSES = {"client": ExtendedKeyUsageOID.CLIENT_AUTH, "server": ExtendedKeyUsageOID.SERVER_AUTH}
#: Signature hashes the web PKI accepts; kittylab asks the same of a chain the verifier cannot take.
STRONG_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
#: What the verifier checks, for the line that gives its verdict.
VERIFIER_CHECKS = "signatures, dates, CA flags, path length, key usage, EKU, name constraints"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Verification:
    """The outcome of every check; ``ok`` only if all passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def __str__(self) -> str:
        lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        lines.append("verified: OK" if self.ok else f"verification failed: {self.failures[0].detail}")
        return "\n".join(lines)


def verify_certificate(
    certificate: x509.Certificate,
    *,
    roots: Iterable[x509.Certificate],
    intermediates: Iterable[x509.Certificate] = (),
    crls: Iterable[x509.CertificateRevocationList] = (),
    purpose: str | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Check ``certificate`` against trusted ``roots``: the path (with ``intermediates``), usage for
    ``purpose`` (``client``, ``server`` or None for any), and revocation by ``crls`` at every level."""
    if purpose is not None:
        check_choice(purpose, PURPOSES, "purpose")
    now = now or dt.datetime.now(dt.timezone.utc)
    crls = list(crls)
    question = _Question(certificate, list(roots), list(intermediates), purpose, now)
    chain, refusal = _validate_path(question)
    result = Verification()
    if chain is not None:
        result.checks += _accepted(chain, purpose)
        result.checks.append(Check("RFC 5280 path", True, f"accepted by cryptography's verifier ({VERIFIER_CHECKS})"))
    else:
        found, explained = _explain(question)
        result.checks += explained
        result.checks.append(Check("RFC 5280 path", False, f"refused by cryptography's verifier: {refusal}"))
        chain = found if found and found[-1] in question.roots else None
    if chain is not None:
        for child, issuer in zip(chain, chain[1:]):
            check = _revocation(child, issuer, crls, now)
            if child is not certificate:
                check = Check(f"{_cn(child)}: {check.name}", check.ok, check.detail)
            result.checks.append(check)
    return result


# -- the verdict: cryptography's verifier -------------------------------------------------------


@dataclass(frozen=True)
class _Question:
    """What one verification asks: is ``certificate`` good for ``purpose`` at ``now``, up to one of
    ``roots`` through ``intermediates``?"""

    certificate: x509.Certificate
    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]
    purpose: str | None
    now: dt.datetime


def _validate_path(question: _Question) -> tuple[list[x509.Certificate] | None, str]:
    """The validated chain (leaf first, root last), or None and the verifier's reason."""
    certificate = question.certificate
    if question.purpose == "server" and not _server_subject(certificate):
        return None, "a server certificate needs a DNS name or IP address to be verified against"
    chain, refusal = _run_verifier(question, None)
    everything = [certificate, *question.intermediates, *question.roots]
    if chain is None and "Forbidden" in refusal and any(map(_beyond_web_pki, everything)):
        # The web PKI refused an Ed25519 key or signature: judge the rest on stand-ins.
        chain, refusal = _run_verifier(question, _StandIns(everything))
    return chain, refusal


def _run_verifier(question: _Question, stand_ins: "_StandIns | None") -> tuple[list[x509.Certificate] | None, str]:
    certificate, purpose = question.certificate, question.purpose
    swap = stand_ins.copy if stand_ins else (lambda c: c)
    builder = (
        PolicyBuilder()
        .store(Store([swap(root) for root in question.roots]))
        .time(question.now.astimezone(dt.timezone.utc).replace(tzinfo=None))
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_ee_policy(certificate, purpose))
    )
    leaf, others = swap(certificate), [swap(c) for c in question.intermediates]
    try:
        if purpose == "server":
            chain = builder.build_server_verifier(_server_subject(certificate)).verify(leaf, others)
        else:
            chain = builder.build_client_verifier().verify(leaf, others).chain
    except VerificationError as exc:
        words = str(exc).removeprefix("validation failed: ").split(" (encountered processing")[0]
        return None, words.split(": AlgorithmIdentifier")[0]  # its Rust debug text says no more
    return ([stand_ins.original(c) for c in chain] if stand_ins else list(chain)), ""


def _must_be_ca(policy: object, certificate: x509.Certificate, constraints: x509.BasicConstraints) -> None:
    if not constraints.ca:
        raise ValueError("basicConstraints.cA is not asserted in an issuer")


#: The web PKI's CA rules, except that basicConstraints may be non-critical (easy-rsa's CAs):
#: RFC 5280's path validation (6.1) reads its value, not its criticality.
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().require_present(
    x509.BasicConstraints, Criticality.AGNOSTIC, _must_be_ca
)
#: A private CA's client certificate may name its holder by the subject alone.
_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


def _ee_policy(certificate: x509.Certificate, purpose: str | None) -> ExtensionPolicy:
    """A server needs its names; without a purpose any extended key usage will do, and a CA
    certificate is checked as a CA."""
    if purpose == "server":
        return ExtensionPolicy.webpki_defaults_ee()  # a server is verified for one of its names
    if purpose == "client":
        return _EE_POLICY
    if is_ca(certificate):
        return _CA_POLICY
    return _EE_POLICY.may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)


def _server_subject(certificate: x509.Certificate) -> x509.DNSName | x509.IPAddress | None:
    """The name a server certificate is checked for: its first DNS name, else its first IP address."""
    names = _alt_names(certificate)
    return next((n for n in names if isinstance(n, x509.DNSName)), None) or next(
        (n for n in names if isinstance(n, x509.IPAddress)), None
    )


def _beyond_web_pki(certificate: x509.Certificate) -> bool:
    """Ed25519 and Ed448 keys and signatures: fine for a private CA, refused by the web PKI's verifier."""
    edwards = (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)
    try:
        return isinstance(certificate.public_key(), edwards) or certificate.signature_hash_algorithm is None
    except UnsupportedAlgorithm:
        return False


class _StandIns:
    """Copies of certificates with P-256 keys, signed where (and only where) the real ones verify.

    Each real key gets one stand-in key, and a copy is signed by the stand-in of the certificate
    whose key really signed the original; a signature that does not verify, or one with a weak hash,
    gets a key nobody has. Names, serials, dates and extensions are copied as they are, so the
    verifier judges everything but the key type as it would on the real chain.
    """

    def __init__(self, pool: list[x509.Certificate]) -> None:
        self.pool = pool
        self._keys: dict[bytes, ec.EllipticCurvePrivateKey] = {}
        self._originals: dict[bytes, x509.Certificate] = {}

    def _key_for(self, certificate: x509.Certificate) -> ec.EllipticCurvePrivateKey:
        spki = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return self._keys.setdefault(spki, ec.generate_private_key(ec.SECP256R1()))

    def copy(self, certificate: x509.Certificate) -> x509.Certificate:
        signer = next((c for c in self.pool if _signed_by(certificate, c) and _strong(certificate)), None)
        builder = x509.CertificateBuilder(
            issuer_name=certificate.issuer,
            subject_name=certificate.subject,
            public_key=self._key_for(certificate).public_key(),
            serial_number=certificate.serial_number,
            not_valid_before=certificate.not_valid_before_utc,
            not_valid_after=certificate.not_valid_after_utc,
            extensions=list(certificate.extensions),
        )
        key = self._key_for(signer) if signer is not None else ec.generate_private_key(ec.SECP256R1())
        copy = builder.sign(key, hashes.SHA256())
        self._originals[copy.fingerprint(hashes.SHA256())] = certificate
        return copy

    def original(self, copy: x509.Certificate) -> x509.Certificate:
        return self._originals[copy.fingerprint(hashes.SHA256())]


# -- what the learner sees ----------------------------------------------------------------------


def _accepted(chain: list[x509.Certificate], purpose: str | None) -> list[Check]:
    """The lines of an accepted certificate: what each check found."""
    leaf, cas = chain[0], chain[1:] or chain
    below = f", below the trusted root {readable_name(cas[-1].subject)}" if len(cas) > 1 else ""
    checks = [
        Check("chain", True, f"signed by {readable_name(cas[0].subject)}{below}"),
        Check("dates", True, f"valid until {leaf.not_valid_after_utc:%Y-%m-%d}"),
        Check("CA dates", True, f"valid until {min(c.not_valid_after_utc for c in cas):%Y-%m-%d}"),
    ]
    if purpose is not None:
        checks.append(Check(f"purpose {purpose}", True, f"allowed for TLS {purpose} authentication"))
    constrained = [c for c in cas if name_constraints_of(c) is not None]
    if constrained:
        checks.append(Check("name constraints", True, "every name is within those of " + ", ".join(map(_cn, constrained))))
    return checks


def _explain(question: _Question) -> tuple[list[x509.Certificate], list[Check]]:
    """After a refusal: the chain as far as it can be followed, and checks that say why in plain words."""
    certificate, purpose, now = question.certificate, question.purpose, question.now
    chain, link = _follow(certificate, question.roots, question.intermediates)
    checks = [link, _dates("dates", "certificate", certificate, now)]
    cas = chain[1:]
    ca_dates = [_dates("CA dates", f"CA certificate {_cn(c)}", c, now) for c in cas]
    if cas:
        ends = min(c.not_valid_after_utc for c in cas)
        checks.append(next((c for c in ca_dates if not c.ok), None) or Check("CA dates", True, f"valid until {ends:%Y-%m-%d}"))
    if purpose is not None:
        checks.append(_purpose(certificate, purpose))
    for index, ca in enumerate(cas):
        if not is_ca(ca):
            checks.append(Check("CA flags", False, f"{_cn(ca)} is not a CA (basicConstraints CA:TRUE is missing)"))
        limit = _path_length(ca)
        if limit is not None and index > limit:  # RFC 5280 counts the CAs between it and the leaf
            checks.append(Check("path length", False, f"{_cn(ca)} allows {limit} CA(s) below it, this chain has {index}"))
    if any(name_constraints_of(c) is not None for c in cas):
        try:
            check_name_constraints(cas, certificate.subject, _alt_names(certificate))
            checks.append(Check("name constraints", True, "every name is within the constraints"))
        except KittylabError as exc:
            checks.append(Check("name constraints", False, str(exc)))
    return chain, checks


def _follow(
    certificate: x509.Certificate, roots: list[x509.Certificate], intermediates: list[x509.Certificate]
) -> tuple[list[x509.Certificate], Check]:
    """Walk up by issuer name and signature to a root; the chain found and a ``chain`` check."""
    chain = [certificate]
    while chain[-1] not in roots and len(chain) < 16:
        current = chain[-1]
        named = [c for c in [*roots, *intermediates] if c.subject == current.issuer and c not in chain]
        if not named:
            whose = "the certificate" if current is certificate else _cn(current)
            return chain, Check(
                "chain", False, f"{whose} is issued by {readable_name(current.issuer)}, which is not a CA trusted here"
            )
        if not _strong(current):
            algorithm = current.signature_algorithm_oid._name  # e.g. sha1WithRSAEncryption
            return chain, Check("chain", False, f"{_cn(current)} is signed with {algorithm}, a hash too weak to trust")
        signer = next((c for c in named if _signed_by(current, c)), None)
        if signer is None:
            return chain, Check("chain", False, f"the signature on {_cn(current)} does not verify with {_cn(named[0])}'s key")
        chain.append(signer)
    if len(chain) == 1:
        return chain, Check("chain", True, "it is a trusted root itself")
    return chain, Check("chain", True, f"signed by {readable_name(chain[1].subject)}")


def _dates(name: str, what: str, certificate: x509.Certificate, now: dt.datetime) -> Check:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now < start:
        return Check(name, False, f"the {what} is not valid before {when(start)}")
    if now >= end:
        return Check(name, False, f"the {what} expired on {when(end)}")
    return Check(name, True, f"valid until {end:%Y-%m-%d}")


def _purpose(certificate: x509.Certificate, purpose: str) -> Check:
    name = f"purpose {purpose}"
    if is_ca(certificate):
        return Check(name, False, "this is a CA certificate, not a leaf")
    usages = extension_value(certificate, x509.ExtendedKeyUsage)
    if usages is not None and PURPOSES[purpose] not in usages:
        allowed = ", ".join(u._name for u in usages) or "nothing"
        return Check(name, False, f"the extended key usage allows {allowed}, not TLS {purpose} authentication")
    if purpose == "server" and not _server_subject(certificate):
        return Check(name, False, "a server certificate needs subject alternative names")
    return Check(name, True, f"allowed for TLS {purpose} authentication")


# -- revocation, on top -------------------------------------------------------------------------


def _revocation(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    crls: list[x509.CertificateRevocationList],
    now: dt.datetime,
) -> Check:
    """Is ``certificate`` on a current CRL of ``issuer``? (RFC 5280, 6.3, for a complete CRL.)"""
    name = "revocation"
    own = [crl for crl in crls if crl.issuer == issuer.subject]
    if not own:
        return Check(name, False, f"no CRL of {_cn(issuer)} published: publish one")
    signed = [crl for crl in own if _crl_signed_by(crl, issuer)]
    if not signed:
        return Check(name, False, f"the CRL is not signed by {_cn(issuer)}")
    usage = extension_value(issuer, x509.KeyUsage)
    if usage is not None and not usage.crl_sign:
        return Check(name, False, f"{_cn(issuer)} may not sign CRLs (its key usage lacks cRLSign)")
    crl = max(signed, key=lambda c: c.last_update_utc)
    if crl.next_update_utc is not None and crl.next_update_utc <= now:
        return Check(name, False, f"the CRL expired on {when(crl.next_update_utc)}: publish a new one")
    if crl.last_update_utc > now:
        return Check(name, False, f"the CRL is not valid before {when(crl.last_update_utc)}")
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if entry is not None:
        reason = entry_reason(entry)
        because = f" ({reason})" if reason else ""
        return Check(name, False, f"revoked on {when(entry.revocation_date_utc)}{because}")
    return Check(name, True, "not revoked")


# -- small helpers ------------------------------------------------------------------------------


def _cn(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else readable_name(certificate.subject)


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def _strong(certificate: x509.Certificate) -> bool:
    """Signed with SHA-2 (or by an Edwards key, which names no separate hash)."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return False
    return algorithm is None or isinstance(algorithm, STRONG_HASHES)


def _path_length(certificate: x509.Certificate) -> int | None:
    constraints = extension_value(certificate, x509.BasicConstraints)
    return constraints.path_length if constraints else None


def _alt_names(certificate: x509.Certificate) -> list[x509.GeneralName]:
    return list(extension_value(certificate, x509.SubjectAlternativeName) or [])
