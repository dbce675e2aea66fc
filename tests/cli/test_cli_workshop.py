"""``kittylab roster issue|revoke`` on the command line, including its progress bar on a terminal."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from kittylab import load_crl
from kittylab.cli.main import main
from kittylab.workshop.roster import read_summary

ROSTER = """name,email,ou
Ada Lovelace,ada@kitty.test,Math
Grace Hopper,grace@kitty.test,
Bad Email,not-an-email,
Alan Turing,alan@kitty.test,
Katherine Johnson,katherine@kitty.test,NASA
Dorothy Vaughan,dorothy@kitty.test,NASA
"""
NAMES = ["ada-lovelace", "grace-hopper", "alan-turing", "katherine-johnson", "dorothy-vaughan"]


@pytest.fixture
def roster(tmp_path):
    path = tmp_path / "class.csv"
    path.write_text(ROSTER, encoding="utf-8")
    return path


def test_issue_reports_bad_rows_on_their_line_and_issues_the_rest(home, roster, capsys):
    code = main(["--home", str(home), "roster", "issue", str(roster), "--url", "https://localhost:9443/"])
    out, err = capsys.readouterr()
    assert code == 1  # a row needs fixing
    assert "issued 5 client certificates, 0 already issued" in out
    assert err.strip().splitlines() == [
        f"kittylab: error: {roster} line 4: bad email address 'not-an-email': expected name@domain (row skipped)",
        "kittylab: warning: the issuing CA kitty-ca has no name constraints: a participant who trusts it trusts it for"
        " every website; for a workshop, make a CA limited to the workshop's host (kittylab --home NEW init --cn"
        " workshop-ca --permit-dns HOST; or in this workspace add --another-root)",
    ]
    folder = home / "roster-class" / "handouts"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)
    rows = read_summary(home / "roster-class" / "summary.csv")
    assert [r["certificate"] for r in rows] == NAMES
    page = (folder / "ada-lovelace" / "ada-lovelace.html").read_text()
    assert rows[0]["p12_password"] in page and "https://localhost:9443/" in page

    again = main(["--home", str(home), "roster", "issue", str(roster)])
    out, _ = capsys.readouterr()
    assert again == 1 and "issued 0 client certificates, 5 already issued (skipped)" in out


def test_revoke_ends_the_workshop_with_one_crl(home, roster, capsys, require):
    openssl = require("openssl")
    good = roster.with_name("good.csv")
    good.write_text("".join(line for line in ROSTER.splitlines(keepends=True) if "Bad" not in line))
    out_dir = roster.parent / "handouts-here"
    assert main(["--home", str(home), "roster", "issue", str(good), "--out", str(out_dir), "--workers", "1"]) == 0
    assert (out_dir / "summary.csv").exists()
    number_before = load_crl(home / "kitty-ca.crl").extensions[0].value.crl_number
    capsys.readouterr()

    assert main(["--home", str(home), "roster", "revoke", str(good), "--out", str(out_dir)]) == 0
    out, err = capsys.readouterr()
    assert "revoked 5 certificates (reason cessation-of-operation)" in out and err == ""
    assert {row["status"] for row in read_summary(out_dir / "summary.csv")} == {"revoked"}
    crl = load_crl(home / "kitty-ca.crl")
    assert crl.extensions[0].value.crl_number == number_before + 1  # one CRL for the whole class
    assert len(list(crl)) == 5
    for name in NAMES:
        check = subprocess.run(
            [openssl, "verify", "-CAfile", str(home / "kitty-ca.crt"), "-crl_check", "-CRLfile",
             str(home / "kitty-ca.crl"), str(home / f"{name}.crt")],
            capture_output=True, text=True,
        )
        assert check.returncode != 0 and "certificate revoked" in check.stdout + check.stderr


def test_a_roster_without_header_is_one_line_error(home, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("Ada Lovelace,ada@kitty.test\n")
    assert main(["--home", str(home), "roster", "issue", str(bad)]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("kittylab: error: ") and err.count("\n") == 1 and "name,email" in err
    assert not (home / "roster-bad").exists()
    assert main(["--home", str(home), "roster", "issue", str(tmp_path / "missing.csv")]) == 1
    assert "roster file not found" in capsys.readouterr().err


def test_progress_bar_with_eta_on_a_terminal(home, roster, require):
    script = require("script")
    command = shlex.join([sys.executable, "-m", "kittylab", "--home", str(home), "roster", "issue", str(roster)])
    run = subprocess.run([script, "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout  # the bad row
    frames = run.stdout.replace("\r", "\n").splitlines()  # text mode may have turned \r into \n already
    assert any(frame.startswith("issuing certificates:") and "0/6" in frame and "?" in frame for frame in frames)
    assert any("6/6" in frame and "100%" in frame and "<00:00" in frame for frame in frames)  # elapsed<left


def test_no_progress_bar_when_output_is_not_a_terminal(home, roster):
    run = subprocess.run([sys.executable, "-m", "kittylab", "--home", str(home), "roster", "issue", str(roster)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "\r" not in run.stderr and "ETA" not in run.stderr
    assert "issued 5 client certificates" in run.stdout


def test_revoke_says_plainly_what_it_did_not_do(home, roster, capsys):
    """An unknown name: the error on stderr and nothing on stdout; the already revoked: their date and reason."""
    assert main(["--home", str(home), "roster", "issue", str(roster), "--url", "https://localhost:9443/",
                 "--workers", "1"]) == 1
    capsys.readouterr()
    assert main(["--home", str(home), "roster", "revoke", "--who", "Nobody Here"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "nobody named 'Nobody Here'" in err and "nothing changed: no CRL published" in err
    assert "revoked 0" not in out + err and "cessation-of-operation" not in out + err
    assert main(["--home", str(home), "roster", "revoke", "--who", "Ada Lovelace", "--reason", "key-compromise"]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "roster", "revoke", "--who", "ada@kitty.test"]) == 0
    out, err = capsys.readouterr()
    assert "Ada Lovelace (already revoked on " in out and ", reason key-compromise)" in out
    assert "nothing changed: no CRL published" in out and "(reason " not in out and err == ""


def test_export_p12_names_the_revoked_and_reports_the_others_done(home, roster, capsys):
    assert main(["--home", str(home), "roster", "issue", str(roster), "--url", "https://localhost:9443/",
                 "--workers", "1"]) == 1
    assert main(["--home", str(home), "roster", "revoke", "--who", "Alan Turing"]) == 0
    capsys.readouterr()
    code = main(["--home", str(home), "roster", "export-p12", "--who", "Alan Turing", "--who", "Grace Hopper"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "handouts rewritten 1: Grace Hopper" in out and "not exported 1 (why: below); the others are done" in out
    assert "kittylab: error: Alan Turing <alan@kitty.test> is not exported: revoked on " in err and "--reissue EMAIL" in err
    assert "has no current certificate" not in err


def test_issue_help_states_the_workshop_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["roster", "issue", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default 7 days" in text and "https://" in text


def test_a_url_without_https_or_host_is_one_line(home, roster, capsys):
    assert main(["--home", str(home), "roster", "issue", str(roster), "--url", "teacher.lan"]) == 1
    out, err = capsys.readouterr()
    assert err.strip().count("\n") == 0 and "is not an https:// URL with a host" in err
    assert not (home / "roster-class").exists()
