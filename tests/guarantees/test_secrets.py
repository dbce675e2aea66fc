"""Secrets (issue 7): keys and p12 files 0600 from the very first byte; the CA key encrypted, its
passphrase asked for without echo (or read from a file or the environment); nothing secret printed."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
from pathlib import Path

from support.cli import PYTHON, clean_environment, run_cli, run_cli_process, run_in_terminal

from kittylab import Workspace, load_key, load_p12
from kittylab.pki.facts import format_summary, summarize

CA_PASSPHRASE = "correct horse battery kitty"
SECRET_SUFFIXES = (".key", ".p12")


def is_secret(path: str) -> bool:
    """A key or p12 file, or the temporary file it is written through (.NAME.key.XXXX.tmp)."""
    name = os.path.basename(path)
    return name.endswith(SECRET_SUFFIXES) or any(f"{suffix}." in name for suffix in SECRET_SUFFIXES)


# -- 0600 from the start: every creating system call, traced -----------------------------------------

OPENAT = re.compile(r'^(\d+)\s+openat\(AT_FDCWD, "([^"]+)", ([A-Z_|]+)(?:, (0\d+))?\) = (\d+)')
CHMOD = re.compile(r'^(\d+)\s+(fchmod|chmod|fchmodat)\((?:AT_FDCWD, )?("?[^,]+"?), (0\d+)\) = 0')


def traced(argv: list, home: Path, trace: Path, strace: str, *, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the real command under strace with umask 000, so that only explicit modes protect a file."""
    return subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=openat,creat,chmod,fchmod,fchmodat", "-o", str(trace),
         PYTHON, "-m", "kittylab", "--home", str(home), *map(str, argv)],
        capture_output=True, text=True, timeout=180, env=clean_environment(), input=stdin, preexec_fn=lambda: os.umask(0),
    )


def whole_calls(lines: list[str]) -> list[str]:
    """strace's lines with each call whole: a call another thread interrupts is printed in two halves,
    ``PID openat(... <unfinished ...>`` and later ``PID <... openat resumed>) = 7`` (files are written
    on several threads at once)."""
    pending: dict[str, str] = {}
    whole = []
    for line in lines:
        started = re.match(r"^(\d+)\s+(.*) <unfinished \.\.\.>$", line)
        if started:
            pending[started[1]] = started[2]
            continue
        resumed = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$", line)
        whole.append(f"{resumed[1]} {pending.pop(resumed[1])}{resumed[2]}" if resumed and resumed[1] in pending else line)
    return whole


def secret_creations(trace: Path) -> list[tuple[str, str, str]]:
    """(path, flags, mode) of every file creation of a secret, and fail on any chmod that opens one up."""
    open_files: dict[tuple[str, str], str] = {}
    created = []
    for line in whole_calls(trace.read_text().splitlines()):
        match = OPENAT.match(line)
        if match:
            pid, path, flags, mode, fd = match.groups()
            open_files[(pid, fd)] = path
            if "O_CREAT" in flags and is_secret(path):
                created.append((path, flags, mode))
            continue
        match = CHMOD.match(line)
        if match:
            pid, call, target, mode = match.groups()
            path = target.strip('"') if call != "fchmod" else open_files.get((pid, target), "")
            if is_secret(path):
                assert int(mode, 8) & 0o077 == 0, f"{line}: a secret was made readable by others"
    return created


