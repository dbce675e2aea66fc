"""``kittylab publish``: each CA's current CRL and certificate over plain HTTP, DER, read live."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from cryptography import x509
from support.pki import build_hierarchy

from kittylab import KittylabError, Workspace
from kittylab.net.publisher import Publisher


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def test_crls_and_certificates_of_every_ca_as_der(tmp_path):
    tree = build_hierarchy(tmp_path / "ws")
    with Publisher(tree.home) as publisher:
        assert publisher.paths() == ["/kitty-root.crt", "/kitty-root.crl", "/kitty-issuing.crt", "/kitty-issuing.crl"]
        for name in ("kitty-root", "kitty-issuing"):
            status, kind, body = get(f"{publisher.url}/{name}.crl")
            assert (status, kind) == (200, "application/pkix-crl")
            assert x509.load_der_x509_crl(body) == tree.workspace.current_crl(name)
            status, kind, body = get(f"{publisher.url}/{name}.crt")
            assert (status, kind) == (200, "application/pkix-cert")
            assert x509.load_der_x509_certificate(body) == tree.workspace.ca_record(name).certificate
        for path in ("/kitty-root.key", "/picture-server.crt", "/kitty-root", "/../kittylab.sqlite3", "/"):
            status, kind, body = get(f"{publisher.url}{path}")
            assert status == 404 and kind.startswith("text/plain") and b"/kitty-root.crl" in body, path


def test_read_live_a_revocation_and_a_new_ca_show_at_once(tmp_path):
    tree = build_hierarchy(tmp_path / "ws")
    with Publisher(tree.home) as publisher:
        before = x509.load_der_x509_crl(get(f"{publisher.url}/kitty-issuing.crl")[2])
        assert len(before) == 0
        with Workspace(tree.home) as other:  # another process, as the command line would be
            other.revoke("eager-client", reason="key-compromise")
            other.init_ca("kitty-second", key="p256", intermediate_of="kitty-root")
        after = x509.load_der_x509_crl(get(f"{publisher.url}/kitty-issuing.crl")[2])
        assert after.get_revoked_certificate_by_serial_number(tree.client.certificate.serial_number) is not None
        assert get(f"{publisher.url}/kitty-second.crt")[0] == 200


def test_a_workspace_without_a_ca_has_nothing_to_publish(tmp_path):
    with pytest.raises(KittylabError, match="no CA"):
        Publisher(tmp_path / "empty")
