"""Cut a ``kittylab`` command at any write point and check what it leaves (issue 11's crash proof).

A *write point* is every call that changes the disk or the store: ``os.fsync`` (each file write
ends with one), ``os.replace``, ``os.rename`` and ``os.link`` (each file taking its place), and
the store's commit. :class:`Cutter` runs a command in a forked child of a clean helper process
(so each run costs a fork, not an interpreter start) with those calls wrapped: the child lists
each point it reaches and SIGKILLs itself just before the ``cut``-th one. Running with no cut
lists every point of a command; running with ``cut=k`` for each k covers them all.

:func:`check_instant` holds right after a kill (what anyone reading the files may see);
:func:`check_settled` holds once the next command that changes something has opened the
workspace (:meth:`Workspace.restore_missing_files`, which every change does first).
Any command works, ``roster issue`` too: pass its arguments.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from kittylab import KittylabError, Workspace, load_crl, load_key, load_p12
from kittylab.workspace.protocol import STAGING, parse_staged

_SERVER = r"""
import io, json, os, signal, sys, threading, time
from kittylab.cli.main import main
from kittylab.workspace import store


def child(request):
    for fd, path in ((1, request["out"]), (2, request["err"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    points = os.open(request["points"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    cut, lock, count = request["cut"], threading.Lock(), [0]

    def point(label):
        with lock:
            count[0] += 1
            os.write(points, (label + "\n").encode())
            if count[0] == cut:
                os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner, attribute, describe):
        original = getattr(owner, attribute)

        def wrapped(*args, **kwargs):
            point(f"{attribute} {describe(*args)}")
            return original(*args, **kwargs)

        setattr(owner, attribute, wrapped)

    def name_of_fd(fd, *_):
        try:
            return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            return "?"

    wrap(os, "fsync", name_of_fd)
    for attribute in ("replace", "rename", "link"):
        wrap(os, attribute, lambda source, target, *_: os.path.basename(str(target)))
    wrap(store.Store, "_commit", lambda self: "store")
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    try:
        return main(request["argv"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def fork(request, go=None):
    # a child that runs the request (once the go file exists, if one is named) and exits with its code
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            while go and not os.path.exists(go):
                time.sleep(0.001)
            code = child(request)
        finally:
            os._exit(code)
    return pid


def race(requests):
    # one child per request; they start together (a go file) and run at once
    go = requests[0]["go"]
    pids = [fork(request, go) for request in requests]
    time.sleep(0.05)
    open(go, "w").close()
    return [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]


for line in sys.stdin:
    request = json.loads(line)
    if isinstance(request, list):
        print(json.dumps(race(request)), flush=True)
        continue
    pid = fork(request)
    done, status = 0, 0
    if request["kill_after"] is not None:  # a timer instead of a write point: the random soak
        deadline = time.monotonic() + request["kill_after"]
        while not done and time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            time.sleep(0.001)
        if not done:
            os.kill(pid, signal.SIGKILL)
    if not done:
        _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


@dataclass
class Outcome:
    code: int  # -9 when the cut killed it
    points: list[str]
    out: str
    err: str

    @property
    def killed(self) -> bool:
        return self.code == -9


class Cutter(contextlib.AbstractContextManager["Cutter"]):
    """A helper process that forks one child per command run (see the module's docstring)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)

    def run(self, argv: list[str], *, cut: int | None = None, kill_after: float | None = None,
            cwd: Path | None = None, env: dict[str, str] | None = None) -> Outcome:
        files = {kind: self.scratch / f"run.{kind}" for kind in ("out", "err", "points")}
        request = {"argv": [str(a) for a in argv], "cut": cut, "kill_after": kill_after, "cwd": str(cwd or self.scratch), "env": env or {},
                   **{kind: str(path) for kind, path in files.items()}}
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        code = json.loads(self._server.stdout.readline())
        return Outcome(code, files["points"].read_text().splitlines(), files["out"].read_text(),
                       files["err"].read_text())

    def race(self, commands: list[list[str]], *, cwd: Path | None = None) -> list[Outcome]:
        """Run the commands at once, each in its own process, released together."""
        go = self.scratch / "go"
        go.unlink(missing_ok=True)
        requests, files = [], []
        for n, argv in enumerate(commands):
            paths = {kind: self.scratch / f"race{n}.{kind}" for kind in ("out", "err", "points")}
            files.append(paths)
            requests.append({"argv": [str(a) for a in argv], "cut": None, "kill_after": None, "go": str(go),
                             "cwd": str(cwd or self.scratch), "env": {}, **{k: str(v) for k, v in paths.items()}})
        self._server.stdin.write(json.dumps(requests) + "\n")
        self._server.stdin.flush()
        codes = json.loads(self._server.stdout.readline())
        return [Outcome(code, paths["points"].read_text().splitlines(), paths["out"].read_text(),
                        paths["err"].read_text()) for code, paths in zip(codes, files)]

    def close(self) -> None:
        self._server.stdin.close()
        self._server.wait(30)
        self._server.stdout.close()

    def __exit__(self, *exc_info) -> None:
        self.close()


def _secret_files(home: Path) -> list[Path]:
    found = []
    for path in home.rglob("*"):
        name = path.name
        if path.is_file() and (name.endswith((".key", ".p12")) or ".key." in name or ".p12." in name):
            found.append(path)
    return found


def check_instant(home: Path, *, password: str) -> None:
    """What must hold at every moment, even right after a kill -9 (before anything repairs)."""
    for path in _secret_files(home):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is readable by others"
    for folder in (home, *[p for p in home.rglob("*") if p.is_dir()]):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o022 == 0, f"{folder} is writable by others"
    if not (home / "kittylab.sqlite3").exists():
        # Before init's commit: no CA file may be in place (init refuses then, and repair finds nothing).
        assert not [p.name for p in home.glob("*.crt")] + [p.name for p in home.glob("*.key")]
        return
    with Workspace(home) as workspace:
        records = workspace.records()
        serials = [r.serial for r in records]
        assert len(serials) == len(set(serials)), "a serial was used twice"
        pems = {r.pem.encode() for r in records}
        staged = {}
        staging = home / STAGING
        for path in (staging.iterdir() if staging.is_dir() else ()):
            parsed = parse_staged(path.name)
            if parsed:
                staged[(parsed[0], parsed[1], parsed[2])] = path
        for record in records:
            current = record.revoked_at is None and record.superseded_by is None
            key_path = workspace.path(record.name, "key")
            pending = staged.get((record.name, "key", record.serial))
            if current and pending is not None:
                # Committed, the kill came before its key took its place: the next change moves it.
                assert load_key(pending, passphrase=None).public_key() == record.certificate.public_key()
            elif current and key_path.exists():
                key = _key(workspace, record.name, key_path)
                if key is not None:
                    assert key.public_key() == record.certificate.public_key(), f"{key_path.name} does not match"
            elif current and record.profile == "ca":
                raise AssertionError(f"the key of the CA {record.name} is lost")
        for path in home.glob("*.crt"):
            assert path.read_bytes() in pems, f"{path.name} holds a certificate the store does not know"
        for path in home.glob("*.p12"):
            contents = load_p12(path, password=password)
            assert contents.certificate.public_bytes(Encoding.PEM) in pems, f"{path.name}: unknown certificate"
        for name in workspace.ca_names():
            crl_path = workspace.path(name, "crl")
            if not crl_path.exists():
                continue  # a missing CRL fails closed (web servers refuse to start)
            crl = load_crl(crl_path)
            record = workspace.ca_record(name)
            assert crl.is_signature_valid(record.certificate.public_key()), f"{crl_path.name} is not {name}'s"
            committed = {r.serial for r in records if r.issuer == name and r.revoked_at is not None}
            listed = {entry.serial_number for entry in crl}
            assert committed <= listed, f"{crl_path.name} misses a committed revocation"


def check_settled(home: Path, *, password: str) -> list[str]:
    """What holds once the next change has opened the workspace: everything exact. Returns what it fixed."""
    if not (home / "kittylab.sqlite3").exists():
        check_instant(home, password=password)
        return []
    with Workspace(home) as workspace:
        fixed = workspace.restore_missing_files()
    check_instant(home, password=password)
    now = dt.datetime.now(dt.timezone.utc)
    with Workspace(home) as workspace:
        staging = home / STAGING
        assert not staging.is_dir() or not list(staging.iterdir()), "staged files were left"
        records = workspace.records()
        for record in records:
            if record.revoked_at is None and record.superseded_by is None:
                assert workspace.path(record.name, "crt").read_bytes() == record.pem.encode()
                key_path = workspace.path(record.name, "key")
                if record.profile == "ca":
                    assert key_path.exists(), f"the key of the CA {record.name} is lost"
                p12 = workspace.path(record.name, "p12")
                if p12.exists() and key_path.exists():
                    contents = load_p12(p12, password=password)
                    assert contents.key.public_key() == load_key(key_path).public_key(), f"{p12.name} holds another key"
        for name in workspace.ca_names():
            crl = load_crl(workspace.path(name, "crl"))
            assert crl.is_signature_valid(workspace.ca_record(name).certificate.public_key())
            assert crl.next_update_utc > now, f"{name}'s CRL is not current"
            revoked = {r.serial for r in records if r.issuer == name and r.revoked_at is not None}
            assert {entry.serial_number for entry in crl} == revoked, f"{name}'s CRL is not exact"
            lineage = workspace.lineage(name)
            if len(lineage) > 1:
                chain = workspace.path(name, "chain.crl").read_bytes()
                expected = b"".join(workspace.path(r.name, "crl").read_bytes() for r in lineage)
                assert chain == expected, f"{name}.chain.crl is stale"
    return fixed


def _key(workspace: Workspace, name: str, path: Path):
    try:
        return load_key(path)
    except KittylabError:
        return None  # an encrypted CA key: its match is checked where it signs