def test_keys_and_p12_files_are_created_0600(tmp_path, require):
    strace = require("strace")
    home = tmp_path / "kitty-workspace"
    (tmp_path / "pass").write_text(CA_PASSPHRASE + "\n")
    steps = [
        ["--ca-passphrase-file", tmp_path / "pass", "init", "--key", "p256", "--encrypt-key"],
        ["--ca-passphrase-file", tmp_path / "pass", "issue", "client", "eager-client", "--key", "p256", "--p12"],
        ["--ca-passphrase-file", tmp_path / "pass", "issue", "server", "picture-server", "--key", "p256",
         "--dns", "localhost"],
        ["--ca-passphrase-file", tmp_path / "pass", "export-p12", "eager-client", "--legacy"],
    ]
    creations = []
    for number, argv in enumerate(steps):
        trace = tmp_path / f"trace{number}"
        done = traced(argv, home, trace, strace)
        assert done.returncode == 0, done.stderr
        creations += secret_creations(trace)
    # A temporary file is ".NAME.key.XXXX.tmp"; a staged one (.staging/) is "NAME.key.SERIAL".
    created = {re.sub(r"^\.|\.[a-z0-9_]+\.tmp$", "", os.path.basename(p)) for p, _, _ in creations}
    created = {re.sub(r"\.(key|p12)\.[0-9a-f]+$", r".\1", name) for name in created}
    assert {"kitty-ca.key", "eager-client.key", "eager-client.p12", "picture-server.key"} <= created
    for path, flags, mode in creations:
        assert "O_EXCL" in flags, f"{path} was not created fresh ({flags})"
        assert mode == "0600", f"{path} was created with mode {mode}"
    for name in ("kitty-ca.key", "eager-client.key", "eager-client.p12", "picture-server.key"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "eager-client.crt").stat().st_mode) == 0o644


def test_the_trace_would_see_a_window(tmp_path, require):
    """The check above can fail: a file written first and protected afterwards is caught."""
    strace = require("strace")
    trace = tmp_path / "trace"
    script = "import os; open('leaky.key', 'w').write('x'); os.chmod('leaky.key', 0o600)"
    subprocess.run([strace, "-f", "-qq", "-e", "trace=openat,chmod,fchmodat", "-o", str(trace), PYTHON, "-c", script],
                   cwd=tmp_path, check=True, preexec_fn=lambda: os.umask(0))
    [(path, flags, mode)] = secret_creations(trace)
    assert mode == "0666"


# -- the CA key encrypted; its passphrase never echoed -------------------------------------------------


def test_the_passphrase_is_asked_for_without_echo(tmp_path, terminal_env):
    home = tmp_path / "kitty-workspace"
    code, output = run_in_terminal(["init", "--key", "p256", "--encrypt-key"], [CA_PASSPHRASE] * 2, terminal_env)
    assert code == 0, output
    assert "Passphrase for the CA key: " in output and "Again: " in output
    assert CA_PASSPHRASE not in output
    assert b"ENCRYPTED PRIVATE KEY" in (home / "kitty-ca.key").read_bytes()
    assert load_key(home / "kitty-ca.key", passphrase=CA_PASSPHRASE)

    code, output = run_in_terminal(["issue", "client", "eager-client", "--key", "p256"], [CA_PASSPHRASE],
                                   terminal_env)
    assert code == 0, output
    assert "Passphrase for the CA key kitty-ca (kitty-ca.key): " in output and CA_PASSPHRASE not in output
    assert (home / "eager-client.crt").exists()

    code, output = run_in_terminal(["issue", "client", "mallory", "--key", "p256"], ["not the passphrase"],
                                   terminal_env)
    assert code == 1 and "kittylab: error: wrong passphrase" in output and "Traceback" not in output
    assert "not the passphrase" not in output
    assert not (home / "mallory.crt").exists()


def test_mismatched_passphrases_make_no_ca(tmp_path, terminal_env):
    code, output = run_in_terminal(["init", "--key", "p256", "--encrypt-key"], ["one", "two"], terminal_env)
    assert code == 1 and "do not match" in output
    assert not (tmp_path / "kitty-workspace" / "kitty-ca.key").exists()


def test_the_passphrase_from_a_file_or_the_environment(tmp_path):
    home = tmp_path / "kitty-workspace"
    (tmp_path / "pass").write_text(CA_PASSPHRASE + "\nignored second line\n")
    result = run_cli_process("--ca-passphrase-file", tmp_path / "pass", "init", "--key", "p256", "--encrypt-key",
                             home=home)
    assert result.code == 0, result.err
    assert load_key(home / "kitty-ca.key", passphrase=CA_PASSPHRASE)
    by_env = run_cli_process("issue", "client", "eager-client", "--key", "p256", home=home,
                             env={"KITTYLAB_CA_PASSPHRASE": CA_PASSPHRASE})
    assert by_env.code == 0, by_env.err
    by_file = run_cli_process("--ca-passphrase-file", tmp_path / "pass", "revoke", "eager-client", home=home)
    assert by_file.code == 0, by_file.err
    wrong = run_cli_process("issue", "client", "x", "--key", "p256", home=home,
                            env={"KITTYLAB_CA_PASSPHRASE": "wrong"})
    assert wrong.err.strip() == "kittylab: error: wrong passphrase for the key of the CA kitty-ca (kitty-ca.key)"
    assert wrong.code == 1
    # Without a terminal and without a passphrase: a clear error instead of a hanging prompt.
    none = run_cli_process("issue", "client", "y", "--key", "p256", home=home, input="")
    assert none.code == 1 and "the key of the CA kitty-ca is encrypted" in none.err
    for result in (result, by_env, by_file, wrong, none):
        assert CA_PASSPHRASE not in result.out + result.err


