"""An OCSP responder: ask "is this certificate still good?" and get an answer signed by its CA.

A CRL is a list a server downloads and must reload; OCSP answers one certificate at a time,
from the store as it is now, so a revocation counts at once. The responder answers every CA
of the workspace (good, revoked with reason and time, or unknown for a serial the CA never
issued) and signs with that CA's key, as ``openssl ocsp -index index.txt -rsigner ca.crt``
does. It speaks RFC 6960 over HTTP: POST of a DER request, or GET with it base64 in the path.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from ..errors import KittylabError
from ..pki.crl import REASON_NAMES, REASONS
from ..pki.extensions import extension_value
from ..pki.facts import serial_hex, when
from ..pki.keys import signature_hash
from ..workspace.workspace import Workspace
from .http_service import HttpService, QuietHandler

#: How long a client may cache an answer (the response's nextUpdate).
ANSWER_LIFETIME = dt.timedelta(hours=1)
#: Requests are a few hundred bytes; refuse anything much larger.
MAX_REQUEST = 16 * 1024


@dataclass(frozen=True)
class Answer:
    """What the responder said, for its log: the CA, the serial and the status."""

    ca: str | None
    serial: int | None
    status: str

    def __str__(self) -> str:
        serial = serial_hex(self.serial) if self.serial is not None else "-"
        return f"{self.ca or '-'} serial {serial}: {self.status}"


class OcspResponder:
    """Answers OCSP requests for the CAs of a workspace, reading the store at each request."""

    def __init__(self, workspace: Workspace, *, lifetime: dt.timedelta = ANSWER_LIFETIME) -> None:
        self.workspace = workspace
        self.lifetime = lifetime
        self._lock = threading.Lock()

    def respond(self, request_der: bytes, *, now: dt.datetime | None = None) -> tuple[bytes, Answer]:
        """The DER response to a DER request, and what it said."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            serial = request.serial_number
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST), Answer(None, None, "malformed request")
        except NotImplementedError:
            # cryptography builds responses of one SingleResponse only: ask one certificate at a time.
            said = "malformed request: more than one certificate in one request"
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST), Answer(None, None, said)
        with self._lock:
            ca_name = self._issuer_of(request)
            if ca_name is None:
                return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED), Answer(None, serial, "unknown CA")
            try:
                ca = self.workspace.ca_for(ca_name)
            except KittylabError:
                return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED), Answer(ca_name, serial, "CA key offline")
            record = self.workspace.by_serial(serial)
        if record is None or record.issuer != ca_name:
            status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        elif record.revoked_at is not None:
            status, revoked_at = ocsp.OCSPCertStatus.REVOKED, record.revoked_at
            # As on the CRL (RFC 5280, 5.3.1): no reason code at all rather than "unspecified".
            reason = REASONS[record.reason] if record.reason not in (None, "unspecified") else None
        else:
            status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
        start = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                request.issuer_name_hash,
                request.issuer_key_hash,
                serial,
                request.hash_algorithm,
                status,
                start,
                start + self.lifetime,
                revoked_at,
                reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.certificate)
            # The signer's certificate goes along: Apache's mod_ssl finds the signer only there.
            .certificates([ca.certificate])
        )
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                builder = builder.add_extension(extension.value, critical=False)
        response = builder.sign(ca.key, signature_hash(ca.key))
        said = status.name.lower() + (f" ({record.reason}, {when(revoked_at)})" if revoked_at else "")
        return response.public_bytes(serialization.Encoding.DER), Answer(ca_name, serial, said)

    def _issuer_of(self, request: ocsp.OCSPRequest) -> str | None:
        """The workspace's CA whose name and key hash match the request's."""
        for name in self.workspace.ca_names():
            certificate = self.workspace.ca_record(name).certificate
            name_hash, key_hash = issuer_hashes(certificate, request.hash_algorithm)
            if (name_hash, key_hash) == (request.issuer_name_hash, request.issuer_key_hash):
                return name
        return None


@dataclass(frozen=True)
class Status:
    """What a responder said about one certificate: ``good``, ``revoked`` or ``unknown``."""

    status: str
    revoked_at: dt.datetime | None = None
    reason: str | None = None

    @property
    def good(self) -> bool:
        return self.status == "good"

    def __str__(self) -> str:
        if self.revoked_at is None:
            return self.status
        return f"revoked on {when(self.revoked_at)} ({self.reason or 'unspecified'})"


def ask_responder(
    certificate: x509.Certificate, issuer: x509.Certificate, url: str, *, timeout: float = 5.0
) -> Status:
    """Ask an OCSP responder about ``certificate`` (what ``openssl ocsp -url`` does), checking the answer.

    The answer must be signed by ``issuer``, be about this serial, echo the request's nonce and
    be current; anything else is a one-line :class:`KittylabError` (treat it as "not good").
    """
    nonce = os.urandom(16)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA256())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    post = urllib.request.Request(
        url, data=request.public_bytes(serialization.Encoding.DER), headers={"Content-Type": "application/ocsp-request"}
    )
    try:
        with urllib.request.urlopen(post, timeout=timeout) as reply:
            response = ocsp.load_der_ocsp_response(reply.read(MAX_REQUEST))
    except (OSError, ValueError) as exc:
        raise KittylabError(f"the OCSP responder {url} did not answer: {exc}") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise KittylabError(f"the OCSP responder {url} said {response.response_status.name.lower()}")
    _check_answer(response, certificate, issuer, nonce)
    status = response.certificate_status.name.lower()
    if response.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        reason = response.revocation_reason
        return Status(status, response.revocation_time_utc, REASON_NAMES.get(reason, "unspecified") if reason else None)
    return Status(status)


