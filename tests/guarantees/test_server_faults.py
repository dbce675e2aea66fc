"""The picture-server under faults (issue 7), with good clients served in the meantime.

Bad clients connect and say nothing, send garbage or plain HTTP instead of a TLS hello, drop in
the middle of the handshake, or present expired, revoked, foreign, self-signed and server
certificates. All of them run at the same time as good clients: every good request must get a
200, every bad one must be refused, and each refusal must be logged with its reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
import threading
import time
from collections import Counter

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kittylab import Workspace, generate_key
from kittylab.net.client import Refused, fetch
from kittylab.net.server import PictureServer
from kittylab.pki.keys import key_to_pem

HANDSHAKE_TIMEOUT = 1.5
GOOD_THREADS, GOOD_REQUESTS = 3, 6


@pytest.fixture
def cast(story, tmp_path):
    """The story plus the troublemakers' credentials, as {name: (cert file, key file)}."""
    workspace, server, client = story
    now = dt.datetime.now(dt.timezone.utc)
    files = {"good": (client.files["crt"], client.files["key"])}
    expired = workspace.issue("expired-client", profile="client", key="p256", days=1, now=now - dt.timedelta(days=3))
    revoked = workspace.issue("revoked-client", profile="client", key="p256")
    workspace.revoke("revoked-client", reason="key-compromise")
    files["expired"] = (expired.files["crt"], expired.files["key"])
    files["revoked"] = (revoked.files["crt"], revoked.files["key"])
    files["server-as-client"] = (server.files["crt"], server.files["key"])
    with Workspace(tmp_path / "mallory") as other:
        other.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")  # the same name, another key
        foreign = other.issue("eager-client", profile="client", key="p256")
        files["foreign"] = (foreign.files["crt"], foreign.files["key"])
    key = generate_key("p256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eager-client")])
    self_signed = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "self.crt").write_bytes(self_signed.public_bytes(Encoding.PEM))
    (tmp_path / "self.key").write_bytes(key_to_pem(key))
    files["self-signed"] = (tmp_path / "self.crt", tmp_path / "self.key")
    return workspace, files


# -- the troublemakers --------------------------------------------------------------------------------


def silent(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"")
        time.sleep(HANDSHAKE_TIMEOUT * 3)  # well past the timeout, even on a loaded machine


def garbage(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\x00\xff garbage, not a TLS client hello " * 10)
        drain(sock)


def plain_http(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        drain(sock)


def client_hello(workspace: Workspace) -> bytes:
    context = ssl.create_default_context(cafile=str(workspace.ca_certificate_path))
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def half_hello(port: int, hello: bytes) -> None:
    """Half a ClientHello, then silence: the server must time the handshake out."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(hello[: len(hello) // 2])
        time.sleep(HANDSHAKE_TIMEOUT * 3)  # well past the timeout, even on a loaded machine


def hang_up_after_server_hello(port: int, hello: bytes) -> None:
    """A whole ClientHello, the server's answer read, then the connection dropped."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(hello)
        sock.recv(1024)


def drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


# -- the test ---------------------------------------------------------------------------------------------


def test_good_clients_are_served_while_bad_ones_are_refused(cast, caplog):
    workspace, files = cast
    caplog.set_level(logging.INFO, logger="kittylab.net.server")
    statuses: list[int] = []
    refused: dict[str, list[str]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    with PictureServer(workspace, handshake_timeout=HANDSHAKE_TIMEOUT) as server:
        url, ca = server.url, workspace.ca_certificate_path
        hello = client_hello(workspace)

        def good() -> None:
            for _ in range(GOOD_REQUESTS):
                try:
                    response = fetch(url, cert=files["good"][0], key=files["good"][1], ca=ca, images=False)
                    with lock:
                        statuses.append(response.status)
                except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                    with lock:
                        errors.append(f"good client: {exc!r}")

        def with_certificate(kind: str) -> None:
            cert, key = files[kind]
            try:
                response = fetch(url, cert=cert, key=key, ca=ca, images=False)
            except Refused as exc:
                with lock:
                    refused.setdefault(kind, []).append(exc.reason)
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"{kind}: unexpected {exc!r}")
            else:
                with lock:
                    errors.append(f"{kind}: let in with status {response.status}")

        def without_certificate() -> None:
            try:
                fetch(url, ca=ca, images=False)
            except Refused as exc:
                with lock:
                    refused.setdefault("none", []).append(exc.reason)

        bad_kinds = ["expired", "revoked", "foreign", "self-signed", "server-as-client"]
        troublemakers = (
            [threading.Thread(target=with_certificate, args=(kind,)) for kind in bad_kinds * 2]
            + [threading.Thread(target=without_certificate) for _ in range(2)]
            + [threading.Thread(target=silent, args=(server.port,)) for _ in range(2)]
            + [threading.Thread(target=garbage, args=(server.port,)) for _ in range(2)]
            + [threading.Thread(target=plain_http, args=(server.port,)) for _ in range(2)]
            + [threading.Thread(target=half_hello, args=(server.port, hello)) for _ in range(2)]
            + [threading.Thread(target=hang_up_after_server_hello, args=(server.port, hello)) for _ in range(2)]
        )
        good_clients = [threading.Thread(target=good) for _ in range(GOOD_THREADS)]
        threads = troublemakers + good_clients
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert statuses == [200] * (GOOD_THREADS * GOOD_REQUESTS), "a good request did not get 200"
        assert set(refused) == {*bad_kinds, "none"} and all(len(v) == 2 for v in refused.values())

        # The server logged every refusal with its reason (the silent ones after their timeout).
        expected = Counter({
            "expired": 2, "revoked": 2, "unknown CA": 4, "not a client certificate (wrong purpose)": 2,
            "no certificate": 2, "plain HTTP sent to the HTTPS port": 2, "not a TLS client": 2,
            "handshake timed out": 4, "the client closed the connection during the handshake": 2,
        })
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Counter(r.reason for r in server.refusals) != expected:
            time.sleep(0.05)
        assert Counter(r.reason for r in server.refusals) == expected
        logged = " ".join(record.getMessage() for record in caplog.records)
        for reason in expected:
            assert f": {reason}" in logged
        # Still serving after all that.
        assert fetch(url, cert=files["good"][0], key=files["good"][1], ca=ca, images=False).status == 200
        assert server.requests_served >= GOOD_THREADS * GOOD_REQUESTS + 1
