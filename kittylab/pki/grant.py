"""What a CA grants for a CSR, decided and shown before it signs (``openssl req -text`` and the
sysadmin's eye, in one step).

A CSR asks for a subject and alternative names; the profile decides what the certificate may
do. :func:`review` says, before anything is signed, which names the certificate will carry:
those requested, minus the ones the CA drops (``drop``) or all of them (``replace``), plus
the ones the CA adds. Names the profile does not accept are refused by name, so a client CSR
asking for a web server's name is caught here, not found later in the certificate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as replaced
from typing import Iterable

from cryptography import x509

from ..errors import KittylabError
from .extensions import extension_value
from .keys import check_key_strength, describe_key
from .names import Subject, check_san_count, describe_san, make_sans, parse_san, readable_name, unique_names
from .profiles import Profile, get_profile


@dataclass(frozen=True)
class Grant:
    """The certificate a CSR will get: subject, key, profile and alternative names, with what changed."""

    profile: Profile
    subject: Subject
    key: str
    names: list[x509.GeneralName]
    requested: list[x509.GeneralName] = field(default_factory=list)
    dropped: list[x509.GeneralName] = field(default_factory=list)
    added: list[x509.GeneralName] = field(default_factory=list)
    #: Extensions the CSR asks for that the profile decides instead (shown, never copied).
    ignored: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "profile": self.profile.name,
            "subject": readable_name(self.subject.to_name()),
            "key": self.key,
            "subject_alternative_names": [describe_san(n) for n in self.names],
            "requested": [describe_san(n) for n in self.requested],
            "dropped": [describe_san(n) for n in self.dropped],
            "added": [describe_san(n) for n in self.added],
            "ignored_extensions": self.ignored,
            "extended_key_usage": self.profile.purpose,
        }

    def lines(self) -> list[str]:
        """The review as a person reads it before saying yes."""
        lines = [f"subject: {readable_name(self.subject.to_name())}", f"key: {self.key}",
                 f"profile: {self.profile.name} ({self.profile.purpose})"]
        for name in self.names:
            lines.append(f"  grant {describe_san(name)}" + (" (added by the CA)" if name in self.added else " (requested)"))
        lines += [f"  drop  {describe_san(name)} (requested, not granted)" for name in self.dropped]
        if not self.names:
            lines.append("  no alternative names")
        if self.ignored:
            lines.append(f"ignored (the profile decides): {', '.join(self.ignored)}")
        return lines


def requested_names(request: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    """The alternative names a CSR asks for."""
    names = extension_value(request, x509.SubjectAlternativeName)
    return unique_names(check_san_count(list(names), "the CSR")) if names else []


def review(
    request: x509.CertificateSigningRequest,
    profile: str | Profile,
    *,
    drop: Iterable[str] = (),
    replace: bool = False,
    **names: Iterable[str],
) -> Grant:
    """What the CA will grant for ``request`` under ``profile``: see the module's docstring.

    ``names`` (``dns``, ``ip``, ``email`` and ``uri``: the fields of :class:`~kittylab.pki.names.AltNames`)
    are granted besides the requested ones.
    ``drop`` names requested SANs to leave out (``email:ceo@acme.example``, ``DNS:wiki.acme.example``);
    ``replace`` leaves out every requested one, so only the names given here are granted.
    """
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    check_key_strength(request.public_key())
    subject = Subject.from_name(request.subject)
    # RFC 5280, 4.1.2.6: an email address in the subject must also be an rfc822Name in the SAN.
    subject_emails = make_sans(email=[subject.email]) if subject.email else []
    requested = unique_names(requested_names(request) + subject_emails)
    to_drop = unique_names([parse_san(text) for text in drop])
    unknown = [describe_san(n) for n in to_drop if n not in requested]
    if unknown:
        raise KittylabError(f"the CSR does not ask for {', '.join(unknown)}: it asks for "
                            f"{', '.join(describe_san(n) for n in requested) or 'no alternative names'}")
    dropped = list(requested) if replace else to_drop
    added = make_sans(**names, wildcard=chosen.name == "server")
    kept = [n for n in requested if n not in dropped and n not in subject_emails]
    granted = chosen.check_names(unique_names(kept + added))
    if subject.email and subject_emails[0] in dropped:
        subject = replaced(subject, email="")  # its email, dropped as a name, leaves the subject too
    granted = unique_names(granted + [n for n in subject_emails if n not in dropped])
    kept += [n for n in subject_emails if n not in dropped]
    return Grant(chosen, subject, describe_key(request.public_key()), granted, requested, dropped,
                 [n for n in added if n not in kept], _ignored(request))


def _ignored(request: x509.CertificateSigningRequest) -> list[str]:
    return [extension.oid._name for extension in request.extensions
            if not isinstance(extension.value, x509.SubjectAlternativeName)]


def summarize_request(request: x509.CertificateSigningRequest) -> dict:
    """What a CSR asks for, JSON-ready (``openssl req -text -noout -verify``): to read before signing."""
    return {
        "kind": "certificate signing request",
        "subject": readable_name(request.subject),
        "key": describe_key(request.public_key()),
        "requested_names": [describe_san(n) for n in requested_names(request)],
        "requested_extensions": _ignored(request),
        "signature": "valid (the requester holds the key)",
    }
