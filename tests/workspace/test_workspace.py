"""The workspace: the article's files, issuing, signing, p12 export, verification and restoring files."""

from __future__ import annotations

import datetime as dt
import stat
import threading

import pytest
from cryptography import x509
from support.cli import snapshot
from support.pki import encrypted_ca
from support.system import PASSWORD

from kittylab import (
    KittylabError,
    Workspace,
    generate_key,
    load_key,
    load_p12,
    make_csr,
)
from kittylab.pki.facts import when
from kittylab.workspace.protocol import WorkspaceLock
from kittylab.workspace.workspace import STORE_FILE, check_name, default_home


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_articles_files(story):
    workspace, server, client = story
    names = sorted(p.name for p in workspace.home.iterdir() if not p.name.startswith("."))
    assert names == sorted([
        "kitty-ca.key", "kitty-ca.crt", "kitty-ca.crl", "kittylab.sqlite3",
        "picture-server.key", "picture-server.csr", "picture-server.crt",
        "eager-client.key", "eager-client.csr", "eager-client.crt", "eager-client.p12",
        "published",  # the CA's CRL and certificate in DER, as kittylab publish and web servers serve them
        "issued",  # every certificate ever issued, SERIAL-NAME.pem (superseded ones too, for repair)
    ])
    assert sorted(p.name for p in (workspace.home / "published").iterdir()) == ["kitty-ca.crl", "kitty-ca.crt"]
    records = workspace.records()
    assert sorted(p.name for p in (workspace.home / "issued").iterdir()) == sorted(
        f"{r.serial_hex}-{r.name}.pem" for r in records)
    assert all((workspace.home / "issued" / f"{r.serial_hex}-{r.name}.pem").read_text() == r.pem for r in records)
    for secret in ("kitty-ca.key", "picture-server.key", "eager-client.key", "eager-client.p12"):
        assert mode(workspace.home / secret) == 0o600, secret
    assert mode(workspace.home / "picture-server.crt") == 0o644
    assert load_key(workspace.home / "eager-client.key").public_key() == client.certificate.public_key()
    contents = load_p12(workspace.home / "eager-client.p12", password=PASSWORD)
    assert contents.certificate == client.certificate and contents.chain == [workspace.ca.certificate]


def test_default_subject_takes_the_cas_organization(story):
    _, server, _ = story
    assert server.certificate.subject.rfc4514_string() == "CN=picture-server,O=Kitty Inc,C=DE"


def test_generated_p12_password_is_returned_once(workspace):
    issued = workspace.issue("eager-client", profile="client", key="p256", p12=True)
    assert issued.p12_password and load_p12(issued.files["p12"], password=issued.p12_password)
    assert issued.p12_password not in repr(issued)
    path, password = workspace.export_p12("eager-client", legacy=True)
    assert password != issued.p12_password and load_p12(path, password=password)
    assert workspace.export_p12("eager-client", password="given") == (path, None)


def test_sign_csr_names_the_record_after_the_cn(workspace):
    key = generate_key("p256")
    issued = workspace.sign_csr(make_csr(key, "picture-server", dns=["localhost"]), profile="server")
    assert issued.name == "picture-server" and (workspace.home / "picture-server.crt").exists()
    assert not (workspace.home / "picture-server.key").exists()
    with pytest.raises(KittylabError, match="key stays with its owner"):
        workspace.export_p12("picture-server")
    renamed = workspace.sign_csr(make_csr(key, "x"), profile="client", name="renamed")
    assert renamed.files["crt"].name == "renamed.crt"