def _check_answer(response: ocsp.OCSPResponse, certificate: x509.Certificate, issuer: x509.Certificate,
                  nonce: bytes) -> None:
    try:
        issuer.public_key().verify(*_signature_arguments(response, issuer))
    except (InvalidSignature, TypeError, ValueError):
        raise KittylabError("the OCSP answer is not signed by the issuing CA") from None
    if response.serial_number != certificate.serial_number:
        raise KittylabError("the OCSP answer is about another certificate")
    echoed = extension_value(response, x509.OCSPNonce)
    if echoed is None or echoed.nonce != nonce:
        raise KittylabError("the OCSP answer does not echo the request's nonce (a replayed answer?)")
    now = dt.datetime.now(dt.timezone.utc)
    if response.this_update_utc > now + dt.timedelta(minutes=5) or (
        response.next_update_utc is not None and response.next_update_utc < now
    ):
        raise KittylabError("the OCSP answer is not current: check the clocks")


def _signature_arguments(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> tuple:
    key = issuer.public_key()
    data, signature, algorithm = response.tbs_response_bytes, response.signature, response.signature_hash_algorithm
    if isinstance(key, rsa.RSAPublicKey):
        return signature, data, padding.PKCS1v15(), algorithm
    if isinstance(key, ec.EllipticCurvePublicKey):
        return signature, data, ec.ECDSA(algorithm)
    return signature, data


def issuer_hashes(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """The issuerNameHash and issuerKeyHash that identify a CA in an OCSP request (RFC 6960, 4.1.1)."""
    name = certificate.subject.public_bytes()
    key = _subject_public_key_bits(
        certificate.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return _digest(algorithm, name), _digest(algorithm, key)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(type(algorithm)())
    digest.update(data)
    return digest.finalize()


def _subject_public_key_bits(spki: bytes) -> bytes:
    """The subjectPublicKey BIT STRING's bits inside a DER SubjectPublicKeyInfo."""

    def header(at: int) -> tuple[int, int]:
        length, at = spki[at + 1], at + 2
        if length & 0x80:
            count = length & 0x7F
            length, at = int.from_bytes(spki[at : at + count], "big"), at + count
        return at, length

    inner, _ = header(0)  # SEQUENCE { algorithm, subjectPublicKey }
    algorithm_start, algorithm_length = header(inner)
    bits_start, bits_length = header(algorithm_start + algorithm_length)
    return spki[bits_start + 1 : bits_start + bits_length]  # skip the unused-bits byte


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


class OcspServer(HttpService):
    """The responder over HTTP in a background thread: ``with OcspServer(ws.home) as server: server.url``.

    It sees each revocation as soon as it is saved (see :class:`HttpService` for the options);
    ``log`` gets one line per answer.
    """

    thread_name = "kittylab-ocsp"

    def prepare(self) -> None:
        workspace = self.workspace
        workspace.ca_record()  # a workspace without a CA has nothing to answer for
        for name in workspace.ca_names():  # keys load now: a missing passphrase fails here, not per request
            if workspace.path(name, "key").exists() and workspace.ca_record(name).revoked_at is None:
                workspace.ca_for(name)
        self.responder = OcspResponder(workspace)

    def handler(self) -> type[QuietHandler]:
        return _handler_for(self)


def _handler_for(server: OcspServer) -> type[QuietHandler]:
    class Handler(QuietHandler):
        server_version = "kittylab-ocsp"

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "")
            # ASCII digits only: str.isdigit() also says yes to "²", which int() refuses.
            if not (length.isascii() and length.isdigit()) or not 0 < int(length) <= MAX_REQUEST:
                # Where the body ends is unknown (or it is too big to read): answer, then close.
                self._refuse(f"a POST needs a Content-Length of 1 to {MAX_REQUEST} bytes, not {length[:20]!r}")
                return
            self._answer(self.rfile.read(int(length)))

        def do_GET(self) -> None:
            encoded = urllib.parse.unquote(self.path.lstrip("/"))
            try:
                request = base64.b64decode(encoded, validate=True) if encoded else b""
            except ValueError:
                request = b""
            if not request or len(request) > MAX_REQUEST:
                self._refuse("expected GET /BASE64-OF-A-DER-OCSP-REQUEST")
                return
            self._answer(request)

        def _answer(self, request: bytes) -> None:
            try:
                response, answer = server.responder.respond(request)
            except Exception as exc:  # noqa: BLE001 - every request gets an OCSP response (RFC 6960 internalError)
                response = _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
                answer = Answer(None, None, f"internal error: {type(exc).__name__}: {exc}")
            if server.log:
                server.log(str(answer))
            self.send_body(200, "application/ocsp-response", response)

        def _refuse(self, why: str) -> None:
            """A malformedRequest answer (HTTP 400): an OCSP client still gets an OCSP response to read."""
            if server.log:
                server.log(f"malformed request: {why}")
            body = _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
            self.send_body(400, "application/ocsp-response", body, close=True)

    return Handler
