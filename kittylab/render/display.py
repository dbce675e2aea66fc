"""Cards: what kittylab returns, shown as a person checks it (HTML in JupyterLab, text elsewhere).

Every certificate, CSR, key, CRL, p12 bundle, :class:`~kittylab.Issued`, :class:`~kittylab.Record`
and :class:`~kittylab.Verification` becomes a :class:`Card`: a title, a status in colour and
``label: value`` rows. The HTML and the plain text are two renderings of the same card, so they
never disagree; the plain text changes between runs only in serials, dates and fingerprints
(nbval compares it). A private key is never shown: its card says so and shows the public part.

Inside IPython, ``import kittylab`` calls :func:`register_formatters`, so objects display as
cards without any call; outside, ``card(obj)`` gives the same.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..errors import KittylabError
from ..pki.crl import crl_status, entry_reason
from ..pki.extensions import extension_value
from ..pki.facts import (
    UNCHECKED,
    Record,
    access_urls,
    alternative_names,
    certificate_status,
    extended_key_usages,
    fingerprint,
    is_ca,
    key_usages,
    serial_hex,
    when,
)
from ..pki.keys import describe_key
from ..pki.names import describe_san, readable_name
from ..pki.pkcs12 import P12Contents
from ..pki.verify import Verification
from ..workspace.workspace import Issued
from .templates import macro

#: Status colours: valid green, expiring amber, expired grey, revoked red; in date but unchecked (a file's
#: certificate, which no workspace vouches for) neutral.
STATUS_COLOURS = {
    "valid": "#2e7d32",
    "ok": "#2e7d32",
    "current": "#2e7d32",
    "expiring": "#e69500",
    "expiring, unchecked": "#e69500",
    "expired": "#757575",
    "not-yet-valid": "#1565c0",
    "superseded": "#757575",
    "revoked": "#c62828",
    "failed": "#c62828",
    "bad signature": "#c62828",
}
_NEUTRAL = "#546e7a"
#: A badge's text is white, but black on amber (white on amber is 2.2:1, below WCAG AA).
BADGE_TEXT = {"expiring": "#000", "expiring, unchecked": "#000"}
_REVOKED_SHOWN = 20


@dataclass(frozen=True)
class Validity:
    """A period, drawn as dates and a bar showing how much of it is used."""

    start: dt.datetime
    end: dt.datetime
    now: dt.datetime

    @property
    def days(self) -> int:
        return round((self.end - self.start) / dt.timedelta(days=1))

    @property
    def used_percent(self) -> int:
        total = (self.end - self.start).total_seconds()
        spent = (self.now - self.start).total_seconds()
        return 100 if total <= 0 else min(100, max(0, math.floor(100 * spent / total)))

    @property
    def days_left(self) -> int:
        return max(0, math.floor((self.end - self.now) / dt.timedelta(days=1)))

    def text(self) -> str:
        return f"{when(self.start)} to {when(self.end)} ({self.used_percent}% of {self.days} days used)"


@dataclass
class Card:
    """A titled list of facts with a status; ``cards`` nests others (a p12's certificate)."""

    kind: str
    title: str
    status: str | None = None
    #: (label, value): value is text, a :class:`Validity`, or a list of lines.
    rows: list[tuple[str, Any]] = field(default_factory=list)
    cards: list["Card"] = field(default_factory=list)

    def html(self) -> str:
        return _card_html(self)

    def text(self) -> str:
        return "\n".join(_card_lines(self))

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return self.text()


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.timezone.utc)


# -- building cards ------------------------------------------------------------------------


def certificate_card(
    certificate: x509.Certificate, record: Record | None = None, *, now: dt.datetime | None = None
) -> Card:
    """A certificate's facts; with its store record, also its name, profile and revocation."""
    now = _now(now)
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    status = certificate_status(certificate, record, now=now)
    kind = "CA certificate" if is_ca(certificate) else "Certificate"
    title = f"{kind} {record.name}" if record is not None else kind
    rows: list[tuple[str, Any]] = []
    if record is not None:
        rows.append(("Profile", record.profile))
    rows += [
        ("Subject", readable_name(certificate.subject)),
        ("Issuer", readable_name(certificate.issuer)),
        ("Validity", Validity(start, end, now)),
        ("Key", describe_key(certificate.public_key())),
        ("Key usage", ", ".join(key_usages(certificate))),
        ("Extended key usage", ", ".join(extended_key_usages(certificate))),
        ("Alternative names", ", ".join(alternative_names(certificate))),
    ]
    labels = {"crl": "CRL", "ocsp": "OCSP", "ca_issuers": "CA issuers"}
    rows += [(labels[key], ", ".join(urls)) for key, urls in access_urls(certificate).items() if urls]
    if record is not None and record.revoked_at is not None:
        rows.append(("Revoked", f"{when(record.revoked_at)} ({record.reason or 'unspecified'})"))
    if status in UNCHECKED.values():
        rows.append(("Revocation", "not checked: no workspace knows this certificate (its CA's CRL says whether it is revoked)"))
    rows += [
        ("Serial", serial_hex(certificate.serial_number)),
        ("SHA-256", fingerprint(certificate)),
    ]
    return Card("certificate", title, status, rows)


