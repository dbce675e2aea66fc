"""The workspace's write protocol, case by case (issue 11's findings 1, 2, 3, 5, 6 and 8).

The whole-command proof (a kill at every write point, races) is tests/guarantees/test_crash_points.py.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat

import pytest
from support.cli import run_cli, snapshot

from kittylab import KittylabError, Workspace, load_crl, load_key
from kittylab.workspace.store import SCHEMA_VERSION, Store


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)



def renew_killed_after_the_commit(workspace: Workspace, monkeypatch) -> None:
    """``renew eager-client --new-key``, killed between the store's commit and moving its staged files in place."""

    def killed(*args, **kwargs):
        raise SystemExit("killed after the commit")

    monkeypatch.setattr(Workspace, "_promote", killed)
    with pytest.raises(SystemExit):
        workspace.renew("eager-client", new_key=True)
    monkeypatch.undo()

def test_opening_for_reading_creates_nothing(tmp_path):
    typo = tmp_path / "typo"
    listed = run_cli("list", home=typo)
    assert "no workspace at" in listed.assert_one_line_error()
    assert run_cli("show", "alice", home=typo).code != 0
    with Workspace(typo) as workspace:
        assert workspace.records() == [] and not workspace.has_ca
    assert not typo.exists()


def test_an_init_that_lost_the_race_changes_nothing(workspace):
    """The second init sees the first one's CA under the lock and writes nothing (finding 1)."""
    before = snapshot(workspace.home)
    late = Workspace(workspace.home)
    with pytest.raises(KittylabError, match="already has a CA"):
        late.init_ca("kitty-ca", key="p256")
    assert snapshot(workspace.home) == before


def test_an_init_finishing_during_anothers_first_look_is_not_taken_for_a_lost_store(tmp_path, monkeypatch):
    """Two inits at once: B looks (before the lock, to refuse before making a key) while A finishes between
    B's reading of the store and of the files. B must say the CA exists, not that a lost store left its
    files (a 4-process race in CI once did)."""
    home = tmp_path / "ws"
    first, late = Workspace(home), Workspace(home)
    looked = late._store.latest

    def a_finishes_meanwhile(name):
        found = looked(name)  # nothing yet: A has not committed
        first.init_ca("kitty-ca", key="p256")  # A commits, then its key and certificate appear
        return found

    monkeypatch.setattr(late._store, "latest", a_finishes_meanwhile)
    with pytest.raises(KittylabError, match="already has a CA"):
        late.init_ca("kitty-ca", key="p256")
    assert Workspace(home).ca_name == "kitty-ca"


def test_init_never_replaces_ca_files_whose_store_was_lost(workspace):
    """Finding 2: the message says what was found and how to recover; repair rebuilds the store."""
    client = workspace.issue("eager-client", profile="client", key="p256")
    workspace.revoke("eager-client")
    kept = workspace.issue("picture-server", profile="server", key="p256", dns=["localhost"])
    key_before = (workspace.home / "kitty-ca.key").read_bytes()
    workspace.close()
    (workspace.home / "kittylab.sqlite3").write_bytes(b"")  # emptied
    refused = run_cli("init", "--key", "p256", home=workspace.home).assert_one_line_error()
    assert "kitty-ca.crt" in refused and "missing or empty" in refused and "kittylab repair" in refused
    assert "kittylab repair" in run_cli("issue", "client", "x", "--key", "p256", home=workspace.home).err
    assert (workspace.home / "kitty-ca.key").read_bytes() == key_before
    repaired = run_cli("repair", home=workspace.home)
    assert repaired.code == 0 and "rebuilt the store from 1 CA certificates, 2 certificates" in repaired.out
    with Workspace(workspace.home) as again:
        assert again.ca_name == "kitty-ca"
        assert again.find("eager-client").revoked_at is not None
        assert again.find("picture-server").serial == kept.record.serial
        assert {e.serial_number for e in again.current_crl()} == {client.record.serial}
        again.issue("after-repair", profile="client", key="p256")  # the CA signs again


def test_repair_keeps_revocations_known_only_from_the_crl(workspace):
    """A certificate file overwritten since (the name reissued): its serial stays on the CRL."""
    first = workspace.issue("eager-client", profile="client", key="p256")
    workspace.revoke("eager-client")
    workspace.issue("eager-client", profile="client", key="p256")  # eager-client.crt now holds the new one
    workspace.close()
    (workspace.home / "kittylab.sqlite3").unlink()
    shutil.rmtree(workspace.home / "issued")  # a workspace from before it kept every certificate issued
    with Workspace(workspace.home) as again:
        done = again.repair()
        assert any("1 serials kitty-ca's CRL lists without a certificate file stay revoked" in line for line in done)
        crl = again.publish_crl()
        assert first.record.serial in {entry.serial_number for entry in crl}


