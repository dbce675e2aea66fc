"""The participant's handout: one self-contained HTML page with their certificate and how to use it.

It holds the p12 password, so it is written 0600 and given to that participant only. Everything
taken from the roster or the certificate is HTML-escaped: a participant named
``<script>`` gets a page that shows those characters, not one that runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

from ..pki.facts import Record, summarize

#: The address participants open when the teacher gives none: picture-server on the port that
#: ``kittylab serve`` and ``kittylab webconfig`` use by default.
DEFAULT_URL = "https://localhost:8443/"


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


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 1.6rem; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .2rem .8rem .2rem 0; vertical-align: top; }
th { font-weight: 600; white-space: nowrap; } code, .secret { font-family: ui-monospace, monospace; }
.secret { font-size: 1.2rem; background: #fff6d5; border: 1px solid #e0c050; padding: .3rem .6rem; }
.url { font-size: 1.1rem; } .note { color: #555; font-size: .9rem; }
@media print { .secret { border: 2px solid #000; } }
"""


def render_handout(record: Record, info: HandoutInfo) -> str:
    """The handout page for one participant, as a complete HTML document."""
    summary = summarize(record.certificate, record)
    details = [
        ("Name", info.full_name),
        ("Email", info.email),
        ("Subject", summary["subject"]),
        ("Issued by", summary["issuer"]),
        ("Serial number", summary["serial"]),
        ("Valid from", _day(summary["not_before"])),
        ("Valid until", _day(summary["not_after"])),
        ("Key", summary["key"]),
        ("SHA-256 fingerprint", summary["fingerprint_sha256"]),
    ]
    rows = "\n".join(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in details if value)
    url = escape(info.url)
    ca_file = escape(f"{info.ca_name}.crt")
    if info.p12_file:
        p12 = escape(info.p12_file)
        password = f'<p>The password of <code>{p12}</code>:</p>\n<p class="secret kl-handout-password">{escape(info.p12_password or "")}</p>'
        flavour = (
            "It is a legacy p12 (3DES), which also opens in older macOS and Windows versions."
            if info.legacy_p12
            else "It is a modern p12 (AES-256): if an old macOS or Windows refuses the password, ask for a legacy one."
        )
    else:
        p12 = ""
        password = "<p>No p12 file was made for you: ask your teacher for one.</p>"
        flavour = ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(info.title)}: certificate for {escape(info.full_name)}</title>
<style>{_STYLE}</style>
</head>
<body class="kl-handout">
<h1>{escape(info.title)}: your client certificate</h1>
<p>Hello {escape(info.full_name)}! With this certificate your browser proves who you are to the workshop's
server (mutual TLS). Keep the password to yourself.</p>

<h2>Your certificate</h2>
<table>
{rows}
</table>

<h2>Your files and password</h2>
<p><code>{p12}</code> holds your private key and certificate; <code>{ca_file}</code> is the workshop's
certificate authority, which signed the server's certificate too. {flavour}</p>
{password}

<h2>Import it into your browser</h2>
<h3>Firefox (every system)</h3>
<ol>
<li>Settings &rarr; Privacy &amp; Security &rarr; Certificates &rarr; <b>View Certificates&hellip;</b></li>
<li>Tab <b>Your Certificates</b> &rarr; <b>Import&hellip;</b> &rarr; choose <code>{p12}</code> &rarr; enter the password above.</li>
<li>Tab <b>Authorities</b> &rarr; <b>Import&hellip;</b> &rarr; choose <code>{ca_file}</code> &rarr; tick
&ldquo;Trust this CA to identify websites&rdquo;.</li>
</ol>
<h3>Chrome, Edge and Chromium</h3>
<ol>
<li>On Windows and macOS they use the system's store: follow the Windows or macOS steps below.</li>
<li>On Linux: Settings &rarr; Privacy and security &rarr; Security &rarr; <b>Manage certificates</b>
&rarr; <b>Your certificates</b> &rarr; <b>Import</b> &rarr; choose <code>{p12}</code> and enter the password;
then <b>Authorities</b> &rarr; <b>Import</b> &rarr; <code>{ca_file}</code> &rarr; trust it for websites.</li>
</ol>
<h3>macOS (Safari, Chrome)</h3>
<ol>
<li>Double-click <code>{p12}</code>: Keychain Access opens; add it to the <b>login</b> keychain and enter the password.</li>
<li>Double-click <code>{ca_file}</code>, then in Keychain Access open it, expand <b>Trust</b> and set
&ldquo;When using this certificate&rdquo; to <b>Always Trust</b>.</li>
</ol>
<h3>Windows (Edge, Chrome)</h3>
<ol>
<li>Double-click <code>{p12}</code>: the Certificate Import Wizard opens; choose <b>Current User</b>,
enter the password, let it choose the store automatically.</li>
<li>Double-click <code>{ca_file}</code> &rarr; <b>Install Certificate&hellip;</b> &rarr; Current User &rarr;
place it in <b>Trusted Root Certification Authorities</b>.</li>
</ol>

<h2>Open the workshop's page</h2>
<p class="url"><a href="{url}">{url}</a></p>
<p>When the browser asks which certificate to use, choose the one named <b>{escape(record.name)}</b>
(issued by {escape(info.ca_name)}). Restart the browser if it does not ask.</p>
<p class="note">At the end of the workshop your certificate is revoked: the server will then refuse it.
You may delete it from your browser afterwards.</p>
</body>
</html>
"""


def _day(iso: str) -> str:
    """``2026-11-27T00:17:00+00:00`` as ``2026-11-27 00:17 UTC``."""
    return iso[:16].replace("T", " ") + " UTC"


class HandoutPreview:
    """A handout shown in a notebook with its password hidden (a teacher's screen is often projected)."""

    def __init__(self, path: Path, full_name: str) -> None:
        self.path = Path(path)
        self.full_name = full_name

    def page(self) -> str:
        """The handout's HTML, the password replaced by a note."""
        return _PASSWORD.sub(r"\1(hidden in this preview: see the handout file)\2", self.path.read_text(encoding="utf-8"))

    def _repr_html_(self) -> str:
        return (
            f'<iframe class="kl-handout-preview" title="handout for {escape(self.full_name)}" '
            f'style="width:100%;height:480px;border:1px solid #ccc" srcdoc="{escape(self.page(), quote=True)}"></iframe>'
        )

    def __repr__(self) -> str:
        return f"Handout for {self.full_name}, password hidden: {self.path}"


_PASSWORD = re.compile(r'(<p class="secret kl-handout-password">)[^<]*(</p>)')
