"""Reading one X.509 extension from a certificate, CSR, CRL, CRL entry or OCSP response."""

from __future__ import annotations

from typing import TypeVar

from cryptography import x509

Value = TypeVar("Value", bound=x509.ExtensionType)


def extension_value(holder, kind: type[Value]) -> Value | None:
    """The value of ``holder``'s extension of class ``kind``, or None where it has none."""
    try:
        return holder.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def is_ca(certificate: x509.Certificate) -> bool:
    """Whether ``certificate`` says it is a CA (basicConstraints CA:TRUE)."""
    constraints = extension_value(certificate, x509.BasicConstraints)
    return constraints is not None and constraints.ca