def test_repair_rebuilds_superseded_certificates_so_they_can_still_be_revoked(story):
    """A lost store: the renewed name's older certificate (still valid, in the old p12) comes back and is revoked."""
    workspace, _, client = story
    renewed = workspace.renew("eager-client")
    workspace.renew("eager-client", new_key=True)
    gone = workspace.issue("gone", profile="client", key="p256")
    workspace.revoke(gone.record.serial)
    workspace.close()
    (workspace.home / "gone.crt").unlink()  # its copy in issued/ is what is left of it
    (workspace.home / "kittylab.sqlite3").unlink()
    repaired = run_cli("repair", home=workspace.home)
    assert repaired.code == 0 and "5 certificates" in repaired.out, repaired.out + repaired.err
    with Workspace(workspace.home) as again:
        history = again._store.named("eager-client")
        assert [r.status() for r in history] == ["valid", "superseded", "superseded"]
        assert history[1].serial == renewed.record.serial and history[2].serial == client.record.serial
        assert history[2].superseded_by == renewed.record.serial
        assert again.find(gone.record.serial).revoked_at is not None
        revoked = again.revoke_many(["eager-client"], reason="key-compromise")
        assert {r.serial for r in revoked} == {r.serial for r in history}
        assert {r.serial for r in history} <= {entry.serial_number for entry in again.current_crl()}


def test_a_store_whose_certificates_were_deleted_is_not_fine(story):
    workspace, _, _ = story
    workspace.close()
    with sqlite3.connect(workspace.home / "kittylab.sqlite3") as db:
        db.execute("DELETE FROM certificates")
    db.close()
    line = run_cli("list", home=workspace.home).assert_one_line_error()
    assert "holds none of its certificates" in line and "kittylab repair" in line
    repaired = run_cli("repair", home=workspace.home)
    assert repaired.code == 0 and "rebuilt the store from 1 CA certificates, 2 certificates" in repaired.out
    assert run_cli("revoke", "eager-client", home=workspace.home).code == 0


@pytest.mark.parametrize("then", [("export-p12", "eager-client"), ("renew", "eager-client")])
def test_commands_reading_a_key_settle_a_crashed_renewal_first(story, monkeypatch, then):
    """Killed between renew --new-key's commit and its moves: export-p12 and renew read NAME.key before the
    lock and failed for good ("the key does not belong"); they take the write protocol's path first."""
    workspace, _, _ = story
    renew_killed_after_the_commit(workspace, monkeypatch)
    workspace.close()
    staged = list((workspace.home / ".staging").iterdir())
    assert sorted(p.name.split(".")[1] for p in staged) == ["csr", "key"]  # the new key waits, the old one in place
    result = run_cli(*then, home=workspace.home)
    assert result.code == 0, result.err
    with Workspace(workspace.home) as again:
        current = again.find("eager-client")
        assert load_key(again.path("eager-client", "key")).public_key() == current.certificate.public_key()


def test_a_damaged_store_is_reported_moved_aside_and_rebuilt(story):
    workspace, _, _ = story
    workspace.close()
    store = workspace.home / "kittylab.sqlite3"
    data = bytearray(store.read_bytes())
    data[100:4000] = os.urandom(3900)  # damaged mid-file
    store.write_bytes(bytes(data))
    damaged = bytes(data)
    line = run_cli("issue", "client", "x", "--key", "p256", home=workspace.home).assert_one_line_error()
    assert "damaged" in line and "kittylab repair" in line
    assert store.read_bytes() == damaged  # nothing written to it
    repaired = run_cli("repair", home=workspace.home)
    assert repaired.code == 0 and "moved the damaged store aside" in repaired.out, repaired.err
    assert [p for p in workspace.home.iterdir() if ".damaged-" in p.name][0].read_bytes() == damaged
    assert run_cli("list", home=workspace.home).code == 0


