"""The OCSP responder, asked by the real ``openssl ocsp -url`` client and by hand-made requests, and
used instead of a CRL by the picture-server and by nginx."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import socket
import time
import urllib.parse
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from support.pki import build_hierarchy, curl_status, openssl, web_site
from support.system import PASSWORD

from kittylab import KittylabError, Workspace
from kittylab.net import http_service
from kittylab.net.client import Refused, fetch
from kittylab.net.ocsp import OcspResponder, OcspServer, _check_answer, ask_responder
from kittylab.net.server import PictureServer


def ask(url: str, ca, cert=None, *, serial: int | None = None) -> tuple[int, str]:
    """``openssl ocsp -issuer CA -cert CERT -url URL -CAfile CA -resp_text``: exit code and output."""
    target = ["-cert", cert] if cert is not None else ["-serial", hex(serial)]
    done = openssl("ocsp", "-issuer", ca, *target, "-url", url, "-CAfile", ca, "-resp_text")
    return done.returncode, (done.stdout + done.stderr).decode()


@pytest.fixture
def responder(story):
    workspace, _, _ = story
    with OcspServer(workspace.home) as server:
        yield server


def test_good_revoked_and_unknown_as_openssl_sees_them(story, responder):
    workspace, server, client = story
    ca = workspace.ca_certificate_path
    code, text = ask(responder.url, ca, server.files["crt"])
    assert code == 0 and f"{server.files['crt']}: good" in text and "Response verify OK" in text
    assert "WARNING: no nonce" not in text and "OCSP Nonce" in text
    assert "Responder Id: " in text
    # A revocation counts at once: no CRL to publish, no server to reload.
    Workspace(workspace.home).revoke("eager-client", reason="key-compromise")
    code, text = ask(responder.url, ca, client.files["crt"])
    revoked_at = workspace.find("eager-client").revoked_at
    assert code == 0 and f"{client.files['crt']}: revoked" in text, text
    assert "Reason: keyCompromise" in text
    assert f"Revocation Time: {revoked_at:%b} " in text and f"{revoked_at:%H:%M:%S %Y} GMT" in text
    code, text = ask(responder.url, ca, serial=0x1234567890ABCDEF)
    assert code == 0 and "0x1234567890abcdef: unknown" in text.lower()


def test_a_certificate_of_another_ca_gets_unauthorized(story, responder, tmp_path):
    other = Workspace(tmp_path / "other")
    other.init_ca("kitty-ca", key="p256")  # same name, different key: the key hash tells them apart
    stranger = other.issue("stranger", profile="client", key="p256")
    code, text = ask(responder.url, other.ca_certificate_path, stranger.files["crt"])
    assert code != 0 and "Responder Error: unauthorized (6)" in text


def test_get_with_base64_in_the_path_and_malformed_requests(story, responder):
    workspace, server, _ = story
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(server.certificate, workspace.ca.certificate, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    path = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
    with urllib.request.urlopen(f"{responder.url}/{path}", timeout=10) as reply:
        assert reply.headers["Content-Type"] == "application/ocsp-response"
        answer = ocsp.load_der_ocsp_response(reply.read())
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == server.certificate.serial_number
    assert isinstance(answer.hash_algorithm, hashes.SHA256)
    workspace.ca.certificate.public_key().verify(
        answer.signature, answer.tbs_response_bytes, ec.ECDSA(answer.signature_hash_algorithm)
    )
    post = urllib.request.Request(responder.url, data=b"not an OCSP request",
                                  headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(post, timeout=10) as reply:
        malformed = ocsp.load_der_ocsp_response(reply.read())
    assert malformed.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_every_level_of_a_hierarchy_is_answered_by_its_own_ca(tmp_path):
    tree = build_hierarchy(tmp_path / "ws")
    home = tree.home
    with OcspServer(home) as server:
        code, text = ask(server.url, home / "kitty-issuing.chain.pem", home / "picture-server.crt")
        assert code == 0 and "picture-server.crt: good" in text and "Response verify OK" in text
        code, text = ask(server.url, home / "kitty-root.crt", home / "kitty-issuing.crt")
        assert code == 0 and "kitty-issuing.crt: good" in text
        Workspace(home).revoke("kitty-issuing", reason="ca-compromise")
        code, text = ask(server.url, home / "kitty-root.crt", home / "kitty-issuing.crt")
        assert "kitty-issuing.crt: revoked" in text and "Reason: cACompromise" in text
    # With the root key offline, the root's answers cannot be signed: the responder says so.
    offline = tmp_path / "offline"
    offline.mkdir()
    shutil.move(home / "kitty-root.key", offline / "kitty-root.key")
    with OcspServer(home, log=(lines := []).append) as server:
        code, text = ask(server.url, home / "kitty-root.crt", home / "kitty-issuing.crt")
        assert code != 0 and "unauthorized" in text
        assert lines == [f"kitty-root serial {tree.workspace.find('kitty-issuing').serial_hex}: CA key offline"]


def test_answers_expire_and_name_the_reason(story):
    workspace, _, client = story
    workspace.revoke("eager-client", reason="superseded")
    request = ocsp.OCSPRequestBuilder().add_certificate(
        client.certificate, workspace.ca.certificate, hashes.SHA1()
    ).build()
    der, answer = OcspResponder(workspace).respond(request.public_bytes(serialization.Encoding.DER))
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.superseded
    assert response.next_update_utc > response.this_update_utc
    assert answer.status.startswith("revoked (superseded, ")


def test_ocsp_and_the_crl_agree_on_the_reason(story):
    """Revoked with no reason given: the CRL entry has no reason code, and neither has the OCSP answer."""
    workspace, _, client = story
    workspace.revoke("eager-client")
    entry = workspace.current_crl().get_revoked_certificate_by_serial_number(client.certificate.serial_number)
    with pytest.raises(x509.ExtensionNotFound):
        entry.extensions.get_extension_for_class(x509.CRLReason)
    request = ocsp.OCSPRequestBuilder().add_certificate(client.certificate, workspace.ca.certificate, hashes.SHA256())
    der, _ = OcspResponder(workspace).respond(request.build().public_bytes(serialization.Encoding.DER))
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED and response.revocation_reason is None
    assert response.revocation_time_utc == entry.revocation_date_utc


def test_two_certificates_in_one_request_get_malformed_request(story, responder):
    """``openssl ocsp -cert a -cert b`` sends two CertIDs: a proper OCSP answer, not a dropped connection."""
    workspace, server, client = story
    ca = workspace.ca_certificate_path
    done = openssl("ocsp", "-issuer", ca, "-cert", server.files["crt"], "-cert", client.files["crt"],
                   "-url", responder.url, "-CAfile", ca)
    text = (done.stdout + done.stderr).decode()
    assert "Responder Error: malformedrequest (1)" in text, text
    code, text = ask(responder.url, ca, server.files["crt"])  # and it goes on answering
    assert code == 0 and ": good" in text


def raw_exchange(url: str, request: bytes, *, wait: float = 10) -> bytes:
    """Send raw bytes to the responder and read until it closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("length", ["abc", "", "-5", "99999999", "\u00b2"])  # byte 0xB2 reads as "²": a digit to str.isdigit
