"""picture-server: an HTTPS server that shows its cat gallery only to clients with a certificate from the CA.

Steps 9-10 and 15-17 of the story in one object. ``with PictureServer(ws) as server:`` runs it in a
background thread (a notebook starts it, fetches from ``server.url`` and stops it);
``kittylab serve`` runs it in the foreground.

What it checks: TLS 1.2 or newer, a client certificate is required and must chain to the CA and
not be on the CRL. The TLS handshake happens in the worker thread of each connection, never in
``accept()``, so a slow or misbehaving client cannot hold up the others, and every refusal is
logged with its reason (``server.refusals`` and the ``kittylab.net.server`` logger). The certificate,
key, CA and CRL files are watched: a revocation (``ws.revoke(...)`` rewrites the CRL) takes effect
on the next connection, without a restart.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

from cryptography import x509

from ..errors import KittylabError
from ..pki.crl import crl_expiry_warning, load_crl
from ..pki.facts import common_name, serial_hex, when
from ..render.gallery import CONTENT_TYPES, gallery_page, picture_bytes
from ..workspace.deploy import ServerFiles
from ..workspace.workspace import Workspace
from .http_service import IDLE_TIMEOUT, Background
from .ocsp import ask_responder

logger = logging.getLogger("kittylab.net.server")
# A library stays quiet unless the application configures logging (``kittylab serve`` does);
# otherwise every refusal would print to stderr, e.g. in a notebook. ``server.refusals`` keeps them.
logger.addHandler(logging.NullHandler())

DEFAULT_NAME = "picture-server"
#: How long a client may take to finish the TLS handshake before it is dropped.
HANDSHAKE_TIMEOUT = 10.0
#: How many refusals ``PictureServer.refusals`` remembers.
REFUSAL_LOG_SIZE = 1000

# What OpenSSL's verification codes mean for a client certificate (``openssl verify`` numbers them).
_VERIFY_REASONS = {
    2: "unknown CA",
    3: "no CRL loaded for the CA (publish one)",
    7: "bad certificate signature",
    9: "not yet valid",
    10: "expired",
    12: "the CRL has expired (publish a new one)",
    18: "unknown CA",
    19: "unknown CA",
    20: "unknown CA",
    21: "unknown CA",
    23: "revoked",
    26: "not a client certificate (wrong purpose)",
}
# OpenSSL's reason codes for handshakes that failed before or beside certificate verification.
_SSL_REASONS = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "the client does not trust this server's certificate (unknown CA)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the client rejected this server's certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the client rejected this server's certificate",
    "HTTP_REQUEST": "plain HTTP sent to the HTTPS port",
    "WRONG_VERSION_NUMBER": "not a TLS client",
    "UNSUPPORTED_PROTOCOL": "TLS version too old (1.2 or newer is required)",
    "NO_SHARED_CIPHER": "no cipher in common",
}


class Refusal(NamedTuple):
    """A connection the server turned away: who, and why (``detail`` is OpenSSL's own words)."""

    peer: str
    reason: str
    detail: str = ""


def refusal_reason(exc: BaseException) -> str:
    """A short, stable reason for a failed server-side handshake: revoked, expired, unknown CA, ..."""
    code = getattr(exc, "verify_code", None)
    if code:
        return _VERIFY_REASONS.get(code, f"certificate not accepted ({getattr(exc, 'verify_message', code)})")
    reason = getattr(exc, "reason", None)
    if reason in _SSL_REASONS:
        return _SSL_REASONS[reason]
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "handshake timed out"
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError)):
        return "the client closed the connection during the handshake"
    return f"TLS error ({reason or exc})"


# -- who the client is ----------------------------------------------------------------------------


def ascii_dn(text: str) -> str:
    """An RFC 4514 string with every non-ASCII character as the RFC's ``\\XX`` escapes of its UTF-8 bytes.

    ``CN=Ayşe Kaya`` -> ``CN=Ay\\C5\\9Fe Kaya``: what fits in an HTTP header, read back by any RFC 4514 parser.
    """
    return "".join(char if char.isascii() else "".join(f"\\{byte:02X}" for byte in char.encode()) for char in text)


