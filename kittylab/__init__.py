"""kittylab: run your own small certificate authority and issue client certificates for mutual TLS.

The few nouns: :class:`Workspace` (a folder with a CA, its store and files),
:class:`CertificateAuthority`, :class:`Subject`, and functions for keys, CSRs and p12 files.
"""

import sys as _sys

from .errors import KittylabError
from .pki.ca import CertificateAuthority, Revocation, load_certificate
from .pki.crl import REASONS, load_crl
from .pki.csr import load_csr, make_csr, save_csr
from .pki.facts import Record
from .pki.keys import KEY_KINDS, generate_key, load_key, save_key
from .pki.names import Subject, make_sans, parse_san
from .pki.pkcs12 import export_p12, load_p12
from .pki.verify import Verification
from .workspace.workspace import Issued, Workspace

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
    """Inside IPython (a notebook), display certificates, keys, CRLs and records as cards (kittylab.render.display)."""
    ipython = _sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        from .render.display import register_formatters

        register_formatters(shell)


_show_as_cards_in_ipython()


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext kittylab``: show certificates, keys, CSRs, CRLs and records as cards (``import kittylab`` does it too)."""
    from .render.display import register_formatters

    register_formatters(ipython)


def __getattr__(name: str):
    """``kittylab.roster`` (the workshop's roster, as the README has long spelled it) without importing it up front."""
    if name == "roster":
        from .workshop import roster

        return roster
    raise AttributeError(f"module 'kittylab' has no attribute {name!r}")