def test_a_store_from_a_newer_kittylab_is_refused_by_name(workspace):
    workspace.close()
    db = sqlite3.connect(workspace.home / "kittylab.sqlite3")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = snapshot(workspace.home)
    for argv in (["list"], ["issue", "client", "x", "--key", "p256"], ["repair"]):
        line = run_cli(*argv, home=workspace.home).assert_one_line_error()
        assert f"schema version {SCHEMA_VERSION + 1}" in line and "newer" in line
    assert snapshot(workspace.home) == before


def test_the_store_carries_its_schema_version(workspace):
    db = sqlite3.connect(workspace.home / "kittylab.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
    db.close()


def test_a_failed_commit_keeps_the_current_key(workspace, monkeypatch):
    """Finding 3: renew --new-key whose store write fails leaves NAME.key the current certificate's key."""
    issued = workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password="kitty-pass")
    key_before = (workspace.home / "eager-client.key").read_bytes()
    p12_before = (workspace.home / "eager-client.p12").read_bytes()

    def full_disk(self):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "_commit", full_disk)
    with pytest.raises(KittylabError, match="disk is full"):
        workspace.renew("eager-client", new_key=True, p12=True, p12_password="kitty-pass")
    monkeypatch.undo()
    assert (workspace.home / "eager-client.key").read_bytes() == key_before
    assert (workspace.home / "eager-client.p12").read_bytes() == p12_before
    assert not list((workspace.home / ".staging").iterdir())
    current = workspace.find("eager-client")
    assert current.serial == issued.record.serial
    assert load_key(workspace.home / "eager-client.key").public_key() == current.certificate.public_key()


def test_staged_files_of_a_committed_certificate_take_their_place(workspace, monkeypatch):
    """A crash between the commit and the move: the next change finishes it."""
    old = workspace.issue("eager-client", profile="client", key="p256")
    renew_killed_after_the_commit(workspace, monkeypatch)
    current = workspace.find("eager-client")
    assert current.serial != old.record.serial
    assert load_key(workspace.home / "eager-client.key").public_key() == old.certificate.public_key()
    with Workspace(workspace.home) as again:
        assert "moved the staged eager-client.key into place" in again.restore_missing_files()
    assert load_key(workspace.home / "eager-client.key").public_key() == current.certificate.public_key()


def test_revoking_again_publishes_the_crl_again(tmp_path):
    """Finding 5: a revocation committed, its chain CRL stale; the second revoke repairs it."""
    from support.pki import build_hierarchy

    hierarchy = build_hierarchy(tmp_path / "ws")
    workspace = hierarchy.workspace
    workspace.revoke("eager-client")
    chain = workspace.home / "kitty-issuing.chain.crl"
    stale = chain.read_bytes()
    (workspace.home / "kitty-issuing.crl").write_bytes(b"")
    chain.write_bytes(b"stale")
    line = run_cli("revoke", "eager-client", home=workspace.home).assert_one_line_error()
    assert "already revoked" in line and "published again" in line
    crl = load_crl(workspace.home / "kitty-issuing.crl")
    assert hierarchy.client.record.serial in {entry.serial_number for entry in crl}
    assert chain.read_bytes() != b"stale" and len(chain.read_bytes()) >= len(stale)


def test_umask_000_makes_nothing_writable_by_others(tmp_path):
    old = os.umask(0)
    try:
        home = tmp_path / "deep" / "kitty-workspace"
        assert run_cli("init", "--key", "p256", home=home).code == 0
        assert run_cli("issue", "client", "eager-client", "--key", "p256", home=home).code == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "deep", home, *home.rglob("*")):
        assert mode(path) & 0o022 == 0, f"{path} is {oct(mode(path))}"


def test_a_workspace_writable_by_others_is_refused_for_signing(workspace):
    os.chmod(workspace.home, 0o777)
    workspace.close()
    line = run_cli("issue", "client", "x", "--key", "p256", home=workspace.home).assert_one_line_error()
    assert "writable by others" in line and f"chmod go-w {workspace.home}" in line
    listed = run_cli("list", home=workspace.home)
    assert listed.code == 0 and "warning:" in listed.err and "writable by others" in listed.err
    os.chmod(workspace.home, 0o755)
    os.chmod(workspace.home / "kitty-ca.crl", 0o666)
    line = run_cli("issue", "client", "x", "--key", "p256", home=workspace.home).assert_one_line_error()
    assert "kitty-ca.crl is writable by others" in line
    os.chmod(workspace.home / "kitty-ca.crl", 0o644)
    assert run_cli("issue", "client", "x", "--key", "p256", home=workspace.home).code == 0


