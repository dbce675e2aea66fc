"""kill -9 in the middle of a batch of issuances and revocations, many times (issue 7).

After each kill the workspace is opened again (which restores missing certificate files) and
must satisfy, exactly:

- no two records share a serial, and every serial the dead process reported is in the store
  under its name (no record lost for a certificate that was written, no serial reused);
- every current record's ``NAME.crt`` holds exactly that record's certificate;
- every certificate on disk (each ``.crt``, and the certificate inside each ``.p12``) belongs to
  a record: none can exist that the store does not know and so could not revoke;
- every ``.key`` file is whole (it loads) and, where its name has a current record, it is that
  certificate's key; leftover temporary files of secrets are 0600;
- the CRL lists every revoked certificate (it may also list one whose revocation was cut off
  before its commit: fail closed), and the next publication lists exactly the revoked ones;
- the next issuance works.

A ``NAME.key`` (and ``NAME.csr``) without a record may remain when the kill came between
writing the key and committing the record: it is whole, holds no certificate, and the next
issuance of that name overwrites it.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kittylab import Workspace, load_key, load_p12

PASSWORD = "kitty-pass"
ROUNDS = 10

WORKER = r"""
import sys
from kittylab import Workspace
from kittylab.workspace.workspace import draft_issue

home, prefix = sys.argv[1], sys.argv[2]
workspace = Workspace(home)
ca = workspace.ca
print("ready", flush=True)
for i in range(10_000):
    name = f"{prefix}-{i}"
    if i % 4 == 3:  # a small batch in one transaction, as a roster does
        names = [f"{name}-{k}" for k in range(3)]
        drafts = [draft_issue(ca, n, profile="client", subject=workspace.default_subject(n), key="p256",
                              p12=True, p12_password="kitty-pass") for n in names]
        for item in workspace.record_drafts(drafts):
            print("issued", item.name, item.record.serial_hex, flush=True)
        name = names[0]
    else:
        issued = workspace.issue(name, profile="client", key="p256", p12=i % 2 == 0, p12_password="kitty-pass")
        print("issued", name, issued.record.serial_hex, flush=True)
    if i % 3 != 0:
        workspace.revoke(name, reason="superseded")
        print("revoked", name, flush=True)
"""


def run_and_kill(home: Path, prefix: str, delay: float) -> list[list[str]]:
    """Start a worker, let it issue for ``delay`` seconds after it is ready, kill -9 it; return its report."""
    process = subprocess.Popen([sys.executable, "-c", WORKER, str(home), prefix], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), process.stderr.read() if process.poll() is not None else "worker never got ready"
        time.sleep(delay)
        assert process.poll() is None, process.stderr.read()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        reader.join(10)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    return [line.split() for line in lines[1:]]


def check_invariants(workspace: Workspace, reported: dict[str, int], revoked_names: set[str],
                     checked: set[tuple[str, int]]) -> set[str]:
    """Assert the invariants (secrets already checked with the same bytes are skipped); return the orphan keys."""
    records = workspace.records()
    serials = [r.serial for r in records]
    assert len(serials) == len(set(serials)), "a serial was used twice"
    by_name: dict[str, list] = {}
    for record in records:
        by_name.setdefault(record.name, []).append(record)
    for name, serial in reported.items():
        assert serial in {r.serial for r in by_name.get(name, [])}, f"the record of {name} was lost"
    for name in revoked_names:
        assert any(r.revoked_at for r in by_name[name]), f"the revocation of {name} was lost"

    pems = {r.pem.encode() for r in records}
    orphans: set[str] = set()
    home = workspace.home
    for path in home.iterdir():
        if path.is_dir() or path.name == ".kittylab.lock":
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            if ".key." in path.name or ".p12." in path.name:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is readable by others"
            continue
        name, _, suffix = path.name.rpartition(".")
        current = workspace._store.current(name)
        seen = (path.name, hash(path.read_bytes()), current.serial if current else None)
        if seen in checked:
            continue
        if suffix == "crt":
            assert path.read_bytes() in pems, f"{path.name} holds a certificate the store does not know"
            if current is not None:
                assert path.read_bytes() == current.pem.encode(), f"{path.name} is not its current record"
        elif suffix == "key" and name != workspace.ca_name:
            key = load_key(path)  # whole, never half-written
            if current is not None:
                assert key.public_key() == current.certificate.public_key(), f"{path.name} does not match"
            elif not by_name.get(name):
                orphans.add(name)
        elif suffix == "p12":
            contents = load_p12(path, password=PASSWORD)
            assert contents.certificate.public_bytes(Encoding.PEM) in pems, \
                f"{path.name} holds a certificate the store does not know"
        if suffix in ("key", "p12"):
            checked.add(seen)
    for record in records:
        if record.revoked_at is None and record.superseded_by is None:
            assert (home / f"{record.name}.crt").read_bytes() == record.pem.encode()

    store_revoked = {r.serial for r in records if r.revoked_at}
    crl_serials = {entry.serial_number for entry in workspace.current_crl()}
    assert store_revoked <= crl_serials, "a committed revocation is missing from the CRL"
    assert crl_serials <= set(serials)
    return orphans


@pytest.mark.slow
def test_kill_9_in_the_middle_of_issuing(ca_home):
    home = ca_home
    rng = random.Random(os.environ.get("KITTYLAB_CRASH_SEED") or None)
    reported: dict[str, int] = {}
    revoked_names: set[str] = set()
    orphans: set[str] = set()
    checked: set[tuple[str, int]] = set()
    for round_ in range(ROUNDS):
        for line in run_and_kill(home, f"r{round_}", rng.uniform(0.0, 0.5)):
            if line[0] == "issued":
                reported[line[1]] = int(line[2], 16)
            elif line[0] == "revoked":
                revoked_names.add(line[1])
        with Workspace(home) as workspace:
            workspace.restore_missing_files()  # what the next command that changes something does first
            orphans |= check_invariants(workspace, reported, revoked_names, checked)
            after = workspace.issue(f"after-{round_}", profile="client", key="p256", p12=True, p12_password=PASSWORD)
            reported[after.name] = after.record.serial
            crl = workspace.publish_crl()
            assert {e.serial_number for e in crl} == {r.serial for r in workspace.records() if r.revoked_at}
    assert len(reported) > ROUNDS * 2, "the workers were killed before they issued anything: nothing was tested"
    print(f"{ROUNDS} kills, {len(reported)} certificates reported, {len(revoked_names)} revoked, {len(orphans)} orphan keys")


def test_an_orphan_key_is_overwritten_by_the_next_issuance(workspace):
    """What a kill between the key and the record leaves: a whole key file, replaced on the next issue."""
    orphan = workspace.path("eager-client", "key")
    orphan.write_bytes(b"-----BEGIN PRIVATE KEY-----\nleft over\n-----END PRIVATE KEY-----\n")
    issued = workspace.issue("eager-client", profile="client", key="p256")
    assert load_key(orphan).public_key() == issued.certificate.public_key()


def test_restore_missing_and_damaged_certificate_files(story):
    workspace, server, client = story
    (workspace.home / "picture-server.crt").unlink()
    (workspace.home / "eager-client.crt").write_bytes(b"half a certif")
    with Workspace(workspace.home) as reopened:
        assert not (workspace.home / "picture-server.crt").exists()  # opening only reads
        assert sorted(reopened.restore_missing_files()) == ["restored eager-client.crt", "restored picture-server.crt"]
    assert x509.load_pem_x509_certificate((workspace.home / "picture-server.crt").read_bytes()) == server.certificate
    assert (workspace.home / "eager-client.crt").read_text() == client.record.pem
