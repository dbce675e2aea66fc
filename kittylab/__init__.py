"""kittylab: run your own small certificate authority and issue client certificates for mutual TLS.

The few nouns: :class:`Workspace` (a folder with a CA, its store and files),
:class:`CertificateAuthority`, :class:`Subject`, and functions for keys, CSRs and p12 files.
"""

import sys as _sys

from .ca import CertificateAuthority, Revocation, load_certificate
from .csr import load_csr, make_csr, save_csr
from .errors import KittylabError
from .keys import KEY_KINDS, generate_key, load_key, save_key
from .pkcs12 import export_p12, load_p12
from .revocation import REASONS, load_crl
from .store import Record
from .subjects import Subject, make_sans, parse_san
from .verify import Verification
from .workspace import Issued, Workspace

__version__ = "0.1.0"

__all__ = [
    "KEY_KINDS",
    "REASONS",
    "CertificateAuthority",
    "Issued",
    "KittylabError",
    "Record",
    "Revocation",
    "Subject",
    "Verification",
    "Workspace",
    "export_p12",
    "generate_key",
    "load_certificate",
    "load_crl",
    "load_csr",
    "load_key",
    "load_p12",
    "make_csr",
    "make_sans",
    "parse_san",
    "save_csr",
    "save_key",
]


def _show_as_cards_in_ipython() -> None:
    """Inside IPython (a notebook), display certificates, keys, CRLs and records as cards (kittylab.display)."""
    ipython = _sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        from .display import register_formatters

        register_formatters(shell)


_show_as_cards_in_ipython()
