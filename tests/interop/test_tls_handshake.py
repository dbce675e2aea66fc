"""A real TLS handshake with client authentication through Python's ssl module.

A tiny server in a thread requires a client certificate issued by the CA and checks the CA's
CRL (``VERIFY_CRL_CHECK_LEAF``); TLS 1.2 is pinned where the exact reason for a refusal matters
(under TLS 1.3 the client learns of the refusal only on its first read, in varying words).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from kittylab import Workspace


class MutualTLSServer:
    """Accepts connections on 127.0.0.1, handshakes in a worker thread, answers with the client's CN."""

    def __init__(self, workspace: Workspace, server_files: dict, *, maximum=ssl.TLSVersion.TLSv1_3) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.maximum_version = maximum
        context.load_cert_chain(server_files["crt"], server_files["key"])
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=workspace.ca_certificate_path)
        context.load_verify_locations(cafile=workspace.crl_path)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        self.context = context
        self.refusals: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
                tls.do_handshake()
                subject = dict(pair[0] for pair in tls.getpeercert()["subject"])
                tls.recv(100)
                tls.sendall(f"hello {subject['commonName']}".encode())
        except (ssl.SSLError, OSError) as exc:
            self.refusals.append(str(exc))

    def refused_because(self, *reasons: str) -> bool:
        """Wait (a little) for the worker threads to log a refusal naming each of ``reasons``."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            logged = " | ".join(self.refusals)
            if all(reason in logged for reason in reasons):
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def serve(story):
    servers = []

    def start(**kwargs) -> MutualTLSServer:
        workspace, server, _ = story
        servers.append(MutualTLSServer(workspace, server.files, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_context(workspace: Workspace, files: dict | None, *, maximum=ssl.TLSVersion.TLSv1_3) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(workspace.ca_certificate_path))
    context.maximum_version = maximum
    if files:
        context.load_cert_chain(files["crt"], files["key"])
    return context


def talk(context: ssl.SSLContext, port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET")
            return tls.recv(100).decode()


def assert_refused(workspace: Workspace, files: dict | None, server: MutualTLSServer, match: str) -> None:
    """A TLS 1.2 handshake with ``files`` (None: no certificate) that fails as ``match`` says on the client's side."""
    with pytest.raises(ssl.SSLError, match=match):
        talk(client_context(workspace, files, maximum=ssl.TLSVersion.TLSv1_2), server.port)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_the_issued_client_is_let_in(story, serve, version):
    workspace, _, client = story
    server = serve(maximum=version)
    assert talk(client_context(workspace, client.files, maximum=version), server.port) == "hello eager-client"
    assert server.refusals == []


@pytest.mark.parametrize(
    "who, client_sees, server_logs",
    [
        ("revoked client", "certificate revoked", "certificate revoked"),
        ("server certificate", "unsupported certificate", "unsuitable certificate purpose"),  # it cannot log in as a client
    ],
)
def test_a_revoked_client_and_a_server_certificate_are_refused(story, serve, who, client_sees, server_logs):
    workspace, server_issued, client = story
    if who == "revoked client":
        workspace.revoke("eager-client", reason="key-compromise")
    server = serve(maximum=ssl.TLSVersion.TLSv1_2)  # a fresh context reads the new CRL
    assert_refused(workspace, client.files if who == "revoked client" else server_issued.files, server, client_sees)
    assert server.refused_because(server_logs), server.refusals


def test_no_certificate_and_a_foreign_one_are_refused(story, serve, tmp_path):
    workspace, _, _ = story
    server = serve(maximum=ssl.TLSVersion.TLSv1_2)
    assert_refused(workspace, None, server, "handshake failure|certificate required")
    with Workspace(tmp_path / "elsewhere") as other:
        other.init_ca("mallory-ca", key="p256")
        stranger = other.issue("eager-client", profile="client", key="p256")
        assert_refused(workspace, stranger.files, server, "unknown ca")
    assert server.refused_because("PEER_DID_NOT_RETURN_A_CERTIFICATE", "unable to get local issuer certificate")


def test_the_client_checks_the_server_too(story, serve, tmp_path):
    workspace, _, client = story
    server = serve()
    with Workspace(tmp_path / "elsewhere") as other:
        other.init_ca("mallory-ca", key="p256")
        context = client_context(other, client.files)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        talk(context, server.port)