def client_identity(certificate: x509.Certificate) -> dict[str, str]:
    """What the greeting and ``/whoami`` show about a client, as nginx's and Apache's ``whoami.json`` do:
    ``cn`` and ``issuer`` are common names (the client's and its CA's), ``subject`` the distinguished
    name, ``not_after`` as :func:`when` shows it. (kittylab's own JSON names the issuer's DN ``issuer_dn``.)"""
    return {
        "cn": common_name(certificate.subject),
        "subject": certificate.subject.rfc4514_string(),
        "serial": serial_hex(certificate.serial_number),
        "not_after": f"{when(certificate.not_valid_after_utc)}",
        "issuer": common_name(certificate.issuer),
    }


# -- the server -----------------------------------------------------------------------------------


def server_context(files: ServerFiles, *, crl: bool = True) -> ssl.SSLContext:
    """A TLS server context that requires a client certificate from the CA, checked against the CRL."""
    files.check()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(files.cert, files.key)
    except ssl.SSLError as exc:
        raise KittylabError(f"cannot use {files.cert} with {files.key}: {exc.reason or exc} "
                            "(does the key belong to the certificate?)") from None
    try:
        context.load_verify_locations(cafile=files.ca)
        if crl:
            context.load_verify_locations(cafile=files.crl)
    except ssl.SSLError as exc:
        raise KittylabError(f"cannot load the CA certificate or CRL: {exc.reason or exc}") from None
    if crl:
        # Every level: below an intermediate, its revocation by the root counts too (as in nginx).
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    return context


def revoked_serials(crl_path: Path) -> frozenset[int]:
    return frozenset(entry.serial_number for entry in load_crl(crl_path))


class _ReloadingContext:
    """The current SSLContext, rebuilt when one of its files changes (checked at each connection),
    and the CRL's serials, so that connections opened before a revocation are cut off too."""

    def __init__(self, files: ServerFiles, *, crl: bool = True) -> None:
        self.files = files
        self.crl = crl
        self._lock = threading.Lock()
        self._signature = files.signature()
        self._context = server_context(files, crl=crl)
        self.revoked = revoked_serials(files.crl) if crl else frozenset()
        self.reloads = 0

    def current(self) -> ssl.SSLContext:
        signature = self.files.signature()
        if signature == self._signature:
            return self._context
        with self._lock:
            if signature != self._signature:
                try:
                    self._context = server_context(self.files, crl=self.crl)
                    self.revoked = revoked_serials(self.files.crl) if self.crl else frozenset()
                except KittylabError as exc:
                    logger.error("kept the previous TLS settings: %s", exc)
                else:
                    self.reloads += 1
                    logger.info("reloaded the certificate, key, CA and CRL files")
                self._signature = signature
            return self._context


