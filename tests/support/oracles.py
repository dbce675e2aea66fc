"""Independent judges of what kittylab makes: pkilint (DigiCert's RFC 5280 linter), OpenSSL's
``verify`` and pyhanko-certvalidator (a second path validator, with its own RFC 5280 code).

pkilint runs in-process through its console programs' own ``main`` (the same code as
``lint_pkix_cert lint ...``, without starting a Python per file).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import warnings
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pkilint.bin import (
    lint_cabf_serverauth_cert,
    lint_crl,
    lint_ocsp_response,
    lint_pkix_cert,
    lint_pkix_signer_signee_cert_chain,
)
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    PathBuildingError,
    PathValidationError,
    ValidationError,
)
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

_LINTERS = {
    "cert": (lint_pkix_cert, []),
    "crl": (lint_crl, ["-t", "CRL", "-p", "PKIX"]),
    "ocsp": (lint_ocsp_response, []),
    "chain": (lint_pkix_signer_signee_cert_chain, []),
    # The CA/B Forum's web-PKI profiles: not kittylab's target (the README lists what it does not meet).
    "cabf-leaf": (lint_cabf_serverauth_cert, ["-d"]),
    "cabf-root": (lint_cabf_serverauth_cert, ["-t", "ROOT-CA"]),
    "cabf-crl": (lint_crl, ["-t", "CRL", "-p", "BR"]),
}
#: What pyhanko calls each TLS purpose.
_EKU = {"client": "client_auth", "server": "server_auth"}


def lint(kind: str, *paths: Path) -> list[str]:
    """pkilint's findings at WARNING or above for a ``cert``, ``crl``, ``ocsp`` response or a ``chain``
    (issuer, subject), or by the CA/B Forum's rules (``cabf-leaf`` for a leaf or an intermediate,
    ``cabf-root``, ``cabf-crl``), as ``SEVERITY code: message`` lines."""
    module, options = _LINTERS[kind]
    output = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(output):
        # Its argparse.FileType files are closed by the garbage collector, with a ResourceWarning.
        warnings.simplefilter("ignore", ResourceWarning)
        module.main(["lint", *options, "-s", "WARNING", "-f", "JSON", *map(str, paths)])
    results = json.loads(output.getvalue())["results"]
    return [
        f"{finding['severity']} {finding['code']}: {finding.get('message') or ''}".rstrip(": ")
        for result in results
        for finding in result["finding_descriptions"]
    ]


def _der(data: bytes) -> bytes:
    return pem.unarmor(data)[2] if pem.detect(data) else data


def pyhanko_verdict(
    leaf: bytes,
    *,
    roots: list[bytes],
    intermediates: list[bytes] = (),
    crls: list[bytes] = (),
    purpose: str | None = None,
    fetch: bool = False,
) -> tuple[bool, str]:
    """(accepted, why) from pyhanko-certvalidator with revocation *required* at every level:
    from ``crls`` given, or (``fetch``) from the URLs in the certificates (CDP and AIA)."""
    return asyncio.run(_pyhanko(leaf, roots, intermediates, crls, purpose, fetch))


async def _pyhanko(leaf, roots, intermediates, crls, purpose, fetch) -> tuple[bool, str]:
    if fetch:
        async with AIOHttpFetcherBackend() as fetchers:  # closes its HTTP session when done
            return await _pyhanko_with(leaf, roots, intermediates, crls, purpose, fetchers)
    return await _pyhanko_with(leaf, roots, intermediates, crls, purpose, None)


async def _pyhanko_with(leaf, roots, intermediates, crls, purpose, fetchers) -> tuple[bool, str]:
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(_der(r)) for r in roots],
        other_certs=[asn1_x509.Certificate.load(_der(c)) for c in intermediates],
        crls=[asn1_crl.CertificateList.load(_der(c)) for c in crls],
        revocation_mode="require",
        allow_fetching=fetchers is not None,
        fetchers=fetchers,
    )
    validator = CertificateValidator(asn1_x509.Certificate.load(_der(leaf)), validation_context=context)
    try:
        if purpose is None:
            await validator.async_validate_path()
        else:
            await validator.async_validate_usage({"digital_signature"}, {_EKU[purpose]})
    except (PathBuildingError, PathValidationError, ValidationError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, "accepted"
