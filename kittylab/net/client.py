"""eager-client: fetch a page over HTTPS with a client certificate, and say plainly why a server refused.

``fetch(url, p12="eager-client.p12", password=..., ca="kitty-ca.crt")`` returns a :class:`Response`
(status, body, headers, the server's identity). A refusal raises :class:`Refused` with the reason
(no certificate, revoked, expired, unknown CA); a server the client does not trust raises
:class:`ServerNotTrusted`. Both are :class:`~kittylab.errors.KittylabError`: one line, no traceback.

Under TLS 1.3 a server that rejects the client certificate says so only after the handshake has
"succeeded" on the client's side. If the client sends its request at once, the server's close can
reset the connection and swallow the alert that names the reason. So after a TLS 1.3 handshake
the client waits (briefly) for the server's first message before writing: a session ticket means
the certificate was accepted, an alert says why it was not.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import select
import shlex
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import KittylabError
from ..pki.ca import load_certificate
from ..pki.files import read_input
from ..pki.keys import PrivateKey, load_key
from ..pki.pkcs12 import load_p12
from ..render.templates import macro

#: How long to wait, after a TLS 1.3 handshake, for the server to accept or refuse the certificate.
VERDICT_WAIT = 1.0

# TLS alerts a server sends when it turns a client certificate down: (reason code, words).
_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": ("no-certificate", "no client certificate was sent"),
    "SSLV3_ALERT_CERTIFICATE_REVOKED": ("revoked", "certificate revoked"),
    "TLSV1_ALERT_UNKNOWN_CA": ("unknown-ca", "unknown CA (the server does not trust the CA that issued the client certificate)"),
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": ("expired", "certificate expired (or not yet valid)"),
    "SSLV3_ALERT_BAD_CERTIFICATE": ("rejected", "the server rejected the client certificate"),
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": ("rejected", "the server does not accept this kind of certificate (is it a client certificate?)"),
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": ("rejected", "the server rejected the client certificate"),
    "TLSV1_ALERT_ACCESS_DENIED": ("rejected", "access denied"),
}
# The pages nginx answers with when ``ssl_verify_client on`` turns a client down.
_NGINX_PAGES = {
    "No required SSL certificate was sent": ("no-certificate", "no client certificate was sent"),
    "The SSL certificate error": ("rejected", "the server rejected the client certificate (revoked, expired or unknown CA; its error log says which)"),
}
_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class Refused(KittylabError):
    """The server turned the client away; ``.reason`` is a short code (``revoked``, ``no-certificate``, ...),
    ``.answer`` what the server sent to say so (an HTTP error page's status and title, a TLS alert, a hang-up)."""

    def __init__(self, reason: str, words: str, *, answer: str = "") -> None:
        super().__init__(f"the server refused the connection: {words}")
        self.reason = reason
        self.answer = answer


class ServerNotTrusted(KittylabError):
    """The server's certificate did not verify against the CA the client trusts."""

    reason = "server-not-trusted"


@dataclass
class Response:
    """What the server answered, and who it was (``server_subject``, from its verified certificate)."""

    url: str
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = field(repr=False)
    server_subject: str
    tls_version: str
    #: Pictures the page shows, fetched as a browser would: {src as in the page: (content type, bytes)}.
    pictures: dict[str, tuple[str, bytes]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> object:
        return json.loads(self.body)

    def __repr__(self) -> str:
        kind = self.content_type.split(";")[0] or "no content type"
        return (f"<Response {self.status} {self.reason}: {len(self.body)} bytes of {kind} from {self.server_subject} "
                f"over {self.tls_version}>")

    def _repr_html_(self) -> str:
        """The page as a browser shows it, pictures inlined, for a notebook (kittylab's gallery inline,
        any other page in a sandboxed frame)."""
        if "html" not in self.content_type:
            return macro("previews.html", "response_text", summary=repr(self), text=self.text[:4000])
        page = self.text
        for src, (content_type, data) in self.pictures.items():
            uri = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
            page = page.replace(f'src="{src}"', f'src="{uri}"')
        style = re.search(r"<style>.*?</style>", page, re.S)
        main = re.search(r'<main class="kl-gallery">.*?</main>', page, re.S)
        if style and main:
            return style.group(0) + main.group(0)
        return macro("previews.html", "sandboxed_page", page=page)


class _ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            src = dict(attrs).get("src")
            if src and src not in self.sources:
                self.sources.append(src)


class _MutualTLSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that, under TLS 1.3, waits for the server's verdict on the certificate."""

    def connect(self) -> None:
        super().connect()
        if self.sock.version() == "TLSv1.3":
            _await_verdict(self.sock, min(VERDICT_WAIT, self.timeout or VERDICT_WAIT))
            self.sock.settimeout(self.timeout)


def _await_verdict(sock: ssl.SSLSocket, wait: float) -> None:
    """Read the server's first post-handshake record: a session ticket (accepted) or an alert (refused)."""
    sock.setblocking(False)
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return  # the server sends no tickets: go on and learn the verdict from the response
    try:
        data = sock.recv(1)
    except ssl.SSLWantReadError:
        return  # a session ticket: the server accepted the certificate
    if data:
        raise KittylabError("the server spoke before the request: this is not an HTTP server")
    raise ssl.SSLEOFError("the server closed the connection right after the handshake")


@dataclass
class _Credentials:
    key: PrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate]


def _credentials(p12, password, key, cert) -> _Credentials | None:
    if p12 is not None and (key is not None or cert is not None):
        raise KittylabError("give either p12= or key= and cert=, not both")
    if p12 is not None:
        if not password:
            raise KittylabError("the p12 needs its password", fix="p12-password")
        bundle = load_p12(p12, password=password)
        intermediates = [c for c in bundle.chain if c.issuer != c.subject]
        return _Credentials(bundle.key, bundle.certificate, intermediates)
    if (key is None) != (cert is None):
        raise KittylabError("a client certificate needs both key= and cert=")
    if key is None:
        return None
    private_key, certificate = load_key(key, passphrase=password), load_certificate(cert)
    if private_key.public_key() != certificate.public_key():
        raise KittylabError("the key does not belong to the certificate")
    return _Credentials(private_key, certificate, [])


def client_context(
    *, p12=None, password: str | None = None, key=None, cert=None, ca=None, tls_max: str | None = None
) -> ssl.SSLContext:
    """A TLS client context that trusts ``ca`` (else the system's CAs) and presents the client certificate.

    ``ssl`` only loads a certificate and key from a file, so they are written to a private temporary
    file (0600, the key encrypted with a one-time passphrase) and deleted at once.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls_max is not None:
        if tls_max not in _TLS_VERSIONS:
            raise KittylabError(f"tls_max must be one of {', '.join(_TLS_VERSIONS)}, not {tls_max!r}")
        context.maximum_version = _TLS_VERSIONS[tls_max]
    if ca is None:
        context.load_default_certs()
    else:
        try:
            context.load_verify_locations(cadata=read_input(ca, "CA certificate").decode("latin-1"))
        except ssl.SSLError:
            raise KittylabError(f"{ca} is not a PEM CA certificate") from None
    credentials = _credentials(p12, password, key, cert)
    if credentials is not None:
        one_time = secrets.token_urlsafe(24)
        pem = credentials.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(one_time.encode()),
        ) + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [credentials.certificate, *credentials.chain])
        fd, path = tempfile.mkstemp(prefix="kittylab-client-", suffix=".pem")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            context.load_cert_chain(path, password=one_time)
        finally:
            os.unlink(path)
    return context


def fetch(
    url: str,
    *,
    p12: str | os.PathLike | bytes | None = None,
    password: str | None = None,
    key: str | os.PathLike | bytes | None = None,
    cert: str | os.PathLike | bytes | None = None,
    ca: str | os.PathLike | bytes | None = None,
    timeout: float = 10.0,
    images: bool = True,
    tls_max: str | None = None,
) -> Response:
    """GET ``url`` with a client certificate (a p12 and its password, or key and cert files).

    ``ca`` is the CA certificate that must have signed the server's certificate (e.g.
    ``kitty-ca.crt``); without it the system's CAs are trusted. With ``images`` (the default) the
    pictures of an HTML page are fetched too, as a browser would, so that the response can show
    them inside a notebook. ``tls_max="1.2"`` caps the TLS version. Raises :class:`Refused` with
    the reason when the server turns the client away.
    """
    context = client_context(p12=p12, password=password, key=key, cert=cert, ca=ca, tls_max=tls_max)
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise KittylabError(f"{url!r} is not an https:// URL")
    sent_certificate = p12 is not None or key is not None
    connection = _MutualTLSConnection(parts.hostname, parts.port or 443, context=context, timeout=timeout)
    try:
        response = _get(connection, url, sent_certificate=sent_certificate)
        if images and "html" in response.content_type:
            for src in _image_sources(response.text):
                target = urljoin(url, src)
                if urlsplit(target)[:2] != parts[:2]:
                    continue  # only the server's own pictures: a page must not send us elsewhere
                picture = _get(connection, target, sent_certificate=sent_certificate)
                if picture.ok:
                    response.pictures[src] = (picture.content_type.split(";")[0], picture.body)
        return response
    finally:
        connection.close()


def _image_sources(page: str) -> list[str]:
    parser = _ImageSources()
    parser.feed(page)
    return parser.sources


def _get(connection: _MutualTLSConnection, url: str, *, sent_certificate: bool) -> Response:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers={"User-Agent": "kittylab-eager-client"})
        server_subject, tls_version = _server_subject(connection.sock), connection.sock.version()
        answer = connection.getresponse()
        body = answer.read()
    except ssl.SSLCertVerificationError as exc:
        raise ServerNotTrusted(
            f"server certificate not trusted: {exc.verify_message}: trust the CA that signed it (ca=kitty-ca.crt)",
            fix="trust-ca",
        ) from None
    except ConnectionRefusedError:
        raise KittylabError(f"nothing is listening at {parts.netloc} (is the server running?)") from None
    except (socket.timeout, TimeoutError):
        raise KittylabError(f"{parts.netloc} did not answer in {connection.timeout:g} s") from None
    except ssl.SSLError as exc:
        raise _refusal(exc, sent_certificate) from None
    except (ConnectionError, http.client.RemoteDisconnected) as exc:
        raise _refusal(exc, sent_certificate) from None
    except OSError as exc:
        raise KittylabError(f"cannot connect to {parts.netloc}: {exc.strerror or exc}") from None
    headers = {name.lower(): value for name, value in answer.getheaders()}
    title = _nginx_title(body) if answer.status == 400 else ""
    if title in _NGINX_PAGES:
        raise Refused(*_NGINX_PAGES[title], answer=f'HTTP 400, an error page titled "400 {title}"')
    return Response(
        url=url,
        status=answer.status,
        reason=answer.reason,
        headers=headers,
        body=body,
        server_subject=server_subject,
        tls_version=tls_version,
    )


def _nginx_title(body: bytes) -> str:
    match = re.search(rb"<title>400 (.*?)</title>", body)
    return match.group(1).decode("latin-1").strip() if match else ""


def _refusal(exc: BaseException, sent_certificate: bool) -> KittylabError:
    """Why the server turned the client away, from the alert it sent (or the way it hung up)."""
    reason = getattr(exc, "reason", None)
    alert = f"the TLS alert {str(reason).split('ALERT_', 1)[-1].lower()}"
    if reason in _ALERTS:
        return Refused(*_ALERTS[reason], answer=alert)
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        if not sent_certificate:
            return Refused("no-certificate", "no client certificate was sent", answer=alert)
        return Refused("rejected", "handshake failure (the server rejected the client certificate)", answer=alert)
    if isinstance(exc, (ssl.SSLEOFError, ConnectionError, http.client.RemoteDisconnected)):
        hung_up = "no answer: it closed the connection"
        if not sent_certificate:
            return Refused("no-certificate", "no client certificate was sent (the server hung up)", answer=hung_up)
        # An empty reply looks the same whether the server refused the certificate (TLS 1.3 tells the
        # client only on its first read) or failed while answering: say both.
        return Refused("closed", "the server hung up after the handshake without an answer: it refused the"
                                 " client certificate, or failed while answering (its log says which)", answer=hung_up)
    return KittylabError(f"TLS error talking to the server: {reason or exc}")


def _server_subject(sock: ssl.SSLSocket) -> str:
    der = sock.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else ""


def curl_command(
    url: str,
    *,
    p12: str | os.PathLike | None = None,
    password_file: str | os.PathLike | None = None,
    key: str | os.PathLike | None = None,
    cert: str | os.PathLike | None = None,
    ca: str | os.PathLike | None = None,
) -> str:
    """The same request with curl, as a line to paste (the p12 password is read from its file, never shown)."""
    parts = ["curl", "--silent", "--show-error", "--fail-with-body"]
    if ca is not None:
        parts += ["--cacert", shlex.quote(str(ca))]
    if p12 is not None:
        secret = f'$(head -n1 {shlex.quote(str(password_file))})' if password_file else "$P12_PASSWORD"
        parts += ["--cert-type", "P12", "--cert", f'"{_double_quoted(str(p12))}:{secret}"']
    if cert is not None:
        parts += ["--cert", shlex.quote(str(cert))]
    if key is not None:
        parts += ["--key", shlex.quote(str(key))]
    parts.append(shlex.quote(url))
    return " ".join(parts)


def _double_quoted(text: str) -> str:
    return re.sub(r'(["\\$`])', r"\\\1", text)


