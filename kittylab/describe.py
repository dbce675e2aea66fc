"""What a certificate says, as plain data: the one summary that ``show``, the cards and the JSON share."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .keys import describe_key
from .store import Record, serial_hex
from .subjects import describe_san

_KEY_USAGES = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)


def key_usages(certificate: x509.Certificate) -> list[str]:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [label for attribute, label in _KEY_USAGES if getattr(usage, attribute)]


def extended_key_usages(certificate: x509.Certificate) -> list[str]:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [oid._name for oid in usage]


def alternative_names(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [describe_san(name) for name in names]


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def summarize(certificate: x509.Certificate, record: Record | None = None) -> dict:
    """The facts a person checks about a certificate, JSON-ready; the status comes from the store."""
    summary = {
        "name": record.name if record else None,
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": serial_hex(certificate.serial_number),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "key": describe_key(certificate.public_key()),
        "ca": is_ca(certificate),
        "key_usage": key_usages(certificate),
        "extended_key_usage": extended_key_usages(certificate),
        "subject_alternative_names": alternative_names(certificate),
        "fingerprint_sha256": certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
        "fingerprint_sha1": certificate.fingerprint(hashes.SHA1()).hex(":").upper(),  # noqa: S303 - shown, as browsers do
    }
    if record is not None:
        summary.update(
            profile=record.profile,
            status=record.status(),
            revoked_at=record.revoked_at.isoformat() if record.revoked_at else None,
            reason=record.reason,
        )
    return summary


def format_summary(summary: dict) -> str:
    """The summary as aligned ``label: value`` lines for a terminal."""
    labels = [
        ("name", "Name"),
        ("status", "Status"),
        ("profile", "Profile"),
        ("subject", "Subject"),
        ("issuer", "Issuer"),
        ("serial", "Serial"),
        ("not_before", "Not before"),
        ("not_after", "Not after"),
        ("key", "Key"),
        ("key_usage", "Key usage"),
        ("extended_key_usage", "Extended key usage"),
        ("subject_alternative_names", "Alternative names"),
        ("revoked_at", "Revoked at"),
        ("reason", "Reason"),
        ("fingerprint_sha256", "SHA-256 fingerprint"),
        ("fingerprint_sha1", "SHA-1 fingerprint"),
    ]
    width = max(len(label) for _, label in labels)
    lines = []
    for key, label in labels:
        value = summary.get(key)
        if value in (None, [], ""):
            continue
        if isinstance(value, list):
            value = ", ".join(value)
        lines.append(f"{label + ':':<{width + 1}} {value}")
    return "\n".join(lines)
