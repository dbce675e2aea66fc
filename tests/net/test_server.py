"""The picture-server: mutual TLS with the CA, refusals logged with their reason, CRL reload, many clients."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time

import pytest
from support.pki import build_two_roots
from support.system import PASSWORD

from kittylab import KittylabError
from kittylab.net.client import Refused, client_context, fetch
from kittylab.net.server import PictureServer
from kittylab.render.gallery import gallery_page, pictures


def last_refusal(server: PictureServer, before: int, *, timeout: float = 5.0):
    """The refusal logged after ``before`` ones (the server logs it in its worker thread)."""
    deadline = time.monotonic() + timeout
    while len(server.refusals) <= before:
        assert time.monotonic() < deadline, "the server logged no refusal"
        time.sleep(0.01)
    return server.refusals[-1]


def test_gallery_greets_the_client_by_its_certificate(cast, server):
    response = fetch(server.url, ca=cast.ca, **cast.credentials("valid"))
    assert response.status == 200
    assert response.content_type == "text/html; charset=utf-8"
    page = response.text
    assert 'Hello, <span class="kl-cn">eager-client</span>!' in page
    assert cast.client.record.serial_hex in page
    assert f"{cast.client.certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC" in page
    assert "<title>picture-server: the cat gallery</title>" in page
    assert sorted(response.pictures) == sorted(f"/static/{name}" for name, _ in pictures())
    assert len(response.pictures) >= 4
    assert response.headers["x-ssl-client-s-dn"] == "CN=eager-client,O=Kitty Inc,C=DE"


def test_whoami_and_not_found(cast, server):
    identity = fetch(server.url + "whoami", ca=cast.ca, **cast.credentials("legacy")).json()
    assert identity == {
        "cn": "eager-client",
        "subject": "CN=eager-client,O=Kitty Inc,C=DE",
        "serial": cast.client.record.serial_hex,
        "not_after": f"{cast.client.certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
        "issuer": "kitty-ca",
    }
    for path in ("nothing", "static/../server.py", "static/make_cats.py", "static/"):
        assert fetch(server.url + path, ca=cast.ca, **cast.credentials("valid")).status == 404


@pytest.mark.parametrize("tls_max", ["1.2", "1.3"])
@pytest.mark.parametrize(
    "who, server_reason, client_reason",
    [
        ("none", "no certificate", "no-certificate"),
        ("revoked", "revoked", "revoked"),
        ("stranger", "unknown CA", "unknown-ca"),
        ("expired", "expired", "expired"),
    ],
)
def test_refusals_have_their_reason_on_both_sides(cast, server, who, server_reason, client_reason, tls_max):
    before = len(server.refusals)
    with pytest.raises(Refused) as refused:
        fetch(server.url, ca=cast.ca, tls_max=tls_max, **cast.credentials(who))
    assert refused.value.reason == client_reason
    assert str(refused.value).startswith("the server refused the connection: ")
    refusal = last_refusal(server, before)
    assert refusal.reason == server_reason
    assert refusal.peer.startswith("127.0.0.1:")


def test_refusals_are_logged(cast, server, caplog):
    with caplog.at_level("WARNING", logger="kittylab.net.server"):
        before = len(server.refusals)
        with pytest.raises(Refused):
            fetch(server.url, ca=cast.ca, **cast.credentials("revoked"))
        last_refusal(server, before)
    assert any("refused 127.0.0.1:" in r.getMessage() and r.getMessage().endswith(": revoked") for r in caplog.records)


def test_plain_http_is_refused_with_its_reason(server):
    before = len(server.refusals)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):
            plain.recv(100)
    assert last_refusal(server, before).reason == "plain HTTP sent to the HTTPS port"


def test_revocation_takes_effect_without_restart(cast, server):
    issued = cast.issue_client("late-client")
    credentials = {"p12": issued.files["p12"], "password": PASSWORD}
    assert fetch(server.url, ca=cast.ca, images=False, **credentials).status == 200
    reloads = server.reloads
    cast.workspace.revoke("late-client")
    with pytest.raises(Refused) as refused:
        fetch(server.url, ca=cast.ca, images=False, **credentials)
    assert refused.value.reason == "revoked"
    assert server.reloads == reloads + 1
    assert fetch(server.url, ca=cast.ca, images=False, **cast.credentials("valid")).status == 200


def test_revocation_cuts_off_an_open_connection(cast, server):
    """A browser keeps its connection open: a revocation must not wait for it to reconnect."""
    issued = cast.issue_client("kept-alive-client")
    context = client_context(ca=cast.ca, p12=issued.files["p12"], password=PASSWORD)
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
    try:
        connection.request("GET", "/whoami")
        first = connection.getresponse()
        assert first.status == 200 and first.read()
        cast.workspace.revoke("kept-alive-client")
        connection.request("GET", "/whoami")
        answer = connection.getresponse()
        assert (answer.status, answer.read()) == (403, b"certificate revoked\n")
        assert answer.getheader("Connection") == "close"
    finally:
        connection.close()
    assert server.refusals[-1].reason == "revoked (on a connection opened before the revocation)"


def test_stop_ends_open_connections(cast):
    context = client_context(ca=cast.ca, **cast.credentials("valid"))
    with PictureServer(cast.workspace) as stopping:
        connection = http.client.HTTPSConnection("127.0.0.1", stopping.port, context=context, timeout=10)
        connection.request("GET", "/whoami")
        assert connection.getresponse().read()
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException, ssl.SSLError)):
            connection.request("GET", "/whoami")
            connection.getresponse().read()
    finally:
        connection.close()


def test_a_silent_client_blocks_no_one(cast, server):
    """A client that connects and never speaks holds only its own worker, until the handshake timeout."""
    before = len(server.refusals)
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        started = time.monotonic()
        assert fetch(server.url, ca=cast.ca, images=False, **cast.credentials("valid")).status == 200
        assert time.monotonic() - started < 1.5  # well before the 2 s handshake timeout
        deadline = time.monotonic() + 10
        while sum(r.reason == "handshake timed out" for r in list(server.refusals)[before:]) < 3:
            assert time.monotonic() < deadline, list(server.refusals)[before:]
            time.sleep(0.05)
    finally:
        for sock in silent:
            sock.close()


def test_many_clients_at_once(cast, server):
    """8 concurrent clients, 504 requests: every one 200, no refusal. Each client reconnects every
    9 requests, so handshakes and keep-alive requests overlap."""
    contexts = [client_context(ca=cast.ca, **cast.credentials("valid")) for _ in range(8)]
    refused_before = len(server.refusals)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def client(context: ssl.SSLContext) -> None:
        try:
            for _ in range(7):
                connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=30)
                for _ in range(9):
                    connection.request("GET", "/")
                    answer = connection.getresponse()
                    answer.read()
                    statuses.append(answer.status)
                connection.close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(context,)) for context in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert len(statuses) == 8 * 7 * 9 >= 500
    assert set(statuses) == {200}
    assert len(server.refusals) == refused_before


def test_start_stop_and_repr(cast):
    server = PictureServer(cast.workspace)
    assert not server.running
    with server:
        assert server.running and server.port > 0
        assert repr(server).startswith(f"<PictureServer https://127.0.0.1:{server.port}/ running")
        port = server.port
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_server_from_explicit_files(cast):
    ws = cast.workspace
    with PictureServer(cert=ws.path("picture-server", "crt"), key=ws.path("picture-server", "key"),
                       ca=ws.ca_certificate_path, crl=ws.crl_path) as server:
        assert fetch(server.url, ca=cast.ca, images=False, **cast.credentials("valid")).status == 200


def test_missing_or_mismatched_files_are_one_line_errors(cast, tmp_path):
    ws = cast.workspace
    with pytest.raises(KittylabError, match="missing: issue it first"):
        PictureServer(ws, name="no-such-server")
    with pytest.raises(KittylabError, match="give a workspace, or all of cert, key, ca and crl"):
        PictureServer(cert=ws.path("picture-server", "crt"))
    with pytest.raises(KittylabError, match="does the key belong to the certificate"):
        PictureServer(ws, key=ws.path("eager-client", "key"))


def test_busy_port_is_a_one_line_error(cast, server):
    with pytest.raises(KittylabError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        PictureServer(cast.workspace, port=server.port).start()


def test_gallery_page_escapes_what_it_is_given():
    page = gallery_page({"cn": "<script>", "subject": "s", "serial": "01", "not_after": "x", "issuer": "i"},
                        server_name="p", ca_name="c")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_below_an_intermediate_ca(tmp_path):
    """An offline root and an issuing intermediate: the server sends its chain, clients trust the root."""
    from support.pki import build_hierarchy

    tree = build_hierarchy(tmp_path / "ws")
    workspace = tree.workspace
    root = workspace.path("kitty-root", "crt")
    credentials = {"p12": tree.client.files["p12"], "password": PASSWORD}
    with PictureServer(workspace) as server:
        response = fetch(server.url + "whoami", ca=root, **credentials)
        assert response.json()["issuer"] == "kitty-issuing"
        workspace.revoke("eager-client")
        with pytest.raises(Refused) as refused:
            fetch(server.url, ca=root, **credentials)
        assert refused.value.reason == "revoked"
    workspace.close()


def test_clients_of_another_ca(tmp_path):
    """Two roots, one for servers and one for clients: client_ca names the one whose clients get in."""
    roots = build_two_roots(tmp_path / "ws")
    workspace, client = roots.workspace, roots.client
    credentials = {"key": client.files["key"], "cert": client.files["crt"]}
    server_ca = workspace.path("server-ca", "crt")
    with PictureServer(workspace, client_ca="client-ca") as server:
        assert fetch(server.url, ca=server_ca, images=False, **credentials).status == 200
    with PictureServer(workspace, client_ca="server-ca") as server:
        with pytest.raises(Refused):
            fetch(server.url, ca=server_ca, images=False, **credentials)
    workspace.close()


NAMES = ["Łukasz Wróbel", "Mehmet Yılmaz", "Ayşe Kaya", "Nguyễn Thị Thu", "Đặng Văn Lâm", "李雷", "محمد علي"]


def test_every_name_is_greeted_and_its_subject_header_is_rfc4514_ascii(cast, server):
    from cryptography import x509

    for number, name in enumerate(NAMES):
        issued = cast.workspace.issue(f"intl-{number}", profile="client", key="p256", subject=f"/CN={name}/OU=R, D",
                                      p12=True, p12_password=PASSWORD)
        response = fetch(server.url, ca=cast.ca, p12=issued.files["p12"], password=PASSWORD)
        assert response.status == 200, name
        assert f'Hello, <span class="kl-cn">{name}</span>!' in response.text
        header = response.headers["x-ssl-client-s-dn"]
        assert header.isascii()
        assert x509.Name.from_rfc4514_string(header) == issued.certificate.subject
        whoami = fetch(server.url + "whoami", ca=cast.ca, p12=issued.files["p12"], password=PASSWORD).json()
        assert whoami["cn"] == name


def test_an_error_while_answering_is_a_500_and_logged_never_an_empty_reply(cast, server, caplog, monkeypatch):
    import kittylab.net.server as module

    def broken(*args, **kwargs):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(module, "gallery_page", broken)
    with caplog.at_level("ERROR", logger="kittylab.server"):
        response = fetch(server.url, ca=cast.ca, **cast.credentials("valid"))
    assert response.status == 500 and b"see the server's log" in response.body
    assert any("template exploded" in (record.exc_text or str(record.exc_info)) for record in caplog.records)
