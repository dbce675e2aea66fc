"""Helpers for the mTLS tests: the cast of clients (valid, revoked, expired, from another CA), a tiny
plain-HTTP application that echoes the identity headers a web server passes on, and the checks
that nginx and Apache must both pass."""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import re
import secrets
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from kittylab import Issued, Workspace
from kittylab.net.client import Refused, fetch
from kittylab.net.webconfig import write_site
from kittylab.pki.ca import utcnow
from kittylab.pki.files import write_atomically
from kittylab.pki.keys import generate_key, key_to_pem
from kittylab.pki.names import Subject
from kittylab.pki.profiles import PROFILES
from kittylab.ui.sites import RunningSite
from support.system import free_port, require_binary

PASSWORD = "kitty-pass"
#: Names a class brings: many scripts, and the characters RFC 4514 escapes.
WORLD_NAMES = ["Ayşe Kaya", "José Álvarez", "李雷", "Дмитрий Иванов", "Γιώργος Παπαδόπουλος", "김민준", "محمد علي",
               "Nguyễn Thị Thu", "Zoë O'Brien", "Kai, Müller + Co; <b>&\"q\"", "#hash =equals"]


def expired_client(workspace: Workspace, name: str) -> tuple[Path, Path]:
    """A client certificate signed by the workspace's CA that expired a year ago: (key, crt) files.

    The CA refuses to backdate before its own start, so this is built directly with the CA's key.
    """
    key = generate_key("p256")
    ca = workspace.ca
    start = utcnow() - dt.timedelta(days=400)
    builder = (
        x509.CertificateBuilder()
        .subject_name(Subject(cn=name, o="Kitty Inc").to_name())
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(64) | 1 << 63)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
    )
    for extension, critical in PROFILES["client"].extensions(key.public_key(), ca.certificate, []):
        builder = builder.add_extension(extension, critical=critical)
    certificate = builder.sign(ca.key, hashes.SHA256())
    key_path = write_atomically(workspace.home / f"{name}.key", key_to_pem(key), secret=True)
    crt_path = write_atomically(workspace.home / f"{name}.crt", certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, crt_path


@dataclass
class Cast:
    """kitty-ca's workspace with picture-server and every kind of client a server must tell apart."""

    workspace: Workspace
    server: Issued
    client: Issued  # eager-client, modern p12 with PASSWORD
    legacy_p12: Path  # eager-client's key and certificate as a 3DES/SHA-1 p12
    revoked: Issued
    expired: tuple[Path, Path]
    stranger: Issued  # a client of another CA
    other_ca: Path

    @property
    def ca(self) -> Path:
        return self.workspace.ca_certificate_path

    def credentials(self, who: str) -> dict:
        """fetch() keyword arguments for a client: valid, legacy, revoked, expired, stranger or none."""
        if who == "valid":
            return {"p12": self.client.files["p12"], "password": PASSWORD}
        if who == "legacy":
            return {"p12": self.legacy_p12, "password": PASSWORD}
        if who == "none":
            return {}
        key, cert = {
            "revoked": (self.revoked.files["key"], self.revoked.files["crt"]),
            "expired": self.expired,
            "stranger": (self.stranger.files["key"], self.stranger.files["crt"]),
        }[who]
        return {"key": key, "cert": cert}

    def curl_options(self, who: str) -> list[str]:
        """The same client for curl."""
        given = self.credentials(who)
        if "p12" in given:
            return ["--cert-type", "P12", "--cert", f"{given['p12']}:{PASSWORD}"]
        return ["--cert", str(given["cert"]), "--key", str(given["key"])] if given else []

    def issue_client(self, name: str) -> Issued:
        return self.workspace.issue(name, profile="client", key="p256", p12=True, p12_password=PASSWORD)


def build_cast(home: Path) -> Cast:
    workspace = Workspace(home / "kitty-workspace")
    workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
    server = workspace.issue("picture-server", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"])
    client = workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password=PASSWORD)
    legacy = home / "eager-client-legacy.p12"
    legacy.write_bytes(workspace.export_p12("eager-client", password=PASSWORD, legacy=True)[0].read_bytes())
    workspace.export_p12("eager-client", password=PASSWORD)  # the modern one again, at its usual path
    revoked = workspace.issue("revoked-client", profile="client", key="p256")
    workspace.revoke("revoked-client", reason="key-compromise")
    other = Workspace(home / "other-workspace")
    other.init_ca("/O=Evil Corp/CN=evil-ca", key="p256")
    stranger = other.issue("eager-client", profile="client", key="p256")
    other_ca = other.ca_certificate_path
    other.close()
    return Cast(workspace, server, client, legacy, revoked, expired_client(workspace, "expired-client"), stranger,
                other_ca)


class IdentityEcho:
    """A plain-HTTP application on loopback that answers with the X-SSL-* headers it was given."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = {k: v for k, v in self.headers.items() if k.lower().startswith("x-ssl-")}
                body = json.dumps({"path": self.path, "headers": seen}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "IdentityEcho":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def curl(require, url: str, cast: Cast, who: str) -> tuple[str, str, str]:
    """Run curl as that client: (HTTP status, or '000' when the TLS handshake failed; body; stderr)."""
    result = subprocess.run(
        [require("curl"), "-sS", "-w", "\n%{http_code}", "--cacert", str(cast.ca), *cast.curl_options(who), url],
        capture_output=True, text=True, timeout=30,
    )
    body, _, status = result.stdout.rpartition("\n")
    return status.strip(), body, result.stderr.strip()


class WebServerChecks:
    """The checks nginx and Apache must both pass with kittylab's generated configuration.

    A test module sets ``KIND`` (nginx or apache), subclasses this with the configuration lines it
    expects, and provides the fixtures ``cast`` and ``web`` (a RunningSite of its ``KIND`` with an
    IdentityEcho upstream).
    """

    #: What the configuration without an upstream must say ({crl}: the CRL in the deploy folder)...
    config_says: tuple[str, ...] = ()
    #: ...and what it must not (no upstream, no proxying).
    config_omits = ""

    @pytest.fixture
    def kind(self, request) -> str:
        """The module's ``KIND``: the web server its ``web`` fixture runs."""
        return request.module.KIND

    def test_config_requires_a_client_certificate_and_names_the_crl_and_the_reload(self, kind, story, tmp_path):
        assert self.config_says and self.config_omits
        workspace, _, _ = story
        text = write_site(kind, workspace, tmp_path / kind, port=9443).config.read_text()
        crl = workspace.home.resolve() / "deploy" / "clients-of-kitty-ca.crl"
        for line in self.config_says:
            assert line.format(crl=crl) in text
        assert self.config_omits not in text

    def test_config_is_accepted_by_the_server_itself(self, kind, web, require):
        site = web.site
        if kind == "nginx":
            command = [require("nginx"), "-t", "-p", f"{site.config.parent}/", "-c", str(site.config), "-e", "stderr"]
        else:
            command = [require("apache2"), "-t", "-d", str(site.config.parent), "-f", str(site.config)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        text = site.config.read_text()
        for needle in ("/deploy/clients-of-kitty-ca.pem", "/deploy/clients-of-kitty-ca.crl",
                       "/deploy/picture-server.fullchain.pem", "/deploy/picture-server.key"):
            assert needle in text

    def test_valid_client_sees_the_gallery_and_is_named(self, cast, web):
        for who in ("valid", "legacy"):
            response = fetch(web.url, ca=cast.ca, **cast.credentials(who))
            assert response.status == 200
            assert 'Hello, <span class="kl-cn">eager-client</span>!' in response.text
            assert cast.client.record.serial_hex in response.text
            assert len(response.pictures) == 6
            assert all(kind == "image/svg+xml" and data.startswith(b"<svg") for kind, data in response.pictures.values())
            assert response.server_subject.startswith("CN=picture-server")

    def test_identity_is_passed_on(self, cast, web):
        whoami = fetch(web.url + "whoami", ca=cast.ca, **cast.credentials("valid")).json()
        assert whoami["cn"] == "eager-client"
        assert whoami["subject"] == "CN=eager-client,O=Kitty Inc,C=DE"
        assert whoami["serial"].upper() == cast.client.record.serial_hex
        seen = fetch(web.url + "app/hello", ca=cast.ca, **cast.credentials("valid")).json()
        assert seen["path"] == "/app/hello"
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        assert headers["x-ssl-client-verify"] == "SUCCESS"
        assert headers["x-ssl-client-cn"] == "eager-client"
        assert headers["x-ssl-client-s-dn"] == "CN=eager-client,O=Kitty Inc,C=DE"
        assert headers["x-ssl-client-serial"].upper() == cast.client.record.serial_hex

    def test_curl_valid_client_is_named_and_passed_on(self, cast, web, require):
        status, page, _ = curl(require, web.url, cast, "valid")
        assert status == "200" and 'Hello, <span class="kl-cn">eager-client</span>!' in page
        status, seen, _ = curl(require, web.url + "app/", cast, "legacy")
        assert status == "200" and json.loads(seen)["headers"]["X-SSL-Client-CN"] == "eager-client"

    @pytest.mark.parametrize("who", ["none", "revoked", "stranger", "expired"])
    def test_refused(self, cast, web, require, who):
        with pytest.raises(Refused) as refused:
            fetch(web.url, ca=cast.ca, **cast.credentials(who))
        if who == "none":
            assert refused.value.reason == "no-certificate"
        status, _, _ = curl(require, web.url, cast, who)
        assert status != "200"

    def test_every_script_is_greeted_by_its_real_name(self, kind, cast, web):
        """Names in many scripts and with RFC 4514's special characters, greeted as written (issue: nginx
        showed Ay\\C5\\9Fe); /whoami says the same (Apache escapes HTML's characters in it)."""
        for number, name in enumerate(WORLD_NAMES):
            issued = cast.workspace.issue(f"world-{kind}-{number}", profile="client", key="p256",
                                          subject=Subject(cn=name, ou="Research, Development", o="Kitty Inc"),
                                          p12=True, p12_password=PASSWORD)
            credentials = {"ca": cast.ca, "p12": issued.files["p12"], "password": PASSWORD, "images": False}
            page = fetch(web.url, **credentials).text
            greeted = re.search(r'Hello, <span class="kl-cn">(.*?)</span>!', page).group(1)
            assert "<" not in greeted and html.unescape(greeted) == name
            subject = re.search(r'<dd class="kl-subject">(.*?)</dd>', page).group(1)
            assert x509.Name.from_rfc4514_string(html.unescape(subject)) == issued.certificate.subject
            whoami = fetch(web.url + "whoami", **credentials).json()
            if kind == "nginx":
                assert whoami["cn"] == name
                assert whoami["subject"] == issued.certificate.subject.rfc4514_string()
            else:
                assert html.unescape(whoami["cn"]) == name

    def test_revocation_takes_effect_after_reload(self, kind, cast, web, require):
        name = f"late-client-{kind}"
        cast.issue_client(name)
        p12 = cast.workspace.path(name, "p12")
        assert fetch(web.url, ca=cast.ca, p12=p12, password=PASSWORD, images=False).status == 200
        cast.workspace.revoke(name)
        web.reload()  # returns when the workers that read the old CRL are gone
        with pytest.raises(Refused):
            fetch(web.url, ca=cast.ca, p12=p12, password=PASSWORD, images=False)
        assert curl(require, web.url, cast, "valid")[0] == "200"  # the others are not affected
        result = subprocess.run([require("curl"), "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                                 str(cast.ca), "--cert-type", "P12", "--cert", f"{p12}:{PASSWORD}", web.url],
                                capture_output=True, text=True, timeout=30)
        assert result.stdout.strip() != "200"


@contextlib.contextmanager
def running_site(kind: str, cast: Cast) -> Iterator[RunningSite]:
    """The generated site for ``kind`` with an IdentityEcho behind /app/, running privately."""
    require_binary("nginx" if kind == "nginx" else "apache2")
    # Apache's workers drop root's rights, so the web root must be readable for them: the site
    # gets its own world-readable folder (pytest's temp folders are private to their owner).
    with tempfile.TemporaryDirectory(prefix=f"kittylab-{kind}-") as directory:
        Path(directory).chmod(0o755)
        with IdentityEcho() as upstream:
            site = write_site(kind, cast.workspace, directory, port=free_port(), upstream=upstream.url)
            with RunningSite(site) as running:
                yield running
