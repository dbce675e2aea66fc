"""``roster issue`` killed (kill -9) at each point of its work, a worker killed, the parent killed:
each participant ends complete, or is completed by the re-run; workers never outlive the parent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.crash import Cutter

from kittylab import Workspace, load_p12
from kittylab.workshop.roster import read_summary

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = [
    ("Ayşe Kaya", "ayse@kitty.test"), ("李雷", "lilei@kitty.test"), ("Дмитрий Иванов", "dmitriy@kitty.test"),
    ("Maria García", "maria@kitty.test"), ("Maria García", "mgarcia@kitty.test"), ("김민준", "minjun@kitty.test"),
    ("Đặng Văn Lâm", "lam@kitty.test"), ("محمد علي", "ali@kitty.test"), ("Mehmet Yılmaz", "mehmet@kitty.test"),
    ("Γιώργος Παπαδόπουλος", "giorgos@kitty.test"), ("Emily Chen", "emily@kitty.test"), ("Kai Müller", "kai@kitty.test"),
]
URL = "https://workshop.kitty.test:8443/"
#: (point, n-th time it is reached): before signing, around the store's commit, around the ledger and the handouts.
CUTS = [("claimed", 5), ("before-commit", 3), ("after-commit", 1), ("ledger-issued", 4), ("handout", 3),
        ("handed-out", 1), ("summary", 1)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A workspace with a CA and the roster, copied for every cut (P-256: fast)."""
    folder = tmp_path_factory.mktemp("template")
    with Workspace(folder / "ws") as workspace:
        workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
    (folder / "class.csv").write_text("name,email\n" + "".join(f"{n},{e}\n" for n, e in PEOPLE), encoding="utf-8")
    return folder


def environment(**extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]), **extra)
    env.pop("KITTYLAB_HOME", None)
    return env


def roster(home: Path, *args: str, point: str | None = None, nth: int = 1, env: dict | None = None):
    command = [sys.executable, "-m", "support.roster_faults", point, str(nth), "--"] if point else [
        sys.executable, "-m", "kittylab"]
    return subprocess.run([*command, "--home", str(home / "ws"), "roster", *args], capture_output=True, text=True,
                          timeout=300, env=env or environment(), cwd=home)


def issue(home: Path, **kwargs):
    return roster(home, "issue", str(home / "class.csv"), "--url", URL, "--workers", "2", **kwargs)


def gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def assert_everyone_complete(home: Path, people=PEOPLE) -> None:
    """One current certificate per person; a p12 in their folder that opens with the summary's password and
    holds it; a handout naming both; secrets 0600."""
    out = home / "ws" / "roster-class"
    rows = {row["email"]: row for row in read_summary(out / "summary.csv")}
    assert sorted(rows) == sorted(email for _, email in people)
    with Workspace(home / "ws") as workspace:
        records = [r for r in workspace.records(include_ca=False)]
        assert len(records) == len(people), [r.name for r in records]  # nobody issued twice
        for row in rows.values():
            record = workspace.find(row["certificate"])
            assert row["status"] == "issued" and row["serial"] == record.serial_hex
            assert record.status() in ("valid", "expiring")  # a workshop's week is near its end from day one
            folder = out / "handouts" / row["certificate"]
            contents = load_p12(folder / f"{row['certificate']}.p12", password=row["p12_password"])
            assert contents.certificate == record.certificate
            page = (folder / f"{row['certificate']}.html").read_text(encoding="utf-8")
            assert row["p12_password"] in page and record.serial_hex in page
            assert os.stat(folder / f"{row['certificate']}.html").st_mode & 0o077 == 0
    for secret in (out / "summary.csv", out / "participants.sqlite3"):
        assert secret.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("point, nth", CUTS, ids=[point for point, _ in CUTS])
def test_a_run_killed_at_any_point_is_completed_by_the_next_and_its_workers_die_with_it(template, tmp_path, point, nth):
    home = tmp_path / "class"
    shutil.copytree(template, home)
    children = tmp_path / "children"
    killed = issue(home, point=point, nth=nth, env=environment(ROSTER_FAULT_CHILDREN=str(children)))
    assert killed.returncode == -9, killed.stderr
    workers = [int(pid) for pid in children.read_text().split()]
    assert workers and gone(workers), f"workers {workers} outlived their parent"

    again = issue(home)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert_everyone_complete(home)
    issued = again.stdout.count("  issued: ")
    assert f"issued {issued} client certificates, {len(PEOPLE) - issued} already issued" in again.stdout

    third = issue(home)  # and then nothing is left to do
    assert third.returncode == 0 and f"issued 0 client certificates, {len(PEOPLE)} already issued" in third.stdout
    assert "completed" not in third.stdout


def test_a_killed_worker_stops_the_batch_in_one_line_and_the_rerun_finishes(template, tmp_path):
    home = tmp_path / "class"
    shutil.copytree(template, home)
    counter = tmp_path / "pieces"
    broken = issue(home, point="worker", nth=1, env=environment(ROSTER_FAULT_COUNTER=str(counter)))
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines() == [
        "kittylab: error: a worker process died (killed, or out of memory): the batch stopped; what was issued"
        " until then is kept, run it again to finish"]
    again = issue(home)
    assert again.returncode == 0, again.stderr
    assert_everyone_complete(home)