def test_why_no_p12_is_the_one_rule_for_a_p12(story):
    """The workbench's refusal and export_p12's come from Workspace.why_no_p12: a CA, a revoked, a superseded
    certificate, or one whose key stays with its owner; a current leaf with its key here has none."""
    workspace, server, client = story
    assert workspace.why_no_p12(server.record) is None
    assert "is a CA" in workspace.why_no_p12(workspace.ca_record())
    old = client.record
    workspace.renew("eager-client")
    assert "superseded" in workspace.why_no_p12(old)
    revoked = workspace.revoke("picture-server", reason="key-compromise")
    assert "revoked (key-compromise)" in workspace.why_no_p12(revoked)
    expired = workspace.issue("last-year", profile="client", key="p256", days=2,
                              now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3))
    refusal = workspace.why_no_p12(expired.record)
    assert refusal == f"last-year's certificate expired on {when(expired.record.not_after)}, so servers refuse it: renew it"
    with pytest.raises(KittylabError, match="expired on .*: renew it"):
        workspace.export_p12("last-year")
    signed = workspace.sign_csr(make_csr(generate_key("p256"), "laptop"), profile="client")
    refusal = workspace.why_no_p12(signed.record)
    with pytest.raises(KittylabError) as refused:
        workspace.export_p12("laptop")
    assert refusal.startswith("kittylab does not hold laptop's private key") and refusal in str(refused.value)



def test_set_aside_waits_for_a_writer_and_moves_the_whole_workspace(story):
    """Starting over (a lesson run again): under the workspace's lock, its files move into earlier-runs/run-TIME/,
    which opens as the same workspace; the lock file and another lesson's workspace inside it stay."""
    workspace, _, _ = story
    home, fingerprint = workspace.home, workspace.ca_record().fingerprint
    (home / "lesson").mkdir()
    (home / "lesson" / STORE_FILE).touch()
    writer = WorkspaceLock(home)
    writer.acquire()
    done = []
    mover = threading.Thread(target=lambda: done.append(workspace.set_aside()))
    mover.start()
    mover.join(0.5)
    assert mover.is_alive() and (home / "kitty-ca.key").exists()  # a change in progress is never cut
    writer.release()
    mover.join()
    ((run, deleted),) = done
    assert deleted == 0 and workspace.closed and run.parent == home / "earlier-runs"
    assert sorted(p.name for p in home.iterdir()) == [".kittylab.lock", "earlier-runs", "lesson"]
    with Workspace(run) as earlier:
        assert earlier.ca_record().fingerprint == fingerprint and earlier.find("eager-client")
    with Workspace(home) as fresh:
        assert not fresh.has_ca
        (home / "notes.txt").write_text("a second run")
        second, deleted = fresh.set_aside(keep=1)
    assert deleted == 1 and not run.exists() and list((home / "earlier-runs").iterdir()) == [second]
    assert (second / "notes.txt").exists()

def test_duplicates_and_the_cas_name_are_refused_without_writing(story):
    workspace, _, _ = story
    before = snapshot(workspace.home)
    with pytest.raises(KittylabError, match="already has a current certificate"):
        workspace.issue("eager-client", profile="client", key="p256")
    with pytest.raises(KittylabError, match="CA's name"):
        workspace.issue("kitty-ca", profile="client", key="p256")
    with pytest.raises(KittylabError, match="already has a CA"):
        workspace.init_ca("other", key="p256")
    assert snapshot(workspace.home) == before


def test_reissue_after_revocation(story):
    workspace, _, client = story
    workspace.revoke("eager-client", reason="superseded")
    again = workspace.issue("eager-client", profile="client", key="p256")
    assert workspace.find("eager-client") == again.record
    assert workspace.find(client.record.serial).status() == "revoked"
    assert workspace.find(client.record.serial_hex).serial == client.record.serial


@pytest.mark.parametrize("name", ["../evil", "a/b", "/etc/passwd", ".hidden", "", "a..b", "x" * 65, "trail.",
                                  "name\n", "a b", "ä"])
def test_names_that_would_escape_the_workspace(name):
    with pytest.raises(KittylabError, match="bad name"):
        check_name(name)


def test_missing_certificate_files_are_restored_by_the_next_change(story):
    workspace, server, _ = story
    (workspace.home / "picture-server.crt").unlink()
    (workspace.home / "eager-client.crt").write_text("damaged")
    (workspace.home / "kitty-ca.crl").unlink()
    with Workspace(workspace.home) as reopened:
        assert not (workspace.home / "picture-server.crt").exists()  # opening only reads
        reopened.issue("another", profile="client", key="p256")  # a change repairs first
        assert reopened.current_crl() is not None
    assert (workspace.home / "picture-server.crt").read_text() == server.record.pem
    assert x509.load_pem_x509_certificate((workspace.home / "eager-client.crt").read_bytes())


