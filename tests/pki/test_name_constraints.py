"""Name constraints on an intermediate: only *.example.test, localhost, 127.0.0.0/8 and @kitty.test.

kittylab refuses to sign other names; a certificate made behind its back with the
intermediate's key is refused by OpenSSL (error 47) and by the TLS stack, in both directions.
"""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from cryptography import x509
from support.pki import build_hierarchy, forged_leaf, openssl

from kittylab import KittylabError
from kittylab.pki.ca import CertificateAuthority
from kittylab.pki.constraints import (
    build_name_constraints,
    check_name_constraints,
    describe_constraints,
    website_scope,
)
from kittylab.pki.csr import make_csr
from kittylab.pki.keys import generate_key


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_hierarchy(tmp_path_factory.mktemp("constrained") / "ws", constraints=True)


@pytest.fixture(scope="module")
def forged(tree, tmp_path_factory):
    """Leaves the constrained intermediate's key signed without kittylab: a server and a client."""
    folder = tmp_path_factory.mktemp("forged")
    ca = tree.workspace.ca
    server_key, server_crt = forged_leaf(ca.certificate, ca.key, "bank", dns=["bank.test"], folder=folder)
    client_key, client_crt = forged_leaf(
        ca.certificate, ca.key, "mallory", email="mallory@evil.test", profile="client", folder=folder
    )
    return {"server": (server_crt, server_key), "client": (client_crt, client_key)}


def test_the_intermediate_carries_critical_name_constraints(tree):
    extension = tree.workspace.ca.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert extension.critical
    assert describe_constraints(extension.value) == (
        "permitted: DNS:localhost, DNS:example.test, email:kitty.test, IP:127.0.0.0/8"
    )
    text = openssl("x509", "-in", tree.home / "kitty-issuing.crt", "-noout", "-ext", "nameConstraints").stdout
    assert b"critical" in text and b"DNS:example.test" in text and b"email:kitty.test" in text


@pytest.mark.parametrize(
    "profile, subject, names",
    [
        ("server", "www", {"dns": ["www.example.test"]}),
        ("server", "wild", {"dns": ["*.example.test"]}),
        ("server", "deep", {"dns": ["a.b.example.test"], "ip": ["127.0.0.2"]}),
        ("client", "/CN=carol/emailAddress=carol@kitty.test", {"email": ["carol@kitty.test"]}),
    ],
)
def test_permitted_names_are_signed(tree, profile, subject, names):
    csr = make_csr(generate_key("p256"), subject, **names)
    certificate = tree.workspace.ca.sign(csr, profile=profile)
    assert certificate.issuer == tree.workspace.ca.certificate.subject


@pytest.mark.parametrize(
    "profile, subject, names, refused",
    [
        ("server", "bank", {"dns": ["bank.test"]}, "DNS:bank.test is not permitted"),
        ("server", "near", {"dns": ["notexample.test"]}, "DNS:notexample.test is not permitted"),
        ("server", "lan", {"dns": ["www.example.test"], "ip": ["10.0.0.1"]}, "IP:10.0.0.1 is not permitted"),
        ("client", "mallory", {"email": ["mallory@evil.test"]}, "email:mallory@evil.test is not permitted"),
        ("client", "/CN=eve/emailAddress=eve@evil.test", {}, "email:eve@evil.test is not permitted"),
        ("client", "www.bank.test", {}, "DNS:www.bank.test is not permitted"),
    ],
)
def test_kittylab_refuses_names_outside_the_constraints(tree, profile, subject, names, refused):
    csr = make_csr(generate_key("p256"), subject, **names)
    with pytest.raises(KittylabError, match=refused + ".*name constraints of CN=kitty-issuing"):
        tree.workspace.ca.sign(csr, profile=profile)


def test_excluded_subtrees_win():
    constraints = build_name_constraints(permit_dns=["example.test"], exclude_dns=["secret.example.test"])
    ca = _certificate_with(constraints)
    check_name_constraints([ca], x509.Name([]), [x509.DNSName("www.example.test")])
    with pytest.raises(KittylabError, match="DNS:db.secret.example.test is excluded"):
        check_name_constraints([ca], x509.Name([]), [x509.DNSName("db.secret.example.test")])