class _GalleryHandler(BaseHTTPRequestHandler):
    """Serves ``/`` (the gallery), ``/static/NAME`` (pictures) and ``/whoami`` (the client, as JSON)."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    # Headers and body leave in one write, without waiting for Nagle's delayed ACK (40 ms a request).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: "_TLSHTTPServer"

    def setup(self) -> None:
        super().setup()
        certificate = x509.load_der_x509_certificate(self.connection.getpeercert(binary_form=True))
        self.serial = certificate.serial_number
        self.identity = client_identity(certificate)

    def version_string(self) -> str:
        return "kittylab-picture-server"

    def do_GET(self) -> None:
        self._respond(include_body=True)

    def do_HEAD(self) -> None:
        self._respond(include_body=False)

    def _respond(self, *, include_body: bool) -> None:
        """Answer the request; an error on the way is logged and answered with 500, never an empty reply."""
        self._sent = False
        try:
            self._answer(include_body=include_body)
        except (OSError, ssl.SSLError):
            raise  # the client went away: nothing to answer
        except Exception:
            logger.exception("error while answering %s %s for %s", self.command, self.path, self.identity.get("cn"))
            self.close_connection = True
            if not self._sent:
                self._headers_buffer = []  # drop a half-built answer
                body = b"internal error: see the server's log\n"
                self.send_response(500)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if include_body:
                    self.wfile.write(body)

    def _answer(self, *, include_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        owner = self.server.owner
        owner._tls.current()  # notices a new CRL even while this connection stays open
        if self.serial in owner._tls.revoked:
            # Revoked after this connection's handshake: the connection ends here.
            owner._refuse(self.client_address, "revoked (on a connection opened before the revocation)")
            body, status, content_type = b"certificate revoked\n", 403, "text/plain; charset=utf-8"
            self.close_connection = True
        elif path in ("/", "/index.html"):
            body = gallery_page(self.identity, server_name=owner.server_name, ca_name=owner.ca_name).encode()
            status, content_type = 200, "text/html; charset=utf-8"
        elif path == "/whoami":
            body = (json.dumps(self.identity, indent=2) + "\n").encode()
            status, content_type = 200, "application/json"
        elif path.startswith("/static/") and (data := picture_bytes(path[len("/static/"):])) is not None:
            body, status = data, 200
            content_type = CONTENT_TYPES[path.rsplit(".", 1)[-1]]
        else:
            body, status, content_type = b"not found\n", 404, "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # HTTP headers are Latin-1 at most: the subject goes as RFC 4514 text in ASCII, each byte of a
        # non-ASCII character's UTF-8 as \\XX (as nginx's $ssl_client_s_dn passes it on).
        self.send_header("X-SSL-Client-S-DN", ascii_dn(self.identity["subject"]))
        self.send_header("X-SSL-Client-Verify", "SUCCESS")
        if path.startswith("/static/"):
            self.send_header("Cache-Control", "private, max-age=3600")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._sent = True
        if include_body:
            self.wfile.write(body)
        owner._count_request()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s %s", self.address_string(), self.identity.get("cn", "-"), format % args)


class _TLSHTTPServer(ThreadingHTTPServer):
    """Accepts plain sockets; each worker thread does its own TLS handshake (with a timeout)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], owner: "PictureServer") -> None:
        self.owner = owner
        super().__init__(address, _GalleryHandler)

    def finish_request(self, request: socket.socket, client_address: tuple) -> None:
        connection = self.owner._handshake(request, client_address)
        if connection is None:
            return
        with self.owner._open_lock:
            self.owner._open.add(connection)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        except (OSError, ssl.SSLError) as exc:
            logger.debug("connection from %s ended: %s", client_address[0], exc)
        finally:
            with self.owner._open_lock:
                self.owner._open.discard(connection)
            connection.close()

    def handle_error(self, request: object, client_address: tuple) -> None:
        logger.exception("error while serving %s", client_address[0])