def test_a_p12_whose_password_was_lost_is_exported_again_with_a_new_one(template, tmp_path):
    """The worst cut: the certificate and its p12 are on disk, but the ledger never learnt the password."""
    home = tmp_path / "class"
    shutil.copytree(template, home)
    assert issue(home).returncode == 0
    out = home / "ws" / "roster-class"
    before = {row["certificate"]: row["p12_password"] for row in read_summary(out / "summary.csv")}
    (out / "participants.sqlite3").unlink()  # every recorded password lost
    for suffix in ("-wal", "-shm"):
        (out / f"participants.sqlite3{suffix}").unlink(missing_ok=True)
    again = issue(home)
    assert again.returncode == 0, again.stderr
    assert f"completed after an interrupted run {len(PEOPLE)}" in again.stdout
    assert_everyone_complete(home)
    after = {row["certificate"]: row["p12_password"] for row in read_summary(out / "summary.csv")}
    assert after.keys() == before.keys() and all(after[name] != before[name] for name in after)


def test_cut_at_every_write_point_of_a_small_roster_then_the_rerun_completes_it(template, tmp_path):
    """The write protocol's crash harness (support.crash): every fsync, rename, link and store commit of
    ``roster issue`` (in one process), cut in turn; after each cut the re-run leaves everyone complete."""
    people = PEOPLE[:2] + PEOPLE[3:5]  # Ayşe, 李雷 and the two Marías
    small = tmp_path / "small"
    shutil.copytree(template, small)
    (small / "class.csv").write_text("name,email\n" + "".join(f"{n},{e}\n" for n, e in people), encoding="utf-8")
    argv = ["--home", "ws", "roster", "issue", "class.csv", "--url", URL, "--workers", "1"]
    cutter = Cutter(tmp_path)
    try:
        shutil.copytree(small, tmp_path / "listing")
        listing = cutter.run(argv, cwd=tmp_path / "listing")
        assert listing.code == 0, listing.err
        points = listing.points
        assert len(points) > 4 * len(people), points  # every participant's files, the store, the summary
        for cut in range(1, len(points) + 1):
            home = tmp_path / f"cut-{cut}"
            shutil.copytree(small, home)
            killed = cutter.run(argv, cut=cut, cwd=home)
            assert killed.killed, (cut, points[cut - 1], killed.err)
            again = cutter.run(argv, cwd=home)
            assert again.code == 0 and "Traceback" not in again.err, (cut, points[cut - 1], again.err)
            assert_everyone_complete(home, people)
            shutil.rmtree(home)
    finally:
        cutter.close()
    print(f"roster issue: {len(points)} write points cut, each completed by the re-run")


def test_roster_revoke_cut_at_every_write_point_then_the_rerun_finishes_it(template, tmp_path, require):
    """``roster revoke`` (one transaction with its CRL, then the summary) cut at each write point: the CRL
    never misses a committed revocation, and running it again leaves all revoked, listed and summarised."""
    openssl = require("openssl")
    people = PEOPLE[:3]
    issued = tmp_path / "issued"
    shutil.copytree(template, issued)
    (issued / "class.csv").write_text("name,email\n" + "".join(f"{n},{e}\n" for n, e in people), encoding="utf-8")
    assert issue(issued).returncode == 0
    argv = ["--home", "ws", "roster", "revoke", "class.csv"]
    cutter = Cutter(tmp_path)
    try:
        shutil.copytree(issued, tmp_path / "listing")
        points = cutter.run(argv, cwd=tmp_path / "listing").points
        assert points
        for cut in range(1, len(points) + 1):
            home = tmp_path / f"cut-{cut}"
            shutil.copytree(issued, home)
            assert cutter.run(argv, cut=cut, cwd=home).killed
            with Workspace(home / "ws") as workspace:
                committed = {r.serial for r in workspace.records(include_ca=False) if r.revoked_at is not None}
            crl = home / "ws" / "kitty-ca.crl"
            listed = subprocess.run([openssl, "crl", "-in", str(crl), "-noout", "-text"], capture_output=True,
                                    text=True, check=True).stdout
            assert all(f"{serial:X}".rjust(2, "0") in listed.upper() for serial in committed), (cut, points[cut - 1])
            again = cutter.run(argv, cwd=home)
            assert again.code == 0 and "Traceback" not in again.err, (cut, points[cut - 1], again.err)
            rows = read_summary(home / "ws" / "roster-class" / "summary.csv")
            assert {row["status"] for row in rows} == {"revoked"}, (cut, points[cut - 1])
            with Workspace(home / "ws") as workspace:
                assert all(r.revoked_at is not None for r in workspace.records(include_ca=False))
            shutil.rmtree(home)
    finally:
        cutter.close()
    print(f"roster revoke: {len(points)} write points cut, each finished by the re-run")


@pytest.mark.parametrize("runs", [2, 4])
def test_roster_runs_at_once_issue_everyone_once(template, tmp_path, runs):
    """Two or four ``roster issue`` of one class at once (a double click, two terminals): they take
    turns per workshop; everyone is issued once, with the password their summary and handout give."""
    home = tmp_path / "class"
    shutil.copytree(template, home)
    argv = ["--home", "ws", "roster", "issue", "class.csv", "--url", URL, "--workers", "1"]
    cutter = Cutter(tmp_path)
    try:
        outcomes = cutter.race([argv] * runs, cwd=home)
    finally:
        cutter.close()
    assert [outcome.code for outcome in outcomes] == [0] * runs, [outcome.err for outcome in outcomes]
    issued = [int(outcome.out.split("issued ", 1)[1].split()[0]) for outcome in outcomes]
    assert sorted(issued) == [0] * (runs - 1) + [len(PEOPLE)]
    assert_everyone_complete(home)