@pytest.mark.parametrize("given, excluded, scope", [
    ({"permit_dns": ["workshop.test"]}, "IP:0.0.0.0/0, IP:::/0", ("workshop.test",)),
    ({"permit_email": ["kitty.test"]}, "IP:0.0.0.0/0, IP:::/0", ()),  # DNS names stay open
    ({"permit_dns": ["workshop.test"], "permit_ip": ["10.0.0.0/8"]}, None, ("workshop.test", "10.0.0.0/8")),
    ({"permit_dns": ["workshop.test"], "exclude_ip": ()}, None, ()),  # IP addresses left open on purpose
    ({"permit_dns": ["workshop.test"], "exclude_ip": ["0.0.0.0/0"]}, "IP:0.0.0.0/0", ()),  # IPv6 still open
    ({"exclude_dns": ["bank.test"]}, "DNS:bank.test", ()),
])
def test_ip_addresses_are_excluded_unless_permitted_or_chosen(given, excluded, scope):
    """Constraints bind only the name types they list (RFC 5280 4.2.1.10): DNS/email alone would leave IPs open."""
    constraints = build_name_constraints(**given)
    assert describe_constraints(constraints).partition("excluded: ")[2] == (excluded or "")
    assert website_scope(constraints) == scope


@pytest.mark.parametrize("bad, message", [
    ({"permit_dns": ["exa mple.test"]}, "bad DNS name"),
    ({"permit_email": ["a@@b"]}, "bad"),
    ({"permit_ip": ["10.0.0.1/8"]}, "bad IP network"),
])
def test_bad_constraints_are_one_line_errors(bad, message):
    with pytest.raises(KittylabError, match=message):
        build_name_constraints(**bad)


def test_openssl_refuses_a_forged_certificate_outside_the_constraints(tree, forged):
    chain = tree.home / "kitty-issuing.chain.pem"
    for crt, _ in forged.values():
        result = openssl("verify", "-CAfile", chain, crt)
        assert result.returncode != 0
        assert b"permitted subtree violation" in result.stderr, result.stderr
    good = openssl("verify", "-CAfile", chain, tree.server.files["crt"])
    assert good.returncode == 0, good.stderr


def test_kittylab_verify_refuses_a_forged_certificate_outside_the_constraints(tree, forged):
    """It used to say "verified: OK" here: the chain check ignored the intermediate's name constraints."""
    for profile, (crt, _) in forged.items():
        result = tree.workspace.verify(crt, purpose=profile)
        assert not result.ok
        names = [check.name for check in result.failures]
        assert names == ["name constraints", "RFC 5280 path"], str(result)
        assert "not permitted by the name constraints of CN=kitty-issuing" in str(result)
        assert "no permitted name constraints matched SAN" in str(result)
    assert tree.workspace.verify(tree.server.certificate, purpose="server").ok


def test_a_tls_client_refuses_a_forged_server_certificate(tree, forged):
    error = _handshake(tree, server=forged["server"], server_hostname="bank.test")
    assert isinstance(error, ssl.SSLCertVerificationError) and "permitted subtree violation" in str(error)
    # The same setup with the honest picture-server certificate works.
    assert _handshake(tree, server=(tree.server.files["crt"], tree.server.files["key"]),
                      server_hostname="localhost") is None


def test_a_tls_server_refuses_a_forged_client_certificate(tree, forged):
    server = (tree.server.files["crt"], tree.server.files["key"])
    error = _handshake(tree, server=server, server_hostname="localhost", client=forged["client"], side="server")
    assert error is not None and "certificate verify failed" in str(error)
    honest = (tree.client.files["crt"], tree.client.files["key"])
    assert _handshake(tree, server=server, server_hostname="localhost", client=honest, side="server") is None


def _handshake(tree, *, server, server_hostname, client=None, side="client"):
    """One TLS 1.2 handshake over loopback trusting only kitty-root; the error seen by ``side``, or None.

    Each side sends its certificate with the intermediate, as a server configuration and a p12 do.
    """
    root = tree.home / "kitty-root.crt"
    intermediate = tree.home / "kitty-issuing.crt"
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.maximum_version = ssl.TLSVersion.TLSv1_2
    server_context.load_cert_chain(_with_chain(server[0], intermediate), server[1])
    if client is not None:
        server_context.verify_mode = ssl.CERT_REQUIRED
        server_context.load_verify_locations(cafile=root)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.load_verify_locations(cafile=root)
    if client is not None:
        client_context.load_cert_chain(_with_chain(client[0], intermediate), client[1])
    errors = {}
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as exc:
            errors["server"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client_context.wrap_socket(raw, server_hostname=server_hostname) as tls:
                tls.sendall(b"x")
    except (ssl.SSLError, OSError) as exc:
        errors["client"] = exc
    thread.join(timeout=10)
    listener.close()
    return errors.get(side)


def _with_chain(crt, intermediate):
    bundle = crt.parent / f"{crt.stem}.with-chain.pem"
    bundle.write_bytes(crt.read_bytes() + intermediate.read_bytes())
    return bundle


def _certificate_with(constraints: x509.NameConstraints) -> x509.Certificate:
    return CertificateAuthority.create("constrained", key="p256", name_constraints=constraints).certificate