class PictureServer(Background):
    """The picture-server: HTTPS with required client certificates, in a background thread.

    ``PictureServer(ws)`` uses the workspace's ``picture-server.crt``/``.key``, the CA certificate
    and the CRL (``client_ca="NAME"`` lets in the clients of another CA of the workspace); or give
    the four files as ``cert=``, ``key=``, ``ca=``, ``crl=``. ``port=0`` picks a free port (see
    ``.url``). It binds to loopback unless told otherwise. With ``ocsp="http://..."`` it asks that
    OCSP responder about each client's certificate instead of reading the CRL.
    """

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike | None = None,
        *,
        name: str = DEFAULT_NAME,
        client_ca: str | None = None,
        cert: str | os.PathLike | None = None,
        key: str | os.PathLike | None = None,
        ca: str | os.PathLike | None = None,
        crl: str | os.PathLike | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        ocsp: str | None = None,
    ) -> None:
        self.files = self._files(workspace, name, client_ca, cert=cert, key=key, ca=ca, crl=crl)
        self.ocsp = ocsp
        self.host, self.port = host, port
        self.handshake_timeout = handshake_timeout
        self.refusals: collections.deque[Refusal] = collections.deque(maxlen=REFUSAL_LOG_SIZE)
        self.requests_served = 0
        self._count_lock = threading.Lock()
        self._open: set[ssl.SSLSocket] = set()
        self._open_lock = threading.Lock()
        self._tls = _ReloadingContext(self.files, crl=ocsp is None)
        self.server_name = common_name(x509.load_pem_x509_certificate(self.files.cert.read_bytes()).subject)
        self.ca_name = common_name(x509.load_pem_x509_certificate(self.files.ca.read_bytes()).subject)
        warning = None if ocsp else crl_expiry_warning(load_crl(self.files.crl).next_update_utc)
        if warning:
            logger.warning("%s", warning)
        self._httpd: _TLSHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def _files(workspace, name, client_ca, **given) -> ServerFiles:
        if workspace is None:
            missing = [label for label, value in given.items() if value is None]
            if missing:
                raise KittylabError(f"give a workspace, or all of cert, key, ca and crl (missing: {', '.join(missing)})")
            return ServerFiles(**{label: Path(value) for label, value in given.items()})
        ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        try:
            files = ServerFiles.of(ws, name, client_ca)
        finally:
            if ws is not workspace:
                ws.close()
        return ServerFiles(**{label: Path(given[label]) if given[label] else getattr(files, label) for label in given})

    # -- running ----------------------------------------------------------------------------------

    def start(self) -> "PictureServer":
        """Bind and serve in a background thread; returns self (``.url`` is ready)."""
        if self._httpd is not None:
            return self
        try:
            self._httpd = _TLSHTTPServer((self.host, self.port), self)
        except OSError as exc:
            raise KittylabError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"picture-server:{self.port}", daemon=True)
        self._thread.start()
        logger.info("serving %s (client certificates from %s required)", self.url, self.ca_name)
        return self

    def stop(self) -> None:
        """Stop accepting connections and close the listening socket."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._open_lock:
            for connection in self._open:  # keep-alive connections end too: stopped means stopped
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._httpd = self._thread = None
        logger.info("stopped %s", self.url)

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PictureServer {self.url} {state}, {self.requests_served} requests, {len(self.refusals)} refused>"

    # -- per connection ---------------------------------------------------------------------------

    def _handshake(self, sock: socket.socket, peer: tuple) -> ssl.SSLSocket | None:
        """TLS handshake in the worker thread; a failure is logged as a refusal and returns None."""
        sock.settimeout(self.handshake_timeout)
        connection = None
        try:
            if not sock.recv(1, socket.MSG_PEEK):
                # Closed without a word (a port probe, a browser's spare connection): not a refusal.
                logger.debug("%s:%s closed the connection before the handshake", *peer[:2])
                sock.close()
                return None
            connection = self._tls.current().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            connection.do_handshake()
        except (OSError, ssl.SSLError) as exc:
            self._refuse(peer, exc)
            (sock if connection is None else connection).close()  # once wrapped, the TLS socket owns it
            return None
        if self.ocsp and not self._good_by_ocsp(connection, peer):
            connection.close()
            return None
        return connection

    def _good_by_ocsp(self, connection: ssl.SSLSocket, peer: tuple) -> bool:
        """Ask the OCSP responder about the client's certificate; anything but "good" refuses it."""
        certificate = x509.load_der_x509_certificate(connection.getpeercert(binary_form=True))
        issuers = [c for c in x509.load_pem_x509_certificates(self.files.ca.read_bytes()) if c.subject == certificate.issuer]
        try:
            status = ask_responder(certificate, issuers[0], self.ocsp)
        except KittylabError as exc:
            self._refuse(peer, f"no OCSP answer ({exc})")
            return False
        if not status.good:
            self._refuse(peer, f"{status} (OCSP)")
        return status.good

    def _refuse(self, peer: tuple, why: BaseException | str) -> None:
        reason = why if isinstance(why, str) else refusal_reason(why)
        refusal = Refusal(f"{peer[0]}:{peer[1]}", reason, str(why))
        self.refusals.append(refusal)
        logger.warning("refused %s: %s", refusal.peer, refusal.reason)

    def _count_request(self) -> None:
        with self._count_lock:
            self.requests_served += 1

    @property
    def reloads(self) -> int:
        """How many times the TLS settings were rebuilt because a file (e.g. the CRL) changed."""
        return self._tls.reloads

