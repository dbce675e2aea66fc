"""Profiles: the CA, not the request, decides what a certificate may do.

A CSR can ask for anything (CA:TRUE, keyCertSign, a path length, name constraints, any EKU).
kittylab reads only its subject, its public key and its alternative names, checks the names
against the profile, and builds every extension itself.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ..errors import KittylabError
from .extensions import extension_value
from .keys import PublicKey
from .names import describe_san, make_sans

_SAN_KINDS = {
    x509.DNSName: "dns",
    x509.IPAddress: "ip",
    x509.RFC822Name: "email",
    x509.UniformResourceIdentifier: "uri",
}


@dataclass(frozen=True)
class Profile:
    """What a kind of leaf certificate is for: its extended key usage and the names it may carry."""

    name: str
    purpose: str
    extended_key_usage: x509.ObjectIdentifier
    san_kinds: tuple[str, ...]
    san_required: bool

    def check_names(self, names: list[x509.GeneralName]) -> list[x509.GeneralName]:
        """Validate requested alternative names and refuse those this profile does not allow."""
        checked: list[x509.GeneralName] = []
        for name in names:
            kind = _SAN_KINDS.get(type(name))
            if kind not in self.san_kinds:
                allowed = ", ".join(k.upper() if k != "email" else k for k in self.san_kinds)
                raise KittylabError(
                    f"a {self.name} certificate cannot carry the name {describe_san(name)}: it accepts {allowed}",
                    fix="drop-san", san=describe_san(name),
                )
            value = str(name.value) if kind == "ip" else name.value
            checked += make_sans(**{kind: [value]}, wildcard=self.name == "server")
        if self.san_required and not checked:
            raise KittylabError(
                f"a {self.name} certificate needs at least one DNS name or IP address (for example localhost)", fix="server-names"
            )
        return checked

    def extensions(
        self,
        public_key: PublicKey,
        issuer: x509.Certificate,
        names: list[x509.GeneralName],
        urls: "AccessUrls | None" = None,
    ) -> list[tuple[x509.ExtensionType, bool]]:
        """Every extension of a leaf of this profile, as (extension, critical) pairs; ``urls`` are
        the issuing CA's (where to find its CRL, its OCSP responder and its certificate)."""
        # RSA server keys also encrypt the TLS 1.2 RSA key exchange; other keys only sign.
        encipher = isinstance(public_key, rsa.RSAPublicKey) and self.name == "server"
        chosen: list[tuple[x509.ExtensionType, bool]] = [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(digital_signature=True, key_encipherment=encipher), True),
            (x509.ExtendedKeyUsage([self.extended_key_usage]), False),
            (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
            (authority_key_identifier(issuer), False),
        ]
        if names:
            chosen.append((x509.SubjectAlternativeName(names), False))
        return chosen + (urls.extensions() if urls is not None else [])


PROFILES: dict[str, Profile] = {
    "server": Profile("server", "TLS web server", ExtendedKeyUsageOID.SERVER_AUTH, ("dns", "ip"), True),
    "client": Profile("client", "TLS web client", ExtendedKeyUsageOID.CLIENT_AUTH, ("email", "dns", "uri"), False),
}


def get_profile(name: "str | Profile") -> Profile:
    """The profile called ``name`` (``server`` or ``client``); a Profile as it is."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise KittylabError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}") from None


def ca_extensions(
    public_key: PublicKey,
    issuer: x509.Certificate | None,
    *,
    path_length: int | None = None,
    name_constraints: x509.NameConstraints | None = None,
    names: list[x509.GeneralName] | None = None,
    urls: "AccessUrls | None" = None,
) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions of a CA certificate, as OpenSSL's ``v3_ca`` section makes them.

    ``issuer`` is None for a self-signed root, whose authority key identifier is its own.
    ``name_constraints`` (critical, as RFC 5280 requires) limits the names it may certify.
    ``names`` become its alternative names (its email address); ``urls`` are its issuer's.
    """
    subject_key_id = x509.SubjectKeyIdentifier.from_public_key(public_key)
    if issuer is None:
        authority = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(subject_key_id)
    else:
        authority = authority_key_identifier(issuer)
    chosen: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (_key_usage(key_cert_sign=True, crl_sign=True, digital_signature=True), True),
        (subject_key_id, False),
        (authority, False),
    ]
    if name_constraints is not None:
        chosen.append((name_constraints, True))
    if names:
        chosen.append((x509.SubjectAlternativeName(names), False))
    return chosen + (urls.extensions() if urls is not None else [])


@dataclass(frozen=True)
class AccessUrls:
    """Where clients find a CA's CRL, its OCSP responder and its certificate (RFC 5280, 4.2.1.13
    and 4.2.2.1): set per CA, carried by everything it issues as CRL Distribution Points and
    Authority Information Access, so that validators can check revocation on their own."""

    crl: str | None = None
    ocsp: str | None = None
    ca_issuers: str | None = None

    def __post_init__(self) -> None:
        for what, url, fix in (("the CRL URL", self.crl, "crl-url"), ("the OCSP URL", self.ocsp, "ocsp-url"),
                               ("the CA issuers URL", self.ca_issuers, "ca-issuers-url")):
            if url is not None:
                check_http_url(url, what, fix=fix)

    def __bool__(self) -> bool:
        return any((self.crl, self.ocsp, self.ca_issuers))

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("crl", self.crl), ("ocsp", self.ocsp), ("ca_issuers", self.ca_issuers)) if v}

    def below(self, parent: str, child: str) -> "AccessUrls":
        """What a CA ``child`` made under ``parent`` inherits: the same OCSP responder, and the CRL
        and certificate URLs when they follow ``kittylab publish``'s layout (``.../PARENT.crl``)."""

        def renamed(url: str | None, suffix: str) -> str | None:
            if url is None or not url.endswith(f"/{parent}.{suffix}"):
                return None
            return url[: -len(f"{parent}.{suffix}")] + f"{child}.{suffix}"

        return AccessUrls(renamed(self.crl, "crl"), self.ocsp, renamed(self.ca_issuers, "crt"))

    def extensions(self) -> list[tuple[x509.ExtensionType, bool]]:
        """CRL Distribution Points and Authority Information Access, both non-critical."""
        chosen: list[tuple[x509.ExtensionType, bool]] = []
        if self.crl:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(self.crl)], None, None, None)
            chosen.append((x509.CRLDistributionPoints([point]), False))
        access = [
            x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
            for method, url in ((AuthorityInformationAccessOID.OCSP, self.ocsp),
                                (AuthorityInformationAccessOID.CA_ISSUERS, self.ca_issuers))
            if url
        ]
        if access:
            chosen.append((x509.AuthorityInformationAccess(access), False))
        return chosen


def check_http_url(url: str, what: str = "the URL", *, fix: str | None = None) -> str:
    """Return ``url`` if it is a plain ``http://host/...`` URL, else a one-line error.

    CRLs, OCSP answers and CA certificates are signed, and are fetched over plain HTTP: an
    https URL would need a revocation check of its own before the client could read it.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme == "http" and bool(parts.hostname) and parts.port != 0  # .port checks the range
    except (ValueError, TypeError, AttributeError):
        ok = False
    if not ok or not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url) or len(url) > 2000:
        raise KittylabError(f"{what} {url!r}: give a plain http:// URL such as http://pki.kitty.test/kitty-ca.crl", fix=fix)
    return url


def authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """Point at the issuer's key: its subject key identifier, or one derived from its public key."""
    ski = extension_value(issuer, x509.SubjectKeyIdentifier)
    if ski is None:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _key_usage(**usages: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    flags.update(usages)
    return x509.KeyUsage(**flags)
