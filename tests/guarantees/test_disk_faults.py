"""A full disk or a read-only workspace: a clear error, and the store (and files) as they were.

Three real faults: a small tmpfs filled to the last byte (ENOSPC), a file-size limit
(``RLIMIT_FSIZE``: EFBIG, works without privileges), and a read-only mount (EROFS).
The tmpfs cases need root with mount rights (as in CI) and skip with the reason elsewhere
(fail with KITTYLAB_REQUIRE_SYSTEM=1).
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess

import pytest
from support.cli import PYTHON, CliResult, run_cli, snapshot
from support.system import unavailable

from kittylab import KittylabError, Workspace

PASSWORD = "kitty-pass"
#: Commands that would each write to the workspace.
WRITING_COMMANDS = [
    ["issue", "client", "newcomer", "--key", "p256"],
    ["issue", "client", "newcomer", "--key", "p256", "--p12", "--legacy-p12"],
    ["issue", "server", "newcomer", "--key", "p256", "--dns", "localhost"],
    ["revoke", "eager-client"],
    ["crl"],
    ["export-p12", "eager-client"],
]


def make_workspace(home) -> None:
    with Workspace(home) as workspace:
        workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
        workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password=PASSWORD)


@pytest.fixture
def tmpfs(tmp_path):
    """A 512 KiB tmpfs of our own (needs root and mount rights), unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here (needs root with mount rights): {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(directory) -> None:
    """Write filler files until the file system is full, to the last byte."""
    for name, chunk in (("filler", 65536), ("filler-tail", 1)):
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)


def run_process(argv, home, **popen) -> CliResult:
    done = subprocess.run([PYTHON, "-m", "kittylab", "--home", str(home), *argv], capture_output=True, text=True,
                          timeout=120, **popen)
    return CliResult(done.returncode, done.stdout, done.stderr)


def test_a_full_disk(tmpfs):
    home = tmpfs / "kitty-workspace"
    make_workspace(home)
    fill(tmpfs)
    before = snapshot(home)
    with Workspace(home) as workspace:
        for call in (
            lambda: workspace.issue("newcomer", profile="client", key="p256", p12=True, p12_password=PASSWORD),
            lambda: workspace.revoke("eager-client"),
            lambda: workspace.publish_crl(),
            lambda: workspace.export_p12("eager-client", password=PASSWORD),
        ):
            with pytest.raises(KittylabError, match="No space left on device|disk is full"):
                call()
            assert snapshot(home) == before
    writers_refused(home, before, "No space left on device", "disk is full")
    (tmpfs / "filler").unlink()
    (tmpfs / "filler-tail").unlink()
    with Workspace(home) as workspace:  # space again: everything works
        workspace.issue("newcomer", profile="client", key="p256")
        assert workspace.revoke("eager-client").status() == "revoked"


def writers_refused(home, before, *reasons: str) -> None:
    """Every command of WRITING_COMMANDS fails in one line naming one of ``reasons``, and leaves ``home`` as ``before``."""
    for argv in WRITING_COMMANDS:
        line = run_cli(*argv, home=home).assert_one_line_error()
        assert any(reason in line for reason in reasons), line
        assert snapshot(home) == before


def test_a_read_only_mount(tmpfs):
    home = tmpfs / "kitty-workspace"
    make_workspace(home)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    before = snapshot(home)
    writers_refused(home, before, "Read-only file system", "readonly database")
    for argv in (["list"], ["show", "eager-client"], ["verify", home / "eager-client.crt"]):
        assert run_cli(*argv, home=home).code == 0  # reading still works


def test_a_file_size_limit(tmp_path):
    """RLIMIT_FSIZE below the store's size: every write fails with EFBIG (SIGXFSZ ignored)."""
    home = tmp_path / "kitty-workspace"
    make_workspace(home)
    before = snapshot(home)
    limit = 200  # smaller than any key, CRL or store page

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    for argv in WRITING_COMMANDS:
        result = run_process(argv, home, preexec_fn=limited)
        line = result.assert_one_line_error()
        assert "File too large" in line or "disk" in line or "I/O" in line, line
        assert snapshot(home) == before
    assert run_process(["issue", "client", "newcomer", "--key", "p256"], home).code == 0


def test_a_store_commit_over_the_file_size_limit_is_one_line(tmp_path):
    """ulimit -f 32: the files fit, the store's commit does not, and SQLite's rollback fails the same way
    (it raised again inside the store's error handler: a traceback)."""
    home = tmp_path / "kitty-workspace"
    make_workspace(home)
    limit = 32 * 1024
    assert (home / "kittylab.sqlite3").stat().st_size > limit

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    line = run_process(["revoke", "eager-client"], home, preexec_fn=limited).assert_one_line_error()
    assert "certificate store" in line and "I/O" in line, line
    assert run_process(["revoke", "eager-client"], home).code == 0  # without the limit, it goes through
    with Workspace(home) as workspace:
        assert workspace.find("eager-client").revoked_at is not None
