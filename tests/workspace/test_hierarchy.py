"""An offline root and an issuing intermediate: chains, path lengths, a CRL per level, two roots."""

from __future__ import annotations

import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from support.pki import (
    build_hierarchy,
    build_two_roots,
    curl_status,
    forged_leaf,
    forged_sub_ca,
    openssl,
    web_site,
)
from support.system import PASSWORD

from kittylab import KittylabError, Workspace, load_p12
from kittylab.net.client import Refused, fetch
from kittylab.net.server import PictureServer
from kittylab.pki.ca import CertificateAuthority


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_hierarchy(tmp_path_factory.mktemp("hierarchy") / "ws")


def test_intermediate_is_signed_by_the_root_and_becomes_the_issuing_ca(tree):
    workspace = tree.workspace
    assert workspace.ca_names() == ["kitty-root", "kitty-issuing"]
    assert workspace.ca_name == "kitty-issuing"
    root, issuing = workspace.chain()[1], workspace.chain()[0]
    assert issuing.issuer == root.subject and root.issuer == root.subject
    issuing.verify_directly_issued_by(root)
    constraints = issuing.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    # The intermediate inherits the organisation and country of its parent, as openssl's policy_match wants.
    assert "O=Kitty Inc" in issuing.subject.rfc4514_string() and "C=DE" in issuing.subject.rfc4514_string()
    assert tree.server.record.issuer == "kitty-issuing"
    assert tree.server.certificate.issuer == issuing.subject


def test_the_p12_holds_the_whole_chain(tree):
    contents = load_p12(tree.client.files["p12"], password=PASSWORD)
    assert [c.subject for c in contents.chain] == [c.subject for c in tree.workspace.chain()]
    exported, _ = tree.workspace.export_p12("eager-client", password=PASSWORD)
    assert len(load_p12(exported, password=PASSWORD).chain) == 2
    info = openssl("pkcs12", "-info", "-noout", "-in", exported, "-passin", f"pass:{PASSWORD}")
    assert info.returncode == 0, info.stderr


def test_openssl_verifies_through_the_chain_with_a_crl_for_each_level(tree):
    home = tree.home
    assert tree.workspace.chain_path() == home / "kitty-issuing.chain.pem"
    assert tree.workspace.crl_chain_path() == home / "kitty-issuing.chain.crl"
    assert tree.workspace.chain_path("kitty-root") == home / "kitty-root.crt"
    ok = openssl("verify", "-crl_check_all", "-CAfile", home / "kitty-root.crt", "-untrusted",
                 home / "kitty-issuing.crt", "-CRLfile", home / "kitty-issuing.chain.crl", home / "picture-server.crt")
    assert ok.returncode == 0, ok.stderr
    # Without the root's CRL, checking the whole chain fails: each level needs its own CRL.
    missing = openssl("verify", "-crl_check_all", "-CAfile", home / "kitty-root.crt", "-untrusted",
                      home / "kitty-issuing.crt", "-CRLfile", home / "kitty-issuing.crl", home / "picture-server.crt")
    assert missing.returncode != 0 and b"unable to get certificate CRL" in missing.stderr
    # The chain file alone is a trust bundle: root and intermediate.
    bundle = openssl("verify", "-CAfile", home / "kitty-issuing.chain.pem", "-purpose", "sslclient",
                     home / "eager-client.crt")
    assert bundle.returncode == 0, bundle.stderr
    assert tree.workspace.verify(tree.client.certificate, purpose="client").ok


def test_revoking_the_intermediate_revokes_everything_below(tmp_path):
    tree = build_hierarchy(tmp_path / "ws")
    workspace, home = tree.workspace, tree.home
    record = workspace.revoke("kitty-issuing", reason="ca-compromise")
    assert record.status() == "revoked"
    root_crl = workspace.current_crl("kitty-root")
    assert root_crl.get_revoked_certificate_by_serial_number(record.serial) is not None
    assert len(workspace.current_crl("kitty-issuing")) == 0
    result = openssl("verify", "-crl_check_all", "-CAfile", home / "kitty-root.crt", "-untrusted",
                     home / "kitty-issuing.crt", "-CRLfile", home / "kitty-issuing.chain.crl",
                     home / "picture-server.crt")
    assert result.returncode != 0 and b"error 23 at 1 depth lookup: certificate revoked" in result.stderr
    verification = workspace.verify(tree.server.certificate)
    assert not verification.ok
    assert [c.name for c in verification.failures] == ["kitty-issuing: revocation"]
    with pytest.raises(KittylabError, match="kitty-issuing was revoked"):
        workspace.issue("late", profile="client", key="p256")
    with pytest.raises(KittylabError, match="CA itself"):
        workspace.revoke("kitty-root")