def test_a_bad_content_length_gets_a_malformed_request_answer(responder, length):
    header = f"Content-Length: {length}\r\n" if length else ""
    reply = raw_exchange(responder.url, f"POST / HTTP/1.1\r\nHost: x\r\n{header}\r\n".encode("latin-1"))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") and b"application/ocsp-response" in head, head
    assert ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_a_stalled_connection_is_dropped_after_the_idle_timeout(story, monkeypatch):
    workspace, _, _ = story
    monkeypatch.setattr(http_service.QuietHandler, "timeout", 0.5)
    with OcspServer(workspace.home) as server:
        started = time.monotonic()
        # Headers promise 100 bytes that never come: the connection is closed, the thread freed.
        reply = raw_exchange(server.url, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        assert reply == b"" and time.monotonic() - started < 5
        reply = raw_exchange(server.url, b"")  # connects and says nothing
        assert reply == b"" and time.monotonic() - started < 5


def test_ask_responder_from_python(story, responder, tmp_path):
    workspace, server, client = story
    ca = workspace.ca.certificate
    assert ask_responder(server.certificate, ca, responder.url).good
    workspace.revoke("eager-client", reason="privilege-withdrawn")
    status = ask_responder(client.certificate, ca, responder.url)
    assert (status.status, status.reason) == ("revoked", "privilege-withdrawn")
    assert str(status).startswith("revoked on ") and status.revoked_at == workspace.find("eager-client").revoked_at
    other = Workspace(tmp_path / "other")
    other.init_ca("kitty-ca", key="p256")
    stranger = other.issue("stranger", profile="client", key="p256")
    with pytest.raises(KittylabError, match="said unauthorized"):
        ask_responder(stranger.certificate, other.ca.certificate, responder.url)
    with pytest.raises(KittylabError, match="did not answer"):
        ask_responder(server.certificate, ca, "http://127.0.0.1:9/")


def test_forged_or_replayed_answers_are_refused(story, tmp_path):
    workspace, server, _ = story
    ca = workspace.ca
    impostor = Workspace(tmp_path / "impostor")
    impostor.init_ca("kitty-ca", key="p256")

    def answer(*, signer, nonce):
        now = dt.datetime.now(dt.timezone.utc)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(server.certificate, ca.certificate, hashes.SHA256(), ocsp.OCSPCertStatus.GOOD, now,
                          now + dt.timedelta(hours=1), None, None)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
            .add_extension(x509.OCSPNonce(nonce), critical=False)
        )
        return builder.sign(signer.key, hashes.SHA256())

    _check_answer(answer(signer=ca, nonce=b"n" * 16), server.certificate, ca.certificate, b"n" * 16)
    with pytest.raises(KittylabError, match="not signed by the issuing CA"):
        _check_answer(answer(signer=impostor.ca, nonce=b"n" * 16), server.certificate, ca.certificate, b"n" * 16)
    with pytest.raises(KittylabError, match="does not echo the request's nonce"):
        _check_answer(answer(signer=ca, nonce=b"old" * 6), server.certificate, ca.certificate, b"n" * 16)


