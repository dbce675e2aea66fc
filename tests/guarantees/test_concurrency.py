"""Several processes issuing and revoking at once against one workspace (issues 2 and 7).

SQLite's ``BEGIN IMMEDIATE`` serializes the writers: every process succeeds, the serials are
distinct, and the CRL lists exactly the revoked certificates.
"""

from __future__ import annotations

import subprocess
import sys
import time

from support.cli import PYTHON

from kittylab import Workspace, load_key, load_p12

WORKER = r"""
import sys, time
from pathlib import Path
from kittylab import Workspace, load_key, load_p12

home, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
go = Path(home).parent / "go"
workspace = Workspace(home)
workspace.ca
while not go.exists():
    time.sleep(0.005)
for i in range(count):
    name = f"{prefix}-{i}"
    issued = workspace.issue(name, profile="client", key="p256")
    print("issued", name, issued.record.serial_hex, flush=True)
    if i % 2:
        workspace.revoke(name, reason="key-compromise")
        print("revoked", name, issued.record.serial_hex, flush=True)
"""

#: ``python -c CLI_AFTER_GO GO_FILE ARGS...``: the kittylab command, started once GO_FILE exists.
CLI_AFTER_GO = (
    "import sys, time, pathlib, runpy\n"
    "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.005)\n"
    "sys.argv = ['kittylab'] + sys.argv[2:]\n"
    "runpy.run_module('kittylab', run_name='__main__')"
)


def start_together(commands: list[list[str]], go) -> list[subprocess.CompletedProcess]:
    """Start every command, let them get ready, then release them at once through the ``go`` file."""
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    time.sleep(0.5)
    go.touch()
    results = []
    for command, process in zip(commands, processes):
        out, err = process.communicate(timeout=240)
        results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return results


def test_processes_issuing_and_revoking_at_once(tmp_path, ca_home):
    home = ca_home
    workers, count = 4, 8
    results = start_together(
        [[sys.executable, "-c", WORKER, str(home), f"w{n}", str(count)] for n in range(workers)], tmp_path / "go")
    for result in results:
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
    lines = [line.split() for result in results for line in result.stdout.splitlines()]
    issued = {name: int(serial, 16) for kind, name, serial in lines if kind == "issued"}
    revoked = {int(serial, 16) for kind, _, serial in lines if kind == "revoked"}
    assert len(issued) == workers * count and len(set(issued.values())) == workers * count
    assert len(revoked) == workers * count // 2
    with Workspace(home) as workspace:
        records = workspace.records(include_ca=False)
        assert {r.name: r.serial for r in records} == issued
        assert {r.serial for r in records if r.revoked_at} == revoked
        crl = workspace.current_crl()
        assert {entry.serial_number for entry in crl} == revoked
        assert crl.is_signature_valid(workspace.ca.certificate.public_key())
        # one CRL per revocation (and the first), none lost to a race
        assert workspace._store.next_crl_number(workspace.ca_name) == 2 + len(revoked)


def test_two_command_line_processes_issue_at_once(tmp_path, ca_home):
    """Issue 2's promise, through the real command: both succeed with distinct serials."""
    home = ca_home
    commands = [[PYTHON, "-c", CLI_AFTER_GO, str(tmp_path / "go"), "--home", str(home), "issue", "client", name, "--key",
                 "p256", "--p12", "--legacy-p12"] for name in ("alice", "bob")]
    results = start_together(commands, tmp_path / "go")
    for result in results:
        assert result.returncode == 0, result.stderr
    serials = [line.split("serial ")[1].rstrip(")") for r in results for line in r.stdout.splitlines()
               if line.startswith("issued")]
    assert len(serials) == 2 and serials[0] != serials[1]
    with Workspace(home) as workspace:
        assert sorted(r.serial_hex for r in workspace.records(include_ca=False)) == sorted(serials)


def test_two_processes_racing_for_one_name(tmp_path, ca_home):
    """Exactly one wins; the other gets one line, and the files on disk are the winner's."""
    home = ca_home
    command = [PYTHON, "-c", CLI_AFTER_GO, str(tmp_path / "go"), "--home", str(home), "issue", "client", "eager-client",
               "--key", "p256", "--p12", "--p12-password-file", str(tmp_path / "pass")]
    (tmp_path / "pass").write_text("kitty-pass\n")
    results = start_together([command] * 3, tmp_path / "go")
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1 and len(losers) == 2
    for loser in losers:
        assert loser.stderr.strip().endswith("already has a current certificate: revoke it first or choose another name")
        assert len(loser.stderr.splitlines()) == 1
    with Workspace(home) as workspace:
        [record] = workspace.records(include_ca=False)
        assert record.serial_hex in winners[0].stdout
        assert (home / "eager-client.crt").read_text() == record.pem
        assert load_key(home / "eager-client.key").public_key() == record.certificate.public_key()
        assert load_p12(home / "eager-client.p12", password="kitty-pass").certificate == record.certificate
