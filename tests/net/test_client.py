"""eager-client's fetch: both p12 flavours and key + cert, clear errors, curl's equivalent, notebook display."""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import tempfile
from typing import Iterator

import pytest
from support.system import PASSWORD

from kittylab import KittylabError
from kittylab.net.client import Refused, ServerNotTrusted, curl_command, fetch
from kittylab.net.server import PictureServer


@pytest.mark.parametrize("who", ["valid", "legacy"])
def test_fetch_with_either_p12_flavour(cast, server, who):
    response = fetch(server.url, ca=cast.ca, **cast.credentials(who))
    assert response.ok and response.status == 200 and response.reason == "OK"
    assert response.server_subject == "CN=picture-server,O=Kitty Inc,C=DE"
    assert response.tls_version == "TLSv1.3"
    assert "eager-client" in response.text


def test_fetch_with_key_and_cert_and_pem_text(cast, server):
    files = cast.client.files
    response = fetch(server.url, key=files["key"], cert=files["crt"], ca=cast.ca.read_text(), images=False,
                     tls_max="1.2")
    assert response.status == 200 and response.tls_version == "TLSv1.2"
    assert response.pictures == {}


def test_no_private_key_is_left_behind(cast, server, tmp_path, monkeypatch):
    # a temporary folder of its own: other tests (other xdist workers) fetch at the same time
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def leftovers() -> set[str]:
        return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("kittylab-client-")}

    before = leftovers()
    fetch(server.url, ca=cast.ca, images=False, **cast.credentials("valid"))
    assert leftovers() == before


def test_server_not_trusted(cast, server):
    with pytest.raises(ServerNotTrusted, match="server certificate not trusted: .*trust the CA"):
        fetch(server.url, ca=cast.other_ca, **cast.credentials("valid"))


def test_hostname_must_match_the_server_certificate(cast):
    cast.workspace.issue("elsewhere-server", profile="server", key="p256", dns=["elsewhere.test"])
    with PictureServer(cast.workspace, name="elsewhere-server") as elsewhere:
        with pytest.raises(ServerNotTrusted, match="(?i)mismatch"):
            fetch(elsewhere.url, ca=cast.ca, **cast.credentials("valid"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"p12": "eager-client.p12"}, "the p12 needs its password"),
        ({"key": "k.key"}, "needs both key= and cert="),
        ({"p12": "x.p12", "password": "p", "key": "k"}, "either p12= or key= and cert="),
        ({"tls_max": "1.1"}, "tls_max must be one of"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(KittylabError, match=message):
        fetch("https://127.0.0.1:1/", **kwargs)


def test_wrong_p12_password(cast, server):
    with pytest.raises(KittylabError, match="wrong password for the p12 file"):
        fetch(server.url, ca=cast.ca, p12=cast.client.files["p12"], password="not-it")


def test_not_https_and_nothing_listening(cast):
    with pytest.raises(KittylabError, match="is not an https:// URL"):
        fetch("http://127.0.0.1/", ca=cast.ca)
    with socket_bound() as port:
        with pytest.raises(KittylabError, match="nothing is listening at 127.0.0.1"):
            fetch(f"https://127.0.0.1:{port}/", ca=cast.ca, **cast.credentials("valid"))


@contextlib.contextmanager
def socket_bound() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_response_displays_in_a_notebook(cast, server):
    response = fetch(server.url, ca=cast.ca, **cast.credentials("valid"))
    text = repr(response)
    assert text.startswith("<Response 200 OK: ") and "text/html from CN=picture-server" in text
    inline = response._repr_html_()
    assert inline.startswith("<style>") and '<main class="kl-gallery">' in inline
    assert "<html" not in inline and "<body" not in inline  # no page-wide rules leak into the notebook
    assert inline.count('src="data:image/svg+xml;base64,') == len(response.pictures) == 6
    assert 'src="/static/' not in inline
    whoami = fetch(server.url + "whoami", ca=cast.ca, **cast.credentials("valid"))
    assert whoami._repr_html_().startswith("<pre>")


def test_curl_command_does_the_same(cast, server, require, tmp_path):
    password_file = tmp_path / "password.txt"
    password_file.write_text(PASSWORD + "\n")
    line = curl_command(server.url + "whoami", p12=cast.client.files["p12"], password_file=password_file, ca=cast.ca)
    assert PASSWORD not in line
    assert line.startswith("curl ")
    result = subprocess.run(["bash", "-c", line.replace("curl ", shlex.quote(require("curl")) + " ", 1)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert '"cn": "eager-client"' in result.stdout
    key_line = curl_command(server.url, key=cast.revoked.files["key"], cert=cast.revoked.files["crt"], ca=cast.ca)
    refused = subprocess.run(["bash", "-c", key_line], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0  # curl's own words vary under TLS 1.3 (field notes); kittylab's do not


def test_refused_is_a_kittylab_error_with_a_reason(cast, server):
    with pytest.raises(KittylabError) as refused:
        fetch(server.url, ca=cast.ca, **cast.credentials("revoked"))
    assert isinstance(refused.value, Refused) and refused.value.reason == "revoked"
    assert str(refused.value) == "the server refused the connection: certificate revoked"