def test_picture_server_asks_the_responder_instead_of_the_crl(story):
    workspace, _, client = story
    ca = workspace.ca_certificate_path
    with OcspServer(workspace.home) as responder, PictureServer(workspace, ocsp=responder.url) as gallery:
        assert fetch(gallery.url, p12=client.files["p12"], password=PASSWORD, ca=ca, images=False).status == 200
        Workspace(workspace.home).revoke("eager-client", reason="key-compromise")
        with pytest.raises(Refused):
            fetch(gallery.url, p12=client.files["p12"], password=PASSWORD, ca=ca, images=False)
        assert gallery.refusals[-1].reason.endswith("(key-compromise) (OCSP)")
        # The CRL is not what refused it: the server never loaded one.
        assert gallery._tls.revoked == frozenset()
        newcomer = workspace.issue("newcomer", profile="client", key="p256", p12=True, p12_password=PASSWORD)
        assert fetch(gallery.url, p12=newcomer.files["p12"], password=PASSWORD, ca=ca, images=False).status == 200
        responder.stop()
        with pytest.raises(Refused):  # no answer, no entry
            fetch(gallery.url, p12=newcomer.files["p12"], password=PASSWORD, ca=ca, images=False)
        assert gallery.refusals[-1].reason.startswith("no OCSP answer")


@pytest.mark.parametrize("kind, asks, refused", [
    ("nginx", "ssl_ocsp_responder     {url};", "400"),  # nginx answers with its error page
    ("apache", "SSLOCSPDefaultResponder {url}", "000"),  # Apache ends the handshake
])
def test_web_servers_ask_the_responder_and_need_no_reload(story, kind, asks, refused):
    workspace, _, client = story
    with OcspServer(workspace.home) as responder, web_site(workspace, kind, ocsp=responder.url) as web:
        config = web.site.config.read_text()
        assert asks.format(url=responder.url) in config and "ssl_crl " not in config
        assert "SSLCARevocationFile" not in config
        assert curl_status(web.url, client.files["p12"], ca=workspace.ca_certificate_path) == "200"
        Workspace(workspace.home).revoke("eager-client")
        assert curl_status(web.url, client.files["p12"], ca=workspace.ca_certificate_path).startswith(refused)
        assert "certificate revoked" in web.log_tail(30) or "revoked" in web.log_tail(30).lower()