def record_card(record: Record, *, now: dt.datetime | None = None) -> Card:
    return certificate_card(record.certificate, record, now=now)


#: Where a generated p12 password is read, in code (the workbench shows it once, below its card).
P12_PASSWORD_IN_CODE = "generated: read it once from .p12_password"


def issued_card(issued: Issued, *, now: dt.datetime | None = None, password_note: str = P12_PASSWORD_IN_CODE) -> Card:
    """The new certificate, and the files written for it (named, never shown); ``password_note``
    says where a generated p12 password is shown."""
    card = certificate_card(issued.certificate, issued.record, now=now)
    files = ", ".join(path.name for _, path in sorted(issued.files.items()))
    card.rows.insert(1, ("Files", files))
    if issued.p12_password:
        card.rows.insert(2, ("p12 password", password_note))
    return card


def csr_card(csr: x509.CertificateSigningRequest) -> Card:
    """A request's subject, key and the names it asks for; whether its signature holds."""
    alternative = ", ".join(describe_san(name) for name in extension_value(csr, x509.SubjectAlternativeName) or [])
    status = "valid" if csr.is_signature_valid else "bad signature"
    rows = [
        ("Subject", readable_name(csr.subject)),
        ("Key", describe_key(csr.public_key())),
        ("Alternative names", alternative),
        ("Signature", "valid (the requester holds the key)" if csr.is_signature_valid else "does not verify"),
    ]
    return Card("csr", "Certificate signing request", status, rows)


def key_card(key: Any) -> Card:
    """A key's type and fingerprint; for a private key only its public part (it says so)."""
    private = hasattr(key, "private_bytes")
    public = key.public_key() if private else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    rows = [("Type", describe_key(public))]
    if isinstance(public, rsa.RSAPublicKey):
        rows.append(("Size", f"{public.key_size} bits"))
    elif isinstance(public, ec.EllipticCurvePublicKey):
        rows.append(("Size", f"{public.curve.key_size} bits ({public.curve.name})"))
    else:
        rows.append(("Size", "256 bits"))
    rows.append(("Public key SHA-256", digest.finalize().hex(":").upper()))
    title = "Private key (not shown)" if private else "Public key"
    return Card("key", title, None, rows)


def crl_card(crl: x509.CertificateRevocationList, *, now: dt.datetime | None = None) -> Card:
    """Who signed the CRL, until when servers accept it, and what it revokes."""
    now = _now(now)
    next_update = crl.next_update_utc
    status = crl_status(next_update, now=now)
    number = extension_value(crl, x509.CRLNumber)
    entries = list(crl)
    listed = [
        f"{serial_hex(entry.serial_number)} on {when(entry.revocation_date_utc)} ({_reason(entry)})"
        for entry in entries[:_REVOKED_SHOWN]
    ]
    if len(entries) > _REVOKED_SHOWN:
        listed.append(f"... and {len(entries) - _REVOKED_SHOWN} more")
    rows: list[tuple[str, Any]] = [
        ("Issuer", readable_name(crl.issuer)),
        ("This update", when(crl.last_update_utc)),
        ("Next update", when(next_update) if next_update else ""),
        ("CRL number", str(number.crl_number) if number else ""),
        ("Revoked", [f"{len(entries)} certificate{'s' if len(entries) != 1 else ''}", *listed]),
    ]
    return Card("crl", "Certificate revocation list", status, rows)


def _reason(entry: x509.RevokedCertificate) -> str:
    return entry_reason(entry) or "unspecified"


def p12_card(contents: P12Contents, *, now: dt.datetime | None = None) -> Card:
    """What a p12 bundle holds: its certificate and chain; the private key only by type."""
    rows = [
        ("Friendly name", contents.friendly_name or ""),
        ("Private key", f"{describe_key(contents.key.public_key())} (private key, not shown)"),
        ("Chain", ", ".join(readable_name(c.subject) for c in contents.chain)),
    ]
    card = Card("p12", "PKCS#12 bundle", None, rows)
    card.cards.append(certificate_card(contents.certificate, now=now))
    return card


def verification_card(verification: Verification) -> Card:
    rows = [(check.name, f"{'ok' if check.ok else 'FAIL'}: {check.detail}") for check in verification.checks]
    return Card("verification", "Verification", "ok" if verification.ok else "failed", rows)