# -- nothing secret printed ---------------------------------------------------------------------------


def test_nothing_secret_in_output_logs_reprs_or_the_store(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "kitty-workspace"
    (tmp_path / "pass").write_text(CA_PASSPHRASE)
    outputs = [run_cli("--ca-passphrase-file", tmp_path / "pass", "init", "--key", "p256", "--encrypt-key",
                       home=home)]
    issue = run_cli("--ca-passphrase-file", tmp_path / "pass", "issue", "client", "eager-client", "--key", "p256",
                    "--p12", home=home)
    password = re.search(r"p12 password \(shown once, keep it safe\): (\S+)", issue.out).group(1)
    outputs += [issue]
    for argv in (["list"], ["list", "--json"], ["show", "eager-client"], ["show", "eager-client", "--json"],
                 ["show", "kitty-ca", "--json"], ["verify", home / "eager-client.crt"],
                 ["--ca-passphrase-file", tmp_path / "pass", "crl"],
                 ["--ca-passphrase-file", tmp_path / "pass", "revoke", "eager-client"]):
        outputs.append(run_cli(*argv, home=home))
        assert outputs[-1].code == 0, outputs[-1].err
    printed = "\n".join(o.out + o.err for o in outputs)
    assert printed.count(password) == 1, "the generated p12 password is printed exactly once"
    assert CA_PASSPHRASE not in printed
    assert "PRIVATE KEY" not in printed
    key_body = (home / "eager-client.key").read_text().splitlines()[1]
    assert key_body not in printed
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "PRIVATE KEY" not in logged and password not in logged and CA_PASSPHRASE not in logged

    with Workspace(home, ca_passphrase=CA_PASSPHRASE) as workspace:
        issued = workspace.issue("second", profile="client", key="p256", p12=True)
        shown = [repr(issued), str(issued), repr(issued.record), repr(workspace), repr(workspace.ca.certificate),
                 format_summary(summarize(issued.certificate, issued.record)),
                 json.dumps(issued.record.as_dict()), repr(load_p12(issued.files["p12"], password=issued.p12_password))]
        for text in shown:
            assert "PRIVATE KEY" not in text and issued.p12_password not in text and CA_PASSPHRASE not in text
    stored = b"".join(p.read_bytes() for p in home.iterdir() if p.is_file() and p.suffix not in (".key", ".p12"))
    for secret in (password, issued.p12_password, CA_PASSPHRASE):
        assert secret.encode() not in stored, "a password was written to the workspace"
    assert b"PRIVATE KEY" not in stored


def test_no_private_key_in_the_notebooks_stored_outputs():
    notebooks = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
    for notebook in notebooks:
        cells = json.loads(notebook.read_text())["cells"]
        outputs = json.dumps([cell.get("outputs", []) for cell in cells])
        assert "PRIVATE KEY" not in outputs, f"{notebook.name} shows a private key"


def test_a_call_strace_printed_in_two_halves_is_read_whole():
    lines = ['7 openat(AT_FDCWD, "/w/.a.key.x1.tmp", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600 <unfinished ...>',
             '8 openat(AT_FDCWD, "/w/b.crt", O_RDONLY|O_CLOEXEC) = 4',
             "7 <... openat resumed>) = 5"]
    assert OPENAT.match(whole_calls(lines)[1]).groups() == (
        "7", "/w/.a.key.x1.tmp", "O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC", "0600", "5")