def test_each_level_keeps_its_own_crl_number(tree):
    workspace = tree.workspace

    def number(name):
        crl = workspace.current_crl(name)
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    before_root, before_issuing = number("kitty-root"), number("kitty-issuing")
    workspace.publish_crl(ca="kitty-root", next_update_days=180)
    assert (number("kitty-root"), number("kitty-issuing")) == (before_root + 1, before_issuing)
    assert workspace.current_crl("kitty-root").issuer == workspace.chain("kitty-root")[0].subject
    # The chain file follows every republication of either level.
    assert workspace.crl_chain_path().read_bytes().count(b"BEGIN X509 CRL") == 2
    # Each level remembers its own validity: months for the offline root, weeks for the issuing CA.
    root_crl, issuing_crl = workspace.publish_crl(ca="kitty-root"), workspace.publish_crl()
    assert (root_crl.next_update_utc - root_crl.last_update_utc).days == 180
    assert (issuing_crl.next_update_utc - issuing_crl.last_update_utc).days == 30


@pytest.mark.parametrize("key_was_loaded", [False, True], ids=["in-a-new-process", "in-the-process-that-used-its-key"])
def test_offline_root(tmp_path, key_was_loaded):
    """kitty-root.key on a USB stick: the root signs nothing, the issuing CA goes on; back, the root signs again.

    Loaded before (the root published its CRL) or not: offline means offline in the process that
    used the key too, not only in the next one.
    """
    tree = build_hierarchy(tmp_path / "ws")
    workspace = tree.workspace if key_was_loaded else Workspace(tree.home)  # a new process: no key loaded yet
    if key_was_loaded:
        workspace.publish_crl(ca="kitty-root")  # the root's key is loaded now
    stick = tmp_path / "usb-stick"
    stick.mkdir()
    shutil.move(tree.home / "kitty-root.key", stick / "kitty-root.key")
    with pytest.raises(KittylabError, match="kitty-root is not in .* offline CA.*kitty-root.key back"):
        workspace.publish_crl(ca="kitty-root")
    with pytest.raises(KittylabError, match="offline CA"):
        workspace.init_ca("kitty-issuing-2", key="p256", intermediate_of="kitty-root")
    assert workspace.issue("daily-client", profile="client", key="p256").record.issuer == "kitty-issuing"
    shutil.move(stick / "kitty-root.key", tree.home / "kitty-root.key")
    workspace.publish_crl(ca="kitty-root")


def test_path_length_is_enforced_by_kittylab_and_by_openssl(tmp_path):
    root = CertificateAuthority.create("kitty-root", key="p256", path_length=1)
    middle = CertificateAuthority.create("kitty-middle", key="p256", issuer=root, path_length=0)
    with pytest.raises(KittylabError, match="path length 0: it may sign certificates, not other CAs"):
        CertificateAuthority.create("kitty-deeper", key="p256", issuer=middle)
    with pytest.raises(KittylabError, match="a CA below it may have at most 0"):
        CertificateAuthority.create("kitty-wide", key="p256", issuer=root, path_length=1)
    # A CA made behind kittylab's back below the pathlen:0 CA: OpenSSL refuses the chain.
    rogue, rogue_key = forged_sub_ca(middle.certificate, middle.key, "rogue-ca", folder=tmp_path)
    _, leaf = forged_leaf(rogue, rogue_key, "victim", dns=["localhost"], folder=tmp_path)
    (tmp_path / "root.crt").write_bytes(_pem(root.certificate))
    (tmp_path / "untrusted.pem").write_bytes(_pem(middle.certificate) + _pem(rogue))
    result = openssl("verify", "-CAfile", tmp_path / "root.crt", "-untrusted", tmp_path / "untrusted.pem", leaf)
    assert result.returncode != 0 and b"path length constraint exceeded" in result.stderr


