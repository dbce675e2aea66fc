"""Helpers shared by the core's tests: running the command line, and snapshots of a workspace.

``run_cli`` calls ``kittylab.cli.main.main`` in this process (fast enough for property tests; an
unexpected exception propagates and fails the test). ``run_cli_process`` runs the real
``python -m kittylab`` for the checks that need a real exit code, stderr and no traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kittylab.cli.main import main

PYTHON = sys.executable


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def assert_one_line_error(self) -> str:
        """A failure: non-zero exit, exactly one line on stderr, no traceback; returns that line."""
        assert self.code != 0, (self.out, self.err)
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert "Traceback" not in self.err and "Traceback" not in self.out
        assert lines[0].startswith("kittylab"), lines[0]
        return lines[0]


def run_cli(*argv: str | os.PathLike, home: os.PathLike | None = None) -> CliResult:
    """``kittylab [--home HOME] ARGV...`` in this process."""
    args = [str(a) for a in ((["--home", home] if home is not None else []) + list(argv))]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_steps(*steps: tuple[str | os.PathLike, ...], home: os.PathLike) -> list[CliResult]:
    """Each ``kittylab --home HOME STEP...`` in turn, in this process; every one must succeed."""
    results = []
    for argv in steps:
        done = run_cli(*argv, home=home)
        assert done.code == 0, (argv, done.err)
        results.append(done)
    return results


def clean_environment(extra: dict | None = None) -> dict:
    """This process's environment without its ``KITTYLAB_`` variables (no secret or home the test did not give),
    with ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("KITTYLAB_")}, **(extra or {})}


def run_cli_process(
    *argv: str | os.PathLike, home: os.PathLike | None = None, env: dict | None = None, input: str | None = None,
    timeout: float = 60,
) -> CliResult:
    """The real ``python -m kittylab [--home HOME] ARGV...`` in a subprocess."""
    args = [str(a) for a in ((["--home", home] if home is not None else []) + list(argv))]
    done = subprocess.run(
        [PYTHON, "-m", "kittylab", *args], capture_output=True, text=True, env=clean_environment(env), input=input,
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def run_in_terminal(argv: list, answers: list[str], env: dict) -> tuple[int, str]:
    """Run the real command on a pseudo-terminal, typing ``answers`` at each passphrase or password prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.execve(PYTHON, [PYTHON, "-m", "kittylab", *map(str, argv)], env)
    output, sent = b"", 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            prompts = len(re.findall(rb"(?m)^(?:Passphrase for|New passphrase for|Password for|Again)[^\n]*: ", output))
            while sent < min(prompts, len(answers)):
                os.write(fd, answers[sent].encode() + b"\n")
                sent += 1
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def snapshot(home: Path) -> tuple[dict[str, bytes], list[tuple]]:
    """Every file in a workspace with its bytes, and every row of the store: to prove nothing changed."""
    files = {p.name: p.read_bytes() for p in sorted(Path(home).iterdir()) if p.is_file()}
    rows: list[tuple] = []
    store = Path(home) / "kittylab.sqlite3"
    if store.exists():
        with contextlib.closing(sqlite3.connect(store)) as db:
            rows = db.execute("SELECT * FROM certificates ORDER BY rowid").fetchall()
            rows += db.execute("SELECT * FROM meta ORDER BY key").fetchall()
    return files, rows