def test_a_store_or_folder_writable_by_others_is_refused_for_signing(story):
    """Whoever can write the store can un-revoke a certificate: the next CRL would be signed without it."""
    workspace, _, client = story
    workspace.revoke("eager-client")
    workspace.close()
    store = workspace.home / "kittylab.sqlite3"
    os.chmod(store, 0o666)
    with sqlite3.connect(store) as db:  # the attack: the row un-revoked
        db.execute("UPDATE certificates SET revoked_at = NULL, reason = NULL WHERE name = 'eager-client'")
    db.close()
    for argv in (("issue", "client", "x", "--key", "p256"), ("crl",), ("revoke", "picture-server")):
        line = run_cli(*argv, home=workspace.home).assert_one_line_error()
        assert f"{store} is writable by others" in line and f"chmod go-w {store}" in line
    listed = run_cli("list", home=workspace.home)
    assert listed.code == 0 and "writable by others" in listed.err
    crl = load_crl(workspace.home / "kitty-ca.crl")
    assert client.record.serial in {entry.serial_number for entry in crl}  # the revocation still stands
    os.chmod(store, 0o644)
    (workspace.home / "deploy").mkdir(exist_ok=True)
    for folder in ("deploy", "published", ".staging"):
        os.chmod(workspace.home / folder, 0o777)
        line = run_cli("issue", "client", "x", "--key", "p256", home=workspace.home).assert_one_line_error()
        assert f"{workspace.home / folder} is writable by others" in line, line
        assert "writable by others" in run_cli("list", home=workspace.home).err
        os.chmod(workspace.home / folder, 0o755)
    assert run_cli("issue", "client", "x", "--key", "p256", home=workspace.home).code == 0


def test_exports_make_no_open_folder_and_write_through_no_link(story, tmp_path):
    """export-openssl-db made 0777 folders under umask 000 and wrote through a linked --out; so did webconfig."""
    workspace, _, _ = story
    workspace.close()
    old = os.umask(0)
    try:
        assert run_cli("export-openssl-db", "--out", tmp_path / "db" / "kitty-ca", home=workspace.home).code == 0
        assert run_cli("webconfig", "nginx", "--out", tmp_path / "site" / "nginx.conf", home=workspace.home).code == 0
    finally:
        os.umask(old)
    for top in (tmp_path / "db", tmp_path / "site"):
        for folder in (top, *[p for p in top.rglob("*") if p.is_dir()]):
            assert mode(folder) & 0o022 == 0, f"{folder} is {oct(mode(folder))}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link").symlink_to(elsewhere)
    for argv in (("export-openssl-db", "--out", tmp_path / "link"),
                 ("webconfig", "nginx", "--out", tmp_path / "link" / "x.conf"),
                 ("webconfig", "nginx", "--out", tmp_path / "site2" / "x.conf", "--webroot", tmp_path / "link")):
        line = run_cli(*argv, home=workspace.home).assert_one_line_error()
        assert "symbolic link" in line, line
    assert list(elsewhere.iterdir()) == []


def test_no_write_goes_through_a_planted_link(workspace, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.key.0a").write_text("not kittylab's")
    (workspace.home / ".staging").rmdir()
    (workspace.home / ".staging").symlink_to(outside)
    with Workspace(workspace.home) as again:
        with pytest.raises(KittylabError, match="symbolic link"):
            again.issue("eager-client", profile="client", key="p256")
    assert [p.name for p in outside.iterdir()] == ["precious.key.0a"]


def test_threads_sharing_one_workspace_object_take_turns(workspace):
    """The lock is per thread too: four threads issuing through one object never interleave their writes."""
    import threading

    failures = []

    def issue(n):
        try:
            for k in range(4):
                workspace.issue(f"thread-{n}-{k}", profile="client", key="p256")
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=issue, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(workspace.records(include_ca=False)) == 16
    assert not list((workspace.home / ".staging").iterdir())


def test_a_remembered_workshop_folder_waits_for_the_lock_as_every_change_does(workspace, tmp_path):
    import threading

    other = Workspace(workspace.home)  # another writer (another process, as far as the lock can tell)
    other._lock.acquire()
    try:
        writer = threading.Thread(target=workspace.add_workshop, args=(tmp_path / "class",))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and workspace.workshops() == []
    finally:
        other._lock.release()
    writer.join(10)
    workspace.add_workshop(tmp_path / "class")  # remembered once
    assert workspace.workshops() == [(tmp_path / "class").resolve()]
    other.close()