def test_find_unknown(workspace):
    with pytest.raises(KittylabError, match="no certificate named or numbered 'ghost'"):
        workspace.find("ghost")


def test_verify_says_which_check_failed(story, tmp_path):
    workspace, server, client = story
    assert workspace.verify(client.files["crt"], purpose="client").ok
    assert workspace.verify(server.certificate, purpose="server").ok
    wrong = workspace.verify(server.certificate, purpose="client")
    # kittylab's reason first, then the verdict of cryptography's RFC 5280 verifier.
    assert [c.name for c in wrong.failures] == ["purpose client", "RFC 5280 path"]
    assert "verification failed: the extended key usage allows serverAuth" in str(wrong)
    assert "refused by cryptography's verifier: required EKU not found" in str(wrong)
    foreign = Workspace(tmp_path / "other")
    foreign.init_ca("other-ca", key="p256")
    stranger = foreign.issue("stranger", profile="client", key="p256")
    assert workspace.verify(stranger.certificate).failures[0].name == "chain"
    old = workspace.issue("old", profile="client", key="p256", days=1,
                          now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2))
    assert [c.name for c in workspace.verify(old.certificate).failures] == ["dates", "RFC 5280 path"]
    workspace.revoke("eager-client")
    result = workspace.verify(client.certificate, purpose="client")
    assert [c.name for c in result.failures] == ["revocation"] and "revoked" in str(result)
    foreign.close()


def test_encrypted_ca_key(tmp_path):
    encrypted_ca(tmp_path / "ws", "secret cat")
    with Workspace(tmp_path / "ws") as locked, pytest.raises(KittylabError, match="encrypted: give its passphrase"):
        locked.issue("a", profile="client", key="p256")
    with Workspace(tmp_path / "ws", ca_passphrase="secret cat") as unlocked:
        assert unlocked.ca_key_is_encrypted()
        assert unlocked.issue("a", profile="client", key="p256").record.status() == "valid"


def test_home_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("KITTYLAB_HOME", raising=False)
    assert str(default_home()) == "kitty-workspace"
    monkeypatch.setenv("KITTYLAB_HOME", str(tmp_path / "h"))
    assert default_home() == tmp_path / "h"
    (tmp_path / "file").write_text("x")
    with pytest.raises(KittylabError):
        Workspace(tmp_path / "file")


def test_no_p12_of_a_revoked_certificate(workspace):
    """A p12 of a certificate servers refuse helps nobody: export refuses it in one line and writes nothing."""
    workspace.issue("leaver", profile="client", key="p256")
    workspace.revoke("leaver", reason="cessation-of-operation")
    with pytest.raises(KittylabError, match=r"leaver's certificate is revoked \(cessation-of-operation\).*issue a new one"):
        workspace.export_p12("leaver", password="a long enough password")
    assert not workspace.path("leaver", "p12").exists()


def test_a_partys_own_key_and_request_are_kept_under_the_lock(workspace):
    """Steps 11-12 done by hand (the tutorial's client): the workspace keeps NAME.key (0600) and NAME.csr."""
    key = generate_key("p256")
    key_path = workspace.keep_own("hand-made", key)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600 and load_key(key_path).public_key() == key.public_key()
    csr_path = workspace.keep_own("hand-made", make_csr(key, "hand-made"))
    assert csr_path == workspace.path("hand-made", "csr") and b"CERTIFICATE REQUEST" in csr_path.read_bytes()
    with pytest.raises(KittylabError):
        workspace.keep_own("../escape", key)


def test_no_p12_of_a_superseded_certificate_whose_successor_was_revoked(workspace):
    """The old certificate stays valid after a renewal; with its successor revoked there is no current one to
    export: the refusal says to issue a new one, not to "export its current one"."""
    first = workspace.issue("rotating", profile="client", key="p256").record
    workspace.renew("rotating")
    workspace.revoke(workspace.find("rotating").serial)
    assert "has no current one: issue a new one" in workspace.why_no_p12(workspace.find(first.serial))