_PUBLIC_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)
_PRIVATE_KEYS = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
_BUILDERS: list[tuple[tuple[type, ...], Callable[[Any], Card]]] = [
    ((x509.Certificate,), certificate_card),
    ((x509.CertificateSigningRequest,), csr_card),
    ((x509.CertificateRevocationList,), crl_card),
    (_PUBLIC_KEYS + _PRIVATE_KEYS, key_card),
    ((P12Contents,), p12_card),
    ((Issued,), issued_card),
    ((Record,), record_card),
    ((Verification,), verification_card),
]


def card(obj: Any) -> Card:
    """The card of any object kittylab returns (certificate, CSR, key, CRL, p12, Issued, Record, Verification)."""
    for types, build in _BUILDERS:
        if isinstance(obj, types):
            return build(obj)
    raise TypeError(f"kittylab has no card for {type(obj).__name__}")


def to_html(obj: Any) -> str:
    return card(obj).html()


def to_text(obj: Any) -> str:
    return card(obj).text()


# -- rendering -----------------------------------------------------------------------------


def _label_width(card: Card) -> int:
    return max((len(label) for label, _ in card.rows), default=0) + 1


def _card_lines(card: Card, indent: str = "") -> list[str]:
    status = f"  [{card.status}]" if card.status else ""
    lines = [f"{indent}{card.title}{status}"]
    width = _label_width(card)
    for label, value in card.rows:
        if value in ("", None):
            continue
        shown = value.text() if isinstance(value, Validity) else value
        first, *more = shown if isinstance(shown, list) else [shown]
        lines.append(f"{indent}  {label + ':':<{width}} {first}")
        lines += [f"{indent}  {'':<{width}}   {line}" for line in more]
    for inner in card.cards:
        lines += _card_lines(inner, indent + "  ")
    return lines


def status_badge(status: str) -> str:
    """A coloured pill with the status, carrying the classes ``kl-status kl-status-STATUS``."""
    return macro("macros.html", "status_badge", status=status, background=_colour(status), colour=_badge_text(status))


def _colour(status: str | None) -> str:
    return STATUS_COLOURS.get(status or "", _NEUTRAL)


def _badge_text(status: str | None) -> str:
    return BADGE_TEXT.get(status or "", "#fff")


_MONOSPACE = ("Serial", "SHA-256", "Public key SHA-256")


def _card_html(card: Card) -> str:
    return macro(
        "card.html",
        "card",
        card=card,
        rows=[(label, value, label in _MONOSPACE) for label, value in card.rows if value not in ("", None)],
        colour=_colour(card.status),
        badge_text=_badge_text(card.status),
        inner="".join(_card_html(inner) for inner in card.cards),
    )


# -- IPython -------------------------------------------------------------------------------


def _display_types() -> list[type]:
    """The classes to register. IPython looks formatters up along the MRO, and cryptography's key
    classes are ABCs whose concrete classes are only registered virtually: the concrete ones are
    taken from keys made here with the public API (about 10 ms, once per kernel)."""
    private_keys = [
        rsa.generate_private_key(public_exponent=65537, key_size=1024),  # the smallest it makes: only its type is used
        ec.generate_private_key(ec.SECP256R1()),
        ed25519.Ed25519PrivateKey.generate(),
    ]
    concrete = [type(key) for key in private_keys] + [type(key.public_key()) for key in private_keys]
    return [cls for types, _ in _BUILDERS for cls in types] + concrete


def register_formatters(ip: Any = None) -> bool:
    """Show kittylab's objects and cryptography's certificates, CSRs, CRLs and keys as cards in IPython.

    Returns False outside IPython. ``import kittylab`` calls this by itself inside IPython.
    """
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None:
        return False
    formatters = ip.display_formatter.formatters
    for cls in _display_types():
        formatters["text/html"].for_type(cls, to_html)
        formatters["text/plain"].for_type(cls, _pretty)
    ip.set_custom_exc((KittylabError,), _one_line)
    return True


def _one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
    """A refusal in a notebook cell is its one line (in red, as a traceback's last line), as on the
    command line: no traceback (running a cell twice, a typo in a name: the message says what to do).
    The cell still fails, as an error output the front end shows: IPython's public ``showtraceback``
    shows it, and the exception's ``_render_traceback_`` (IPython's documented way for an exception to
    give its own traceback) is that line. Returns it, as set_custom_exc's handlers do. Other exceptions
    keep their tracebacks."""
    line = [f"\x1b[31m{etype.__name__}: {value}\x1b[0m"]
    value._render_traceback_ = lambda: line  # type: ignore[attr-defined]
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    return line


def _pretty(obj: Any, printer: Any, cycle: bool) -> None:
    printer.text(to_text(obj))
