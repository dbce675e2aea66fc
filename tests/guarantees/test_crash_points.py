"""kill -9 at every write point of every command, then the same command again (issue 11's proof).

For each command below, a first run lists its write points (each fsync, rename and link, and
each store commit; see :mod:`support.crash`); then for every point k a fresh copy of the
workspace runs the command cut just before point k. After each cut:

- :func:`check_instant`: no serial reused, every CA key and every current certificate's key in
  place matches its certificate (or waits, staged, for its committed certificate), every
  certificate and p12 on disk is one the store knows and every p12 opens with its password,
  every CRL is the CA's and lists at least every committed revocation, no secret and no folder
  is open to others;
- :func:`check_settled` after what the next change does first: staged files settled, every
  published file (certificates, CRLs, chain CRLs) exact and current;
- the same command again converges: it succeeds or says in one line that it is done, and the
  result is what an uncut run gives.

A bounded random soak kills commands at random moments on top, and races of 2 and 4 processes
(init, issue, revoke, renew, crl) check the same invariants; exactly one init wins.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from support.crash import Cutter, check_instant, check_settled

from kittylab import Workspace, load_key, load_p12, make_csr, save_csr
from kittylab.pki.keys import generate_key

pytestmark = pytest.mark.slow

PASSWORD = "kitty-pass"
#: The (command, point) pairs covered, printed at the end (the README's figure).
COVERED: dict[str, int] = {}
#: What each command's second run may say when the cut came after its commit: it is done.
DONE = ("already has a CA", "already has a current certificate", "already revoked", "already used", "already in")


@pytest.fixture(scope="module")
def scratch():
    """A fast folder for the many copies (tmpfs when there is one: fsync costs nothing there), removed after."""
    shm = Path("/dev/shm")
    fast = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="kittylab-crash-", dir=fast, ignore_cleanup_errors=True) as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def cutter(scratch):
    with Cutter(scratch) as cutter:
        yield cutter


@pytest.fixture(scope="module")
def templates(scratch):
    """``empty``; ``hierarchy``: kitty-root above kitty-issuing, which issued alice (key, p12) and
    bob (server); ``source``: an openssl ca directory (kitty-root's export, with its key)."""
    (scratch / "pw").write_text(PASSWORD + "\n")
    hierarchy = scratch / "hierarchy"
    with Workspace(hierarchy) as ws:
        ws.init_ca("/C=DE/O=Kitty Inc/CN=kitty-root", key="p256")
        ws.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-root")
        ws.issue("alice", profile="client", key="p256", p12=True, p12_password=PASSWORD)
        ws.issue("bob", profile="server", key="p256", dns=["localhost"])
        for n in range(4):
            ws.issue(f"target-{n}", profile="client", key="p256")
    save_csr(make_csr(generate_key("p256"), "/CN=carol"), scratch / "carol.csr")
    for n in range(4):
        (scratch / f"class-{n}.csv").write_text(f"name,email\nRacer {n} A,r{n}a@kitty.test\nRacer {n} B,r{n}b@kitty.test\n")
    source = scratch / "source"
    with Workspace(scratch / "flat") as ws:
        ws.init_ca("/O=Old Corp/CN=old-ca", key="p256")
        ws.issue("dave", profile="client", key="p256")
        ws.issue("erin", profile="client", key="p256")
        ws.revoke("erin")
    subprocess_run(["export-openssl-db", "--out", source], home=scratch / "flat")
    shutil.copy(scratch / "flat" / "old-ca.crt", source / "cacert.pem")
    (source / "private").mkdir()
    shutil.copy(scratch / "flat" / "old-ca.key", source / "private" / "cakey.pem")
    shutil.copy(scratch / "flat" / "dave.key", source / "private" / "dave.key")
    return {"hierarchy": hierarchy, "empty": None, "source": source}


def subprocess_run(argv, *, home):
    from kittylab.cli.main import main

    assert main(["--home", str(home), *map(str, argv)]) == 0


#: name -> (template, argv after --home, what a finished run leaves (checked on the workspace)).
def _issued_with_p12(name):
    def check(ws):
        record = ws.find(name)
        assert load_key(ws.path(name, "key")).public_key() == record.certificate.public_key()
        assert load_p12(ws.path(name, "p12"), password=PASSWORD).certificate == record.certificate
    return check


def _renewed(new_key):
    def check(ws):
        record = ws.find("alice")
        assert record.status() == "valid" and len([r for r in ws.records() if r.name == "alice"]) >= 2
        assert load_key(ws.path("alice", "key")).public_key() == record.certificate.public_key()
        if new_key:
            assert load_p12(ws.path("alice", "p12"), password=PASSWORD).certificate == record.certificate
    return check


COMMANDS = {
    "init": ("empty", ["init", "--key", "p256", "--cn", "kitty-ca"], lambda ws: ws.ca),
    "init intermediate": ("hierarchy", ["init", "--cn", "kitty-second", "--key", "p256", "--intermediate-of",
                                        "kitty-root"], lambda ws: ws.ca_for("kitty-second")),
    "issue client --p12": ("hierarchy", ["issue", "client", "carol", "--key", "p256", "--p12",
                                         "--p12-password-file", "{pw}"], _issued_with_p12("carol")),
    "issue server": ("hierarchy", ["issue", "server", "web", "--key", "p256", "--dns", "localhost"],
                     lambda ws: ws.find("web")),
    "sign": ("hierarchy", ["sign", "{csr}", "--profile", "client"], lambda ws: ws.find("carol")),
    "export-p12": ("hierarchy", ["export-p12", "alice", "--password-file", "{pw}"], _issued_with_p12("alice")),
    "revoke": ("hierarchy", ["revoke", "alice"], lambda ws: ws.find("alice").revoked_at),
    "revoke intermediate": ("hierarchy", ["revoke", "kitty-issuing"], lambda ws: ws.find("kitty-issuing").revoked_at),
    "crl": ("hierarchy", ["crl"], lambda ws: ws.current_crl()),
    "renew": ("hierarchy", ["renew", "alice"], _renewed(False)),
    "renew --new-key": ("hierarchy", ["renew", "alice", "--new-key", "--p12", "--p12-password-file", "{pw}"],
                        _renewed(True)),
    "import": ("empty", ["import", "{source}"], lambda ws: ws.find("dave")),
    "export-openssl-db": ("hierarchy", ["export-openssl-db", "--out", "{out}"],
                          lambda ws: (ws.home.parent / "out" / "index.txt").read_text()),
}


#: The next command, which must work after the cut and the re-run (below a revoked CA, its root's CRL).
NEXT = {"revoke intermediate": ["crl", "--ca", "kitty-root"]}


def one_error(err: str) -> str:
    """The one error line a failed command ends with (``sign`` shows its review above it); no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("kittylab: error")]
    assert "Traceback" not in err and len(errors) == 1 and err.strip().endswith(errors[0]), err
    return errors[0]


def _fresh(scratch: Path, templates: dict, template: str, case: str) -> Path:
    folder = scratch / case
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    home = folder / "ws"
    if templates[template] is not None:
        shutil.copytree(templates[template], home)
    return home


def _argv(home: Path, scratch: Path, templates: dict, argv: list[str]) -> list[str]:
    values = {"pw": scratch / "pw", "csr": scratch / "carol.csr", "source": templates["source"],
              "out": home.parent / "out", "scratch": scratch}
    return ["--home", str(home), *[a.format(**{k: str(v) for k, v in values.items()}) for a in argv]]


@pytest.mark.parametrize("command", COMMANDS)
def test_kill_at_every_write_point(command, cutter, scratch, templates):
    template, argv, finished = COMMANDS[command]
    case = command.replace(" ", "_")
    home = _fresh(scratch, templates, template, case)
    whole = cutter.run(_argv(home, scratch, templates, argv))
    assert whole.code == 0, whole.err
    points = whole.points
    assert points, "the command wrote nothing: nothing was tested"
    check_settled(home, password=PASSWORD)
    for k, label in enumerate(points, 1):
        home = _fresh(scratch, templates, template, case)
        cut = cutter.run(_argv(home, scratch, templates, argv), cut=k)
        where = f"{command}: killed before point {k}/{len(points)} ({label})"
        assert cut.killed, f"{where}: not killed ({cut.code}): {cut.err}"
        try:
            check_instant(home, password=PASSWORD)
            check_settled(home, password=PASSWORD)
            again = cutter.run(_argv(home, scratch, templates, argv))
            if again.code != 0:
                assert any(s in one_error(again.err) for s in DONE), again.err
            check_settled(home, password=PASSWORD)
            with Workspace(home) as ws:
                finished(ws)
            nxt = cutter.run(["--home", str(home), *NEXT.get(command, ["issue", "client", "next", "--key", "p256"])])
            assert nxt.code == 0, nxt.err
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None
    COVERED[command] = len(points)
    print(f"\n{command}: {len(points)} write points, each cut and re-run")


def test_report_the_points_covered():
    """Runs last in the module (without xdist): the total the README quotes."""
    if COVERED:
        print(f"\n{sum(COVERED.values())} (command, write point) pairs over {len(COVERED)} commands")


def test_a_random_kill_soak(cutter, scratch, templates, tmp_path):
    """Commands killed at random moments (a timer, not a write point), each followed by the checks.

    On a real disk (tmp_path), where each fsync takes time: the writes are a wider target.
    """
    rng = random.Random(os.environ.get("KITTYLAB_CRASH_SEED") or None)
    home = tmp_path / "soak"
    shutil.copytree(templates["hierarchy"], home)
    landed = 0
    rounds = 40
    round_ = 0
    # 40 kills at least; on a loaded machine (timings vary) more, until enough landed mid-write (120 at most)
    while round_ < rounds or (landed < rounds // 10 and round_ < 3 * rounds):
        argv = rng.choice([
            ["issue", "client", f"soaker-{round_}", "--key", "p256", "--p12", "--p12-password-file", "{pw}"],
            ["revoke", f"target-{round_ % 4}"], ["renew", "alice", "--new-key", "--p12", "--p12-password-file", "{pw}"],
            ["crl"], ["renew", "bob"], ["export-p12", "alice", "--password-file", "{pw}"],
            ["init", "--cn", f"soak-root-{round_}", "--key", "p256", "--another-root"],
        ])
        # How long the command takes here (on a copy), then a kill at a random moment of its second half,
        # where its writes are (key generation and signing come first).
        trial = tmp_path / "trial"
        shutil.rmtree(trial, ignore_errors=True)
        shutil.copytree(home, trial)
        started = time.monotonic()
        cutter.run(_argv(trial, scratch, templates, argv))
        duration = time.monotonic() - started
        outcome = cutter.run(_argv(home, scratch, templates, argv), kill_after=rng.uniform(0.5, 1.05) * duration)
        landed += outcome.killed and bool(outcome.points)  # killed after its first write
        check_instant(home, password=PASSWORD)
        check_settled(home, password=PASSWORD)
        round_ += 1
    print(f"\n{round_} random kills, {landed} of them in the middle of a command's writes")
    assert landed >= rounds // 10, "the timer never caught a command writing: nothing was tested"


# -- races ------------------------------------------------------------------------------------------

RACERS = {
    "init": lambda i: ["init", "--key", "p256", "--cn", "kitty-ca"],
    "issue": lambda i: ["issue", "client", f"racer-{i}", "--key", "p256", "--p12", "--p12-password-file", "{pw}"],
    "revoke": lambda i: ["revoke", f"target-{i}"],
    "renew": lambda i: ["renew", "alice"],
    "crl": lambda i: ["crl"],
    # Each racer its own class (distinct people, distinct workshop folders), one worker process; no p12
    # (its generated password lives in the workshop ledger, which the invariants here do not read).
    "roster issue": lambda i: ["roster", "issue", f"{{scratch}}/class-{i}.csv", "--workers", "1", "--no-p12",
                               "--url", "https://localhost:8443/"],
}
RACE_ERRORS = ("already has a CA", "no CA in", "no workspace at", "no certificate named", "was renewed meanwhile")


@pytest.mark.parametrize("size", [2, 4])
def test_races(size, cutter, scratch, templates):
    pairs = list(itertools.combinations_with_replacement(RACERS, 2))
    for first, second in pairs:
        case = f"race-{size}-{first}-{second}"
        template = "empty" if "init" in (first, second) else "hierarchy"
        home = _fresh(scratch, templates, template, case)
        kinds = [first if i % 2 == 0 else second for i in range(size)]
        outcomes = cutter.race([_argv(home, scratch, templates, RACERS[kind](i)) for i, kind in enumerate(kinds)])
        results = [(kind, o.out, o.err, o.code) for kind, o in zip(kinds, outcomes)]
        where = f"{size} racing {first}/{second}"
        for kind, out, err, code in results:
            if code != 0:  # one line; beside a racing init, whatever found no CA yet says so its way
                line = one_error(err)
                assert template == "empty" and kind != "init" or any(s in line for s in RACE_ERRORS), f"{where}: {err}"
        inits = [code for kind, _, _, code in results if kind == "init"]
        if inits:
            assert inits.count(0) == 1, f"{where}: {inits.count(0)} inits won"
        if template == "hierarchy":
            assert all(code == 0 for kind, _, _, code in results if kind in ("issue", "revoke", "crl", "roster issue")), where
            assert "renew" not in kinds or [code for kind, _, _, code in results if kind == "renew"].count(0) >= 1, where
        check_instant(home, password=PASSWORD)
        check_settled(home, password=PASSWORD)
        with Workspace(home) as ws:
            if inits:
                ws.ca  # the winner's key matches the winner's certificate (checked by loading it)
            for i, kind in enumerate(kinds):
                if kind == "revoke" and template == "hierarchy":
                    assert ws.find(f"target-{i}").revoked_at is not None
                if kind == "roster issue" and template == "hierarchy":
                    assert ws.find(f"racer-{i}-a").status() in ("valid", "expiring")
    print(f"\n{len(pairs)} pairs raced with {size} processes")


def test_fifteen_double_inits(cutter, scratch, templates):
    """Finding 1 lost the CA key in 8 of 15 tries: two inits at once, fifteen times, one wins each time."""
    for attempt in range(15):
        home = _fresh(scratch, templates, "empty", f"double-init-{attempt}")
        outcomes = cutter.race([["--home", str(home), "init", "--key", "p256", "--cn", "kitty-ca"]] * 2)
        assert sorted(o.code for o in outcomes) == [0, 1], [o.err for o in outcomes]
        loser = next(o for o in outcomes if o.code)
        assert "already has a CA" in one_error(loser.err)
        with Workspace(home) as ws:
            assert load_key(ws.path("kitty-ca", "key")).public_key() == ws.ca_record().certificate.public_key()
        check_settled(home, password=PASSWORD)
