"""The CRLs and CA certificates a validator fetches are static files: the workspace keeps them in
``published/`` (DER, named as their URLs), ``kittylab publish`` serves the same bytes, and the nginx
and Apache configurations from ``webconfig --publish-port`` serve that folder."""

from __future__ import annotations

import tempfile
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from support.system import free_port, require_binary

from kittylab import Workspace
from kittylab.net.publisher import Publisher
from kittylab.net.webconfig import write_site
from kittylab.ui.sites import RunningSite


def get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.headers["Content-Type"], reply.read()


def test_published_folder_follows_every_crl_and_is_repaired(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        ws.init_ca("kitty-root", key="p256")
        ws.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-root")
        client = ws.issue("eager-client", profile="client", key="p256")
        ws.revoke("eager-client", reason="key-compromise")
        published = ws.home / "published"
        assert sorted(p.name for p in published.iterdir()) == [
            "kitty-issuing.crl", "kitty-issuing.crt", "kitty-root.crl", "kitty-root.crt"]
        crl = x509.load_der_x509_crl((published / "kitty-issuing.crl").read_bytes())
        assert crl == ws.current_crl("kitty-issuing") and crl.get_revoked_certificate_by_serial_number(
            client.certificate.serial_number) is not None
        with Publisher(ws.home) as publisher:
            for name in ("kitty-root.crl", "kitty-root.crt", "kitty-issuing.crl", "kitty-issuing.crt"):
                assert get(f"{publisher.url}/{name}")[1] == (published / name).read_bytes(), name
        (published / "kitty-issuing.crl").unlink()
        (published / "kitty-root.crt").write_bytes(b"swapped")
        fixed = ws.repair()
        assert (published / "kitty-issuing.crl").exists() and any("kitty-issuing's CRL" in line for line in fixed)
        root = ws.ca_record("kitty-root").certificate
        assert (published / "kitty-root.crt").read_bytes() == root.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("kind", ["nginx", "apache"])
def test_web_servers_serve_the_same_files(kind):
    require_binary("nginx") if kind == "nginx" else require_binary("apache2", "/usr/sbin/apache2")
    # The workers drop root's rights: everything they read lives in a world-readable folder.
    with tempfile.TemporaryDirectory(prefix="kittylab-published-") as directory:
        Path(directory).chmod(0o755)
        with Workspace(Path(directory) / "ws") as ws:
            ws.init_ca("kitty-root", key="p256")
            ws.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-root")
            ws.issue("picture-server", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"])
            ws.revoke(ws.issue("gone", profile="client", key="p256").name)
            port = free_port()
            site = write_site(kind, ws, Path(directory) / "site", port=free_port(), publish_port=port)
            with RunningSite(site), Publisher(ws.home) as publisher:
                for name, media in (("kitty-issuing.crl", "application/pkix-crl"),
                                    ("kitty-root.crl", "application/pkix-crl"),
                                    ("kitty-issuing.crt", "application/pkix-cert")):
                    served = get(f"http://127.0.0.1:{port}/{name}")
                    assert served == (media, get(f"{publisher.url}/{name}")[1]), name
