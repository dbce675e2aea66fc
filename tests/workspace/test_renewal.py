"""Renewal: certificates age, keys do not. A new certificate for the same key, or a new key."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from support.pki import build_hierarchy, openssl
from support.system import PASSWORD

from kittylab import KittylabError, Workspace, load_p12
from kittylab.pki.ca import utcnow
from kittylab.workspace.renewal import due, parse_duration, renew_due


def test_same_key_new_certificate_old_one_superseded(story):
    workspace, _, client = story
    old = client.record
    renewed = workspace.renew("eager-client")
    assert renewed.certificate.public_key() == client.certificate.public_key()
    assert renewed.record.serial != old.serial
    assert renewed.certificate.subject == client.certificate.subject
    names = [c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value for c in (renewed.certificate,
                                                                                                client.certificate)]
    assert names[0] == names[1]
    before = workspace.find(old.serial)
    assert before.status() == "superseded" and before.superseded_by == renewed.record.serial
    assert workspace.find("eager-client").serial == renewed.record.serial
    assert "key" not in renewed.files  # the key file is untouched
    assert workspace.path("eager-client", "crt").read_text() == renewed.record.pem
    # Same length of validity as before, starting now.
    assert (renewed.record.not_after - renewed.record.not_before).days == 375
    # The superseded certificate is not revoked: it stays valid until it ends (no CRL entry).
    assert len(workspace.current_crl()) == 0
    assert workspace.verify(renewed.certificate, purpose="client").ok


def test_new_key_and_new_p12(story):
    workspace, _, client = story
    old_key = workspace.path("eager-client", "key").read_bytes()
    renewed = workspace.renew("eager-client", new_key=True, days=30, p12=True, p12_password=PASSWORD)
    assert renewed.certificate.public_key() != client.certificate.public_key()
    assert workspace.path("eager-client", "key").read_bytes() != old_key
    assert (workspace.path("eager-client", "key").stat().st_mode & 0o777) == 0o600
    contents = load_p12(renewed.files["p12"], password=PASSWORD)
    assert contents.certificate == renewed.certificate
    assert contents.key.public_key() == renewed.certificate.public_key()
    check = openssl("x509", "-noout", "-checkend", str(31 * 86400), "-in", renewed.files["crt"])
    assert check.returncode == 1  # ends within 31 days
    # 30 days left: "expiring" here, in `kittylab show` and on its card alike
    assert [r.status() for r in workspace.records() if r.name == "eager-client"] == ["superseded", "expiring"]


def test_a_key_that_stays_with_its_owner_is_renewed_from_its_public_key(story):
    workspace, server, _ = story
    workspace.path("picture-server", "key").unlink()
    workspace.path("picture-server", "csr").unlink()  # as after `sign`: only the certificate is here
    renewed = workspace.renew("picture-server")
    assert renewed.certificate.public_key() == server.certificate.public_key()
    assert renewed.certificate.subject == server.certificate.subject
    assert renewed.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName) == \
        server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    with pytest.raises(KittylabError, match="renew with a new key|export|p12"):
        workspace.renew("picture-server", p12=True)


def test_what_cannot_be_renewed(story):
    workspace, _, _ = story
    workspace.revoke("eager-client")
    with pytest.raises(KittylabError, match="no current certificate to renew"):
        workspace.renew("eager-client")
    with pytest.raises(KittylabError, match="no current certificate to renew"):
        workspace.renew("nobody")
    with pytest.raises(KittylabError, match="a new key for kitty-ca would orphan everything it issued"):
        workspace.renew("kitty-ca", new_key=True)


def test_renewal_below_an_intermediate_keeps_the_chain(tmp_path):
    tree = build_hierarchy(tmp_path / "ws")
    renewed = tree.workspace.renew("eager-client", p12=True, p12_password=PASSWORD)
    assert renewed.record.issuer == "kitty-issuing"
    assert len(load_p12(renewed.files["p12"], password=PASSWORD).chain) == 2


def test_expiring_lists_what_needs_renewing(workspace):
    now = utcnow()
    soon = workspace.issue("soon", profile="client", key="p256", days=10)
    workspace.issue("later", profile="client", key="p256", days=100)
    gone = workspace.issue("gone", profile="client", key="p256", days=5, now=now - dt.timedelta(days=6))
    revoked = workspace.issue("revoked-soon", profile="client", key="p256", days=3)
    workspace.revoke("revoked-soon")
    names = [r.name for r in workspace.expiring(dt.timedelta(days=30))]
    assert names == ["gone", "soon"]  # soonest first; revoked and far-off ones are not due
    assert [r.name for r in workspace.expiring(parse_duration("200d"))] == ["gone", "soon", "later"]
    items = due(workspace, "30d")
    assert [item.record.serial for item in items] == [gone.record.serial, soon.record.serial]
    assert items[0].left < dt.timedelta(0) and "expired 1 days ago" in items[0].describe()
    assert "expires in 10 days" in items[1].describe() or "expires in 9 days" in items[1].describe()
    assert revoked.record.serial not in [item.record.serial for item in items]
    renewed = renew_due(workspace, "30d")
    # "soon" (10 days of 10) is shorter than the window: due only in the last third of its life.
    assert [issued.name for issued in renewed] == ["gone"]
    assert "renewing what is due takes it from " in items[1].describe()
    assert renew_due(workspace, "30d") == []  # renewal never loops: the new certificate is not due again
    assert renew_due(workspace, "30d", now=now + dt.timedelta(days=7)) and workspace.find("soon").not_after > (
        now + dt.timedelta(days=16))  # seven days on, "soon" is in its last third and renewed once
    assert renew_due(workspace, "30d", now=now + dt.timedelta(days=7)) == []
    assert workspace.expiring(dt.timedelta(days=4)) == []


@pytest.mark.parametrize("text, expected", [
    ("30d", dt.timedelta(days=30)), ("12h", dt.timedelta(hours=12)), ("2w", dt.timedelta(weeks=2)),
    ("7", dt.timedelta(days=7)), (" 30D ", dt.timedelta(days=30)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30m", "-3d", "3.5d", "d", "30d\n1"])
def test_bad_durations(text):
    with pytest.raises(KittylabError, match="bad duration"):
        parse_duration(text)


def test_renewal_survives_a_new_process(story):
    workspace, _, _ = story
    Workspace(workspace.home).renew("eager-client")
    reopened = Workspace(workspace.home)
    assert [r.status() for r in reopened.records() if r.name == "eager-client"] == ["superseded", "valid"]
    assert reopened.restore_missing_files() == []


def test_a_ca_is_renewed_with_its_own_key_and_what_it_issued_stays_valid(tmp_path):
    tree = build_hierarchy(tmp_path / "ws")
    workspace, home = tree.workspace, tree.home
    old_root, old_issuing = workspace.ca_record("kitty-root"), workspace.ca_record("kitty-issuing")
    root = workspace.renew("kitty-root", days=9000)
    issuing = workspace.renew("kitty-issuing")
    assert root.certificate.public_key() == old_root.certificate.public_key()
    assert root.certificate.subject == old_root.certificate.subject and root.record.issuer == "kitty-root"
    assert root.record.not_after > old_root.not_after
    # The same path length, name constraints, key identifiers: only the dates and the serial change.
    assert [(e.oid, e.critical, e.value) for e in issuing.certificate.extensions] == [
        (e.oid, e.critical, e.value) for e in old_issuing.certificate.extensions
    ]
    assert [workspace.find(r.serial).status() for r in (old_root, old_issuing)] == ["superseded", "superseded"]
    assert workspace.chain_path().read_text() == issuing.record.pem + root.record.pem
    assert workspace.fullchain_path("picture-server").read_text().endswith(issuing.record.pem)
    # The certificates issued before still verify against the renewed CAs, in OpenSSL and kittylab.
    done = openssl("verify", "-crl_check_all", "-CAfile", home / "kitty-root.crt", "-untrusted", home / "kitty-issuing.crt",
                   "-CRLfile", home / "kitty-issuing.chain.crl", tree.client.files["crt"])
    assert done.returncode == 0, done.stderr
    assert workspace.verify(tree.server.certificate, purpose="server").ok
    assert workspace.issue("after", profile="client", key="p256").certificate.issuer == issuing.certificate.subject



def test_revoking_a_name_revokes_its_superseded_certificates_too(story, tmp_path):
    """A renewal leaves the old certificate valid: revoking the name must not let its old p12 back in."""
    from kittylab.net.client import Refused, fetch
    from kittylab.net.server import PictureServer
    from support.cli import run_cli

    workspace, _, client = story
    old_p12 = tmp_path / "old.p12"
    old_p12.write_bytes(client.files["p12"].read_bytes())
    renewed = workspace.renew("eager-client")
    ca = workspace.ca_certificate_path
    with PictureServer(workspace) as server:
        assert fetch(server.url, p12=old_p12, password=PASSWORD, ca=ca, images=False).status == 200
    workspace.close()
    result = run_cli("revoke", "eager-client", "--reason", "key-compromise", home=workspace.home)
    assert result.code == 0, result.err
    assert f"serial {renewed.record.serial_hex}" in result.out and f"serial {client.record.serial_hex}" in result.out
    with Workspace(workspace.home) as reopened:
        assert {entry.serial_number for entry in reopened.current_crl()} == {client.record.serial,
                                                                              renewed.record.serial}
        assert reopened.find(client.record.serial).reason == "key-compromise"
        with PictureServer(reopened) as server, pytest.raises(Refused, match="revoked"):
            fetch(server.url, p12=old_p12, password=PASSWORD, ca=ca, images=False)
        # Nothing of the name is left valid: revoking it again is "already revoked".
        with pytest.raises(KittylabError, match="already revoked"):
            reopened.revoke("eager-client")
