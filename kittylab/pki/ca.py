"""The certificate authority: a self-signed root (or an intermediate) that signs by profile."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Iterable

from cryptography import x509

from ..errors import KittylabError
from .constraints import check_name_constraints
from .crl import REASONS, check_reason
from .csr import check_csr_signature, load_csr
from .extensions import is_ca
from .files import load_pem_or_der
from .grant import review
from .keys import PrivateKey, check_key_strength, generate_key, load_key, signature_hash
from .names import Subject, make_sans, subject_of
from .profiles import (
    AccessUrls,
    Profile,
    authority_key_identifier,
    ca_extensions,
    get_profile,
)

CA_DAYS = 7300
LEAF_DAYS = 375
#: An issuing CA's validity by default (never beyond its parent's end).
INTERMEDIATE_DAYS = 3650
#: Leaves start a minute in the past so that a client whose clock is slightly behind accepts them.
BACKDATE = dt.timedelta(minutes=1)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate as a CRL lists it."""

    serial: int
    revoked_at: dt.datetime
    reason: str = "unspecified"


class CertificateAuthority:
    """A CA certificate and its private key: signs leaf certificates by profile and builds CRLs.

    Make one with :meth:`create` (``openssl req -x509 -extensions v3_ca``) or :meth:`load`.
    ``parents`` are the CAs above an intermediate (its issuer first, the root last): they go
    into the chain that clients need, and their name constraints bind what it signs. ``urls``
    (its CRL, OCSP responder and certificate) go into everything it signs.
    """

    def __init__(
        self,
        certificate: x509.Certificate,
        key: PrivateKey,
        *,
        parents: Iterable[x509.Certificate] = (),
        urls: AccessUrls | None = None,
    ) -> None:
        if certificate.public_key() != key.public_key():
            raise KittylabError("the CA key does not belong to the CA certificate")
        if not is_ca(certificate):
            raise KittylabError("this certificate is not a CA certificate (basicConstraints CA:TRUE is missing)")
        self.certificate = certificate
        self.key = key
        self.parents = tuple(parents)
        self.urls = urls or AccessUrls()

    @classmethod
    def create(
        cls,
        subject: Subject | str = "kitty-ca",
        *,
        key: PrivateKey | str = "rsa4096",
        days: int = CA_DAYS,
        path_length: int | None = None,
        name_constraints: x509.NameConstraints | None = None,
        issuer: "CertificateAuthority | None" = None,
        now: dt.datetime | None = None,
    ) -> "CertificateAuthority":
        """Make a self-signed root CA, as ``openssl req -x509 -new -extensions v3_ca`` does.

        With ``issuer``, make an intermediate CA signed by it instead (``openssl ca -extensions
        v3_intermediate_ca``): it must fit in the issuer's validity and path length.
        """
        private_key = generate_key(key) if isinstance(key, str) else key
        check_key_strength(private_key)
        check_days(days)
        if path_length is not None and (isinstance(path_length, bool) or not isinstance(path_length, int) or path_length < 0):
            raise KittylabError(f"the path length must be a whole number of CAs below, 0 or more, not {path_length!r}")
        subject = subject_of(subject)
        name = subject.to_name()
        start = now or utcnow()
        end = start + dt.timedelta(days=days)
        issuer_name, signer, parents = name, private_key, ()
        if issuer is not None:
            path_length = issuer.check_path_length(path_length)  # the more basic refusal first
            end = issuer.check_validity(start, days)
            issuer_name, signer = issuer.certificate.subject, issuer.key
            parents = (issuer.certificate, *issuer.parents)
            if name == issuer_name:
                raise KittylabError("an intermediate CA needs a name of its own, not its issuer's")
        builder = _builder(name, issuer_name, private_key.public_key(), start, end)
        extensions = ca_extensions(
            private_key.public_key(),
            issuer.certificate if issuer is not None else None,
            path_length=path_length,
            name_constraints=name_constraints,
            names=_email_names(subject),
            urls=issuer.urls if issuer is not None else None,
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return cls(builder.sign(signer, signature_hash(signer)), private_key, parents=parents)

    def check_path_length(self, wanted: int | None) -> int:
        """The path length for a CA below this one: refuse if this CA may have none (pathlen:0).

        ``None`` makes an issuing CA (pathlen 0), which signs leaves but no further CAs.
        """
        mine = self.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        if mine == 0:
            raise KittylabError(f"{self.name} has path length 0: it may sign certificates, not other CAs")
        wanted = 0 if wanted is None else wanted
        if mine is not None and wanted > mine - 1:
            raise KittylabError(
                f"{self.name} has path length {mine}: a CA below it may have at most {mine - 1}", fix="path-length"
            )
        return wanted

    @property
    def chain(self) -> list[x509.Certificate]:
        """This CA's certificate and its parents': what a p12 or a server sends beside a leaf."""
        return [self.certificate, *self.parents]

    @classmethod
    def load(
        cls,
        certificate: x509.Certificate | bytes | str | os.PathLike,
        key: PrivateKey | bytes | str | os.PathLike,
        *,
        passphrase: str | bytes | None = None,
    ) -> "CertificateAuthority":
        """Load an existing CA from its certificate and key (the key may be passphrase-protected)."""
        cert = certificate if isinstance(certificate, x509.Certificate) else load_certificate(certificate)
        private_key = key if not isinstance(key, (bytes, str, os.PathLike)) else load_key(key, passphrase=passphrase)
        return cls(cert, private_key)

    @property
    def name(self) -> str:
        """The CA's common name."""
        return Subject.from_name(self.certificate.subject).cn

    def sign(
        self,
        csr: x509.CertificateSigningRequest | bytes | str | os.PathLike,
        *,
        profile: "str | Profile",
        days: int = LEAF_DAYS,
        now: dt.datetime | None = None,
        serial: int | None = None,
        **names: Iterable[str] | bool,
    ) -> x509.Certificate:
        """Sign a CSR as a ``server`` or ``client`` certificate, as ``openssl ca`` does.

        Only the CSR's subject, public key and alternative names are taken, each checked; every
        extension comes from the profile. ``names`` as :func:`kittylab.pki.grant.review` takes them
        (which shows it first): ``dns``, ``ip``, ``email`` and ``uri`` add names to the CSR's,
        ``drop`` and ``replace`` leave requested ones out.
        """
        chosen = get_profile(profile)
        request = check_csr_signature(csr) if isinstance(csr, x509.CertificateSigningRequest) else load_csr(csr)
        grant = review(request, chosen, **names)
        return self.certify(request.public_key(), grant.subject, grant.names, profile=chosen, days=days, now=now,
                            serial=serial)

    def certify(
        self,
        public_key,
        subject: Subject,
        names: list[x509.GeneralName],
        *,
        profile: "str | Profile",
        days: int = LEAF_DAYS,
        now: dt.datetime | None = None,
        serial: int | None = None,
    ) -> x509.Certificate:
        """Sign ``public_key`` for ``subject`` and ``names`` (already granted) as a ``profile`` certificate.

        :meth:`sign` comes here after reviewing a CSR; a renewal comes here with the public key and
        names of the certificate it renews (a CA may certify a key it certified before: the owner
        keeps the private key, nobody needs a new CSR). The key's strength and the chain's name
        constraints are checked every time.
        """
        chosen = get_profile(profile)
        check_key_strength(public_key)
        start = now or utcnow()
        not_after = check_issuance(self.chain, subject, names, start=start, days=days)
        builder = _builder(
            subject.to_name(), self.certificate.subject, public_key, start - BACKDATE, not_after, serial=serial
        )
        for extension, critical in chosen.extensions(public_key, self.certificate, names, self.urls):
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(self.key, signature_hash(self.key))

    def check_validity(self, start: dt.datetime, days: int) -> dt.datetime:
        """Refuse to sign with an expired CA, or for longer than the CA itself is valid (:func:`check_validity`)."""
        return check_validity(self.certificate, start, days)

    def build_crl(
        self,
        revoked: Iterable[Revocation],
        *,
        number: int,
        next_update_days: float = 30,
        now: dt.datetime | None = None,
    ) -> x509.CertificateRevocationList:
        """Sign a CRL listing ``revoked``, with a CRL number and the CA's key identifier."""
        if not next_update_days or next_update_days <= 0:
            raise KittylabError("the CRL's next update must be in the future: give a positive number of days")
        start = now or utcnow()
        entries = [_revoked_entry(entry) for entry in revoked]
        builder = x509.CertificateRevocationListBuilder(
            issuer_name=self.certificate.subject,
            last_update=start,
            next_update=start + dt.timedelta(days=next_update_days),
            revoked_certificates=entries,
            extensions=[
                x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
                x509.Extension(
                    x509.AuthorityKeyIdentifier.oid, False, authority_key_identifier(self.certificate)
                ),
            ],
        )
        return builder.sign(self.key, signature_hash(self.key))


def check_validity(ca_certificate: x509.Certificate, start: dt.datetime, days: int) -> dt.datetime:
    """Refuse to sign with an expired CA, or for longer than the CA itself is valid; return the end."""
    check_days(days)
    ca_end = ca_certificate.not_valid_after_utc
    # A backdated start (now=, to make an already-expired leaf) still needs a CA valid today.
    moment = max(start, utcnow())
    if ca_end <= moment:
        raise KittylabError(f"the CA certificate expired on {ca_end:%Y-%m-%d}: renew the CA before signing")
    if ca_certificate.not_valid_before_utc > moment + BACKDATE:
        raise KittylabError("the CA certificate is not valid yet: check the system clock")
    not_after = start + dt.timedelta(days=days)
    if not_after > ca_end:
        left = (ca_end - start).days
        raise KittylabError(
            f"{days} days would outlive the CA, which expires on {ca_end:%Y-%m-%d}: use at most {left} days"
        )
    return not_after


def check_issuance(chain: list[x509.Certificate], subject: Subject, names: list[x509.GeneralName], *,
                   start: dt.datetime, days: int) -> dt.datetime:
    """What signing checks beyond the request: the name constraints of ``chain`` (the issuer first) and the
    issuer's validity for ``days`` from ``start``; return the end. No CA key needed: a dry run checks the same."""
    check_name_constraints(chain, subject.to_name(), names)
    return check_validity(chain[0], start, days)


def check_days(days: int) -> int:
    """Refuse validity periods that are not a positive whole number of days."""
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        raise KittylabError(f"days must be a positive whole number, not {days!r}")
    if days > 36500:
        raise KittylabError(f"{days} days is more than a hundred years: give a shorter validity")
    return days


def load_certificate(source: bytes | str | os.PathLike) -> x509.Certificate:
    """Load a certificate from PEM or DER."""
    return load_pem_or_der(source, what="certificate", label="CERTIFICATE", pem=x509.load_pem_x509_certificate,
                           der=x509.load_der_x509_certificate, description="a certificate",
                           parse=lambda certificate: (certificate.subject, certificate.issuer))


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    serial: int | None = None,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _email_names(subject: Subject) -> list[x509.GeneralName]:
    """RFC 5280, 4.1.2.6: an email address in the subject must also be an rfc822Name in the SAN."""
    return make_sans(email=[subject.email]) if subject.email else []


def _revoked_entry(entry: Revocation) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.revoked_at)
    if check_reason(entry.reason) != "unspecified":
        builder = builder.add_extension(x509.CRLReason(REASONS[entry.reason]), critical=False)
    return builder.build()