def test_bad_hierarchies_are_refused(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    workspace.init_ca("kitty-root", key="p256", days=400)
    with pytest.raises(KittylabError, match="no CA named 'nobody'"):
        workspace.init_ca("kitty-issuing", key="p256", intermediate_of="nobody")
    with pytest.raises(KittylabError, match="would outlive the CA"):
        workspace.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-root", days=500)
    with pytest.raises(KittylabError, match="already used"):
        workspace.init_ca("kitty-root", key="p256", another_root=True)
    with pytest.raises(KittylabError, match="already has a CA"):
        workspace.init_ca("second", key="p256")
    workspace.issue("alice", profile="client", key="p256")
    with pytest.raises(KittylabError, match="already used"):
        workspace.init_ca("alice", key="p256", intermediate_of="kitty-root")
    with pytest.raises(KittylabError, match="path length must be"):
        workspace.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-root", path_length=-1)
    workspace.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-root", days=300)
    with pytest.raises(KittylabError, match="is a CA's name"):
        workspace.issue("kitty-root", profile="client", key="p256")
    with pytest.raises(KittylabError, match="no CA named 'alice'"):
        workspace.issue("bob", profile="client", key="p256", ca="alice")


def test_two_independent_roots_one_for_servers_one_for_clients(tmp_path):
    roots = build_two_roots(tmp_path / "ws")
    workspace, server, client = roots.workspace, roots.server, roots.client
    assert workspace.ca_name == "client-ca"
    assert (server.record.issuer, client.record.issuer) == ("server-ca", "client-ca")
    assert workspace.chain_path("client-ca") == workspace.home / "client-ca.crt"
    # A client trusting only client-ca's certificate cannot be fooled by server-ca's leaves, and back.
    wrong = openssl("verify", "-CAfile", workspace.home / "client-ca.crt", workspace.home / "picture-server.crt")
    assert wrong.returncode != 0 and b"unable to get local issuer certificate" in wrong.stderr
    right = openssl("verify", "-CAfile", workspace.home / "client-ca.crt", "-purpose", "sslclient",
                    workspace.home / "eager-client.crt")
    assert right.returncode == 0, right.stderr
    workspace.revoke("eager-client")
    assert len(workspace.current_crl("client-ca")) == 1 and len(workspace.current_crl("server-ca")) == 0
    assert workspace.verify(server.certificate, purpose="server").ok


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_a_server_below_an_intermediate_has_a_fullchain_file(tmp_path):
    tree = build_hierarchy(tmp_path / "ws")
    workspace = tree.workspace
    path = workspace.fullchain_path("picture-server")
    assert path == tree.home / "picture-server.fullchain.pem"
    assert path.read_text() == tree.server.record.pem + workspace.ca_record("kitty-issuing").pem
    renewed = workspace.renew("picture-server")
    assert path.read_text().startswith(renewed.record.pem)  # rewritten with every new certificate
    direct = workspace.issue("root-signed", profile="server", key="p256", dns=["localhost"], ca="kitty-root")
    assert workspace.fullchain_path("root-signed") == direct.files["crt"]
    assert not (tree.home / "root-signed.fullchain.pem").exists()


def test_nginx_sends_the_chain_and_checks_every_level(tmp_path):
    tree = build_hierarchy(tmp_path / "ws")
    workspace, home = tree.workspace, tree.home
    root = home / "kitty-root.crt"
    with web_site(workspace) as web:
        config = web.site.config.read_text()
        # Everything nginx reads comes from the deploy folder, which holds no CA key.
        deployed = home.resolve() / "deploy"
        assert f"ssl_certificate     {deployed / 'picture-server.fullchain.pem'};" in config
        assert f"ssl_client_certificate {deployed / 'clients-of-kitty-root.pem'};" in config
        assert f"ssl_crl                {deployed / 'clients-of-kitty-root.crl'};" in config
        assert not list(deployed.glob("kitty-*.key"))
        assert (deployed / "picture-server.key").stat().st_mode & 0o777 == 0o600
        # The client trusts only kitty-root: the server must send kitty-issuing, and does.
        assert curl_status(web.url, tree.client.files["p12"], ca=root) == "200"
        # The root revokes the intermediate: after a reload, everything below it is refused.
        workspace.revoke("kitty-issuing", reason="ca-compromise")
        web.reload()
        assert curl_status(web.url, tree.client.files["p12"], ca=root) == "400"
        assert "certificate revoked" in web.log_tail(30)


def test_nginx_and_picture_server_trust_only_the_client_ca(tmp_path):
    roots = build_two_roots(tmp_path / "ws")
    workspace, badge = roots.workspace, roots.client
    insider = workspace.issue("insider", profile="client", key="p256", p12=True, p12_password=PASSWORD,
                              ca="server-ca")
    server_ca = workspace.path("server-ca", "crt")
    with web_site(workspace, client_ca="client-ca") as web:
        deployed = workspace.home.resolve() / "deploy"
        assert f"ssl_client_certificate {deployed / 'clients-of-client-ca.pem'};" in web.site.config.read_text()
        assert curl_status(web.url, badge.files["p12"], ca=server_ca) == "200"
        # A valid certificate of the server's CA is not a client certificate here.
        assert curl_status(web.url, insider.files["p12"], ca=server_ca) == "400"
    with PictureServer(workspace, client_ca="client-ca") as gallery:
        assert fetch(gallery.url, p12=badge.files["p12"], password=PASSWORD, ca=server_ca, images=False).status == 200
        with pytest.raises(Refused):
            fetch(gallery.url, p12=insider.files["p12"], password=PASSWORD, ca=server_ca, images=False)
