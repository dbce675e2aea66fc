"""The participant's handout: one self-contained HTML page with their certificate and how to use it.

It holds the p12 password, so it is written 0600 and given to that participant only. Everything
taken from the roster or the certificate is HTML-escaped: a participant named
``<script>`` gets a page that shows those characters, not one that runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import KittylabError
from ..pki.facts import Record, summarize, when
from .templates import macro, render

#: The address participants open when the teacher gives none: picture-server on the port that
#: ``kittylab serve`` and ``kittylab webconfig`` use by default.
DEFAULT_URL = "https://localhost:8443/"


def check_url(url: str) -> str:
    """The workshop's address as given, if it is an ``https://`` URL with a host; else one clear line."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme.lower() != "https" or not parts.hostname or port == -1 or " " in url.strip():
        raise KittylabError(
            f"the workshop's address {url!r} is not an https:// URL with a host: give it as https://HOST:8443/"
            " (participants' browsers send their certificate only over HTTPS)"
        )
    return url.strip()


@dataclass(frozen=True)
class HandoutInfo:
    """What a handout needs besides the certificate's record."""

    full_name: str
    email: str
    title: str
    url: str
    ca_name: str
    p12_file: str | None
    p12_password: str | None
    legacy_p12: bool = False
    #: The CA certificate's SHA-256 fingerprint, to check before trusting it.
    ca_fingerprint: str = ""
    #: True when the teacher gave no address: ``url`` is a placeholder, and the page says so.
    url_placeholder: bool = False
    #: The hosts the CA may vouch for (its name constraints), or empty when it may vouch for any site.
    ca_permitted: tuple[str, ...] = ()


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 1.6rem; } h3 { font-size: 1rem; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { text-align: left; padding: .2rem .8rem .2rem 0; vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; width: 11rem; } code, .secret, .fingerprint { font-family: ui-monospace, monospace; }
code, a { overflow-wrap: anywhere; } .line { display: block; }
.secret { font-size: 1.2rem; background: #fff6d5; border: 1px solid #e0c050; padding: .3rem .6rem; display: inline-block; }
.url { font-size: 1.1rem; } .note { color: #555; font-size: .9rem; }
@page { margin: 15mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10.5pt; }
  .secret { border: 2px solid #000; background: none; }
  h2 { break-after: avoid; } li, tr { break-inside: avoid; }
}
"""


def fingerprint_lines(value: str) -> list[str]:
    """A colon-separated fingerprint in lines of eight bytes, so that it fits on paper."""
    octets = value.split(":")
    return [":".join(octets[i:i + 8]) for i in range(0, len(octets), 8)]


def subject_lines(record: Record) -> list[str]:
    """The subject as a person reads it: one attribute per line, no RFC 4514 escapes (``OU = Research, Development``)."""
    return [f"{attribute.rfc4514_attribute_name} = {attribute.value}" for attribute in reversed(list(record.certificate.subject))]


def render_handout(record: Record, info: HandoutInfo) -> str:
    """The handout page for one participant, as a complete HTML document."""
    summary = summarize(record.certificate, record)
    details = [
        ("Name", info.full_name),
        ("Email", info.email),
        ("Subject", subject_lines(record)),
        ("Issued by", info.ca_name),
        ("Serial number", summary["serial"]),
        ("Valid from", when(record.certificate.not_valid_before_utc)),
        ("Valid until", when(record.certificate.not_valid_after_utc)),
        ("Key", summary["key"]),
        ("SHA-256 fingerprint", fingerprint_lines(summary["fingerprint_sha256"])),
    ]
    return render("handout.html", info=info, details=details, style=_STYLE, p12=info.p12_file or "",
                  ca_file=f"{info.ca_name}.crt", ca_fingerprint=fingerprint_lines(info.ca_fingerprint))


class HandoutPreview:
    """A handout shown in a notebook with its password hidden (a teacher's screen is often projected)."""

    def __init__(self, path: Path, full_name: str) -> None:
        self.path = Path(path)
        self.full_name = full_name

    def page(self) -> str:
        """The handout's HTML, the password replaced by a note."""
        return _PASSWORD.sub(r"\1(hidden in this preview: see the handout file)\2", self.path.read_text(encoding="utf-8"))

    def _repr_html_(self) -> str:
        return macro("previews.html", "handout_preview", full_name=self.full_name, page=self.page())

    def __repr__(self) -> str:
        return f"Handout for {self.full_name}, password hidden: {self.path}"


_PASSWORD = re.compile(r'(<p class="secret kl-handout-password">)[^<]*(</p>)')
