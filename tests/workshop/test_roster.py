"""Workshop mode through the API: roster parsing, the batch, handouts, re-runs and the workshop's end."""

from __future__ import annotations

import sqlite3
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from support.pki import encrypted_ca

from kittylab import KittylabError, Workspace, load_crl, load_p12
from kittylab.pki.constraints import build_name_constraints
from kittylab.render.handout import check_url
from kittylab.workshop.ledger import LEDGER_FILE, SCHEMA_VERSION, Ledger
from kittylab.workshop.roster import (
    WORKSHOP_DAYS,
    export_roster_p12,
    file_name,
    issue_roster,
    read_roster,
    read_summary,
    revoke_roster,
)

CLASS = """name,email,ou
Ada Lovelace,ada@kitty.test,Math
Zoë O'Brien,zoe@kitty.test,
Bad Email,not-an-email,
Grace Hopper,grace@kitty.test,Navy

ada lovelace,ada2@kitty.test,
Alan Turing,alan@kitty.test,
<b>Evil</b>,evil@kitty.test,
"""
GOOD = ["ada-lovelace", "zoe-o-brien", "grace-hopper", "ada-lovelace-ada2", "alan-turing", "b-evil-b"]
URL = "https://pictures.kitty.test:8443/"


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def summary_rows(path) -> dict[str, dict]:
    return {row["certificate"]: row for row in read_summary(path)}


def handout(result, name):
    return result.out / "handouts" / name / f"{name}.html"


def issued_names(result) -> list[str]:
    return sorted(file for file, _ in result.issued)


# -- parsing -------------------------------------------------------------------------------------


def test_bad_rows_are_reported_with_their_line_numbers(tmp_path):
    roster = read_roster(write(tmp_path / "class.csv", CLASS))
    assert [p.name for p in roster.participants] == GOOD
    assert [line for line, _ in roster.errors] == [4]
    assert "bad email address 'not-an-email'" in roster.errors[0][1]
    ada = roster.participants[0]
    assert (ada.line, ada.full_name, ada.email, ada.ou) == (2, "Ada Lovelace", "ada@kitty.test", "Math")


def test_line_numbers_count_lines_of_quoted_multi_line_cells(tmp_path):
    text = 'name,email,ou\n"Ada\nLovelace",ada@kitty.test,\nGrace Hopper,,\n'
    roster = read_roster(write(tmp_path / "r.csv", text))
    # The first row spans lines 2-3; whitespace is tidied (the newline becomes a space); Grace is on line 4.
    assert [(p.line, p.full_name) for p in roster.participants] == [(2, "Ada Lovelace")]
    assert [line for line, _ in roster.errors] == [4]
    assert "no email address" in roster.errors[0][1]


@pytest.mark.parametrize(
    "text",
    ["Ada Lovelace,ada@kitty.test\n", "name,mail\nAda,ada@kitty.test\n", "", "email\nada@kitty.test\n"],
    ids=["no-header", "no-email-column", "empty-file", "no-name-column"],
)
def test_a_roster_without_its_header_is_refused_in_one_line(tmp_path, text):
    with pytest.raises(KittylabError, match="header row") as caught:
        read_roster(write(tmp_path / "r.csv", text))
    assert "\n" not in str(caught.value)


def test_spreadsheet_exports_with_bom_and_semicolons_are_read(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffName;Email;OU\nAda Lovelace;ada@kitty.test;Math\n".encode())
    roster = read_roster(path)
    assert roster.errors == [] and roster.participants[0].ou == "Math"


def test_every_script_becomes_a_readable_file_name_by_transliteration(tmp_path):
    assert file_name("Zoë O'Brien") == "zoe-o-brien"
    assert file_name("José   Núñez-García") == "jose-nunez-garcia"
    expected = {
        "李雷": "li-lei", "Дмитрий Иванов": "dmitriy-ivanov", "Γιώργος Παπαδόπουλος": "giorgos-papadopoylos",
        "佐藤 花子": "zuo-teng-hua-zi", "김민준": "gim-min-jun", "محمد علي": "mhmd-ly",
        "Søren Kierkegaard-Madsen": "soren-kierkegaard-madsen", "Łukasz Wróbel": "lukasz-wrobel",
        "Jürgen Weiß": "jurgen-weiss", "Mehmet Yılmaz": "mehmet-yilmaz", "Ingrid Ødegård": "ingrid-odegard",
        "Ólafur Þórsson": "olafur-thorsson", "Đặng Văn Lâm": "dang-van-lam", "Nguyễn Thị Thu": "nguyen-thi-thu",
    }
    assert {name: file_name(name) for name in expected} == expected
    roster = read_roster(write(tmp_path / "r.csv", "name,email\n李雷,li@kitty.test\n,x@kitty.test\n"))
    assert [p.name for p in roster.participants] == ["li-lei"]
    assert roster.participants[0].full_name == "李雷"
    assert [line for line, _ in roster.errors] == [3] and "name is empty" in roster.errors[0][1]


def test_a_name_with_nothing_readable_gets_a_stable_id_and_an_id_column_decides(tmp_path):
    roster = read_roster(write(tmp_path / "r.csv", "name,email,id\n😀,smile@kitty.test,\nAda,ada@kitty.test,ada-l\n"))
    assert roster.participants[0].name == "grinning"  # anyascii spells the emoji out
    # ARABIC LETTER ALEF: a letter that anyascii spells as nothing (invisible fillers are refused now)
    roster = read_roster(write(tmp_path / "r.csv", "name,email\n\u0627,blank@kitty.test\n"))
    stable = read_roster(tmp_path / "r.csv").participants
    assert [p.name for p in roster.participants] == [p.name for p in stable] and stable[0].name.startswith("person-")
    chosen = read_roster(write(tmp_path / "r.csv", "name,email,id\nAda,ada@kitty.test,ada-l\nBob,bob@kitty.test,../x\n"))
    assert [p.name for p in chosen.participants] == ["ada-l"] and "cannot name files" in chosen.errors[0][1]


def test_namesakes_get_distinct_file_names_and_a_repeated_row_is_a_duplicate(tmp_path):
    text = ("name,email\nMaria García,maria@kitty.test\nMaria  García ,mgarcia@kitty.test\n"
            "Maria García,MARIA@kitty.test\nOther,mgarcia@kitty.test\n")
    roster = read_roster(write(tmp_path / "r.csv", text))
    assert [(p.name, p.full_name) for p in roster.participants] == [
        ("maria-garcia", "Maria García"), ("maria-garcia-mgarcia", "Maria García")]
    assert [line for line, _ in roster.errors] == [4, 5]
    assert "a duplicate of line 2" in roster.errors[0][1] and "also on line 3" in roster.errors[1][1]


def test_field_limits_and_devices_are_one_line_errors(tmp_path):
    huge = write(tmp_path / "huge.csv", "name,email\n" + "A" * 131_073 + ",a@kitty.test\n")
    with pytest.raises(KittylabError, match="line 2: a cell is longer than 131,072 characters"):
        read_roster(huge)
    header = write(tmp_path / "header.csv", "name,email," + "B" * 131_073 + "\nAda,ada@kitty.test,x\n")
    with pytest.raises(KittylabError, match="line 1: a cell is longer than 131,072 characters"):
        read_roster(header)
    with pytest.raises(KittylabError, match="not a regular file"):
        read_roster("/dev/zero")
    cp1252 = tmp_path / "cp.csv"
    cp1252.write_bytes("name,email\nJosé,jose@kitty.test\n".encode("cp1252"))
    with pytest.raises(KittylabError, match="line 2 is not UTF-8 text: save the roster as CSV UTF-8"):
        read_roster(cp1252)


# -- the batch -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    """A CA and the class roster issued once with two worker processes (the real pool)."""
    home = tmp_path_factory.mktemp("workshop")
    workspace = Workspace(home / "ws")
    workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
    roster = write(home / "class.csv", CLASS)
    result = issue_roster(workspace, roster, url=URL, title="Mutual TLS 101", workers=2, progress=False)
    yield workspace, roster, result
    workspace.close()


def test_every_good_row_gets_a_certificate_and_bad_rows_are_skipped(workshop):
    workspace, _, result = workshop
    assert issued_names(result) == sorted(GOOD)
    assert [line for line, _ in result.errors] == [4]
    assert result.already == 0
    grace = workspace.find("grace-hopper").certificate
    subject = {a.oid: a.value for a in grace.subject}
    assert subject[NameOID.COMMON_NAME] == "Grace Hopper"
    assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == "Navy"
    assert subject[NameOID.ORGANIZATION_NAME] == "Kitty Inc" and subject[NameOID.COUNTRY_NAME] == "DE"
    sans = grace.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.RFC822Name) == ["grace@kitty.test"]
    usage = grace.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert workspace.verify(grace, purpose="client").ok


def test_secrets_are_readable_by_their_owner_only(workshop):
    workspace, _, result = workshop
    assert mode(result.summary_csv) == 0o600
    assert mode(result.out) == 0o700
    for name in GOOD:
        assert mode(workspace.path(name, "key")) == 0o600
        assert mode(workspace.path(name, "p12")) == 0o600
        folder = result.out / "handouts" / name
        assert mode(folder / f"{name}.html") == 0o600 and mode(folder / f"{name}.p12") == 0o600
        assert (folder / "kitty-ca.crt").read_bytes() == workspace.ca_certificate_path.read_bytes()


def test_summary_lists_everyone_with_a_password_that_opens_their_p12(workshop):
    workspace, _, result = workshop
    rows = summary_rows(result.summary_csv)
    assert sorted(rows) == sorted(GOOD)
    for name, row in rows.items():
        record = workspace.find(name)
        assert row["serial"] == record.serial_hex and row["status"] == "issued"
        assert row["issued"] == f"{record.not_before:%Y-%m-%d}" and row["p12"] == "modern"
        handed_out = result.out / "handouts" / name / f"{name}.p12"
        contents = load_p12(handed_out, password=row["p12_password"])
        assert contents.certificate == record.certificate
        assert contents.chain == [workspace.ca.certificate]
    passwords = [row["p12_password"] for row in rows.values()]
    assert len(set(passwords)) == len(passwords)


def test_handout_has_the_details_password_import_steps_and_url(workshop):
    workspace, _, result = workshop
    row = summary_rows(result.summary_csv)["grace-hopper"]
    page = handout(result, "grace-hopper").read_text()
    record = workspace.find("grace-hopper")
    octets = record.fingerprint.split(":")
    for expected in (row["p12_password"], "Grace Hopper", "grace@kitty.test", record.serial_hex,
                     ":".join(octets[:8]), ":".join(octets[24:]), "grace-hopper.p12", "kitty-ca.crt",
                     f'href="{URL}"', "Mutual TLS 101", workspace.ca_record().fingerprint.split(":")[0]):
        assert expected in page
    for system in ("Firefox", "Chrome", "macOS", "Windows"):
        assert f"<h3>{system}" in page
    assert "BEGIN" not in page  # no PEM, and never a private key


def test_handout_escapes_what_the_roster_says(workshop):
    _, _, result = workshop
    page = handout(result, "b-evil-b").read_text()
    assert "&lt;b&gt;Evil&lt;/b&gt;" in page and "<b>Evil</b>" not in page


def test_running_the_roster_again_issues_nothing_and_keeps_the_passwords(workshop):
    workspace, roster, result = workshop
    before = summary_rows(result.summary_csv)
    count = len(workspace.records())
    again = issue_roster(workspace, roster, url=URL, workers=2, progress=False)
    assert again.issued == [] and again.already == len(GOOD)
    assert len(workspace.records()) == count
    after = summary_rows(again.summary_csv)
    assert {n: r["p12_password"] for n, r in after.items()} == {n: r["p12_password"] for n, r in before.items()}
    assert {r["status"] for r in after.values()} == {"issued"}
    assert {r["issued"] for r in after.values()} == {r["issued"] for r in before.values()}


# -- on its own workspace: conflicts, options, the end of the workshop ---------------------------


def test_the_records_of_a_newer_kittylab_are_refused_in_one_line_and_left_alone(workspace, tmp_path):
    roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n")
    out = tmp_path / "class"
    issue_roster(workspace, roster, workers=1, progress=False, out=out)
    db = sqlite3.connect(out / LEDGER_FILE)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = (out / LEDGER_FILE).read_bytes()
    with pytest.raises(KittylabError, match=f"schema version {SCHEMA_VERSION + 1}, newer than this kittylab") as refused:
        issue_roster(workspace, roster, workers=1, progress=False, out=out)
    assert "\n" not in str(refused.value) and (out / LEDGER_FILE).read_bytes() == before
    with pytest.raises(KittylabError, match="newer than this kittylab"):
        Ledger(out)  # nor read


def test_reading_a_workshops_records_never_writes_them(workspace, tmp_path):
    """Its names (the dashboard's filter), what the run issued, a look for a name: the file is untouched."""
    roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n")
    result = issue_roster(workspace, roster, workers=1, progress=False)
    ledger = result.out / LEDGER_FILE
    before = (ledger.read_bytes(), ledger.stat().st_mtime_ns)
    assert result.names == ["ada-lovelace"] and result.includes(workspace.find("ada-lovelace"))
    assert result.issued == [("ada-lovelace", "Ada Lovelace")]
    assert export_roster_p12(workspace, who=["Nobody"]).errors[0][1].startswith("nobody named 'Nobody' in ")
    assert (ledger.read_bytes(), ledger.stat().st_mtime_ns) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    with Ledger(empty) as nothing:  # a folder with no records yet reads as empty, and stays empty
        assert list(nothing.rows()) == [] and list(empty.iterdir()) == []
    with pytest.raises(KittylabError, match="no such folder") as missing:
        Ledger(tmp_path / "typo")
    assert "\n" not in str(missing.value) and not (tmp_path / "typo").exists()


def test_a_name_held_by_another_certificate_gives_the_participant_another_file_name(workspace, tmp_path):
    workspace.issue("ada-lovelace", profile="client", key="p256")  # CN=ada-lovelace, not "Ada Lovelace"
    workspace.issue("alan", profile="client", key="p256")
    roster = write(tmp_path / "r.csv", "name,email,id\nAda Lovelace,ada@kitty.test,\nAlan Turing,alan@kitty.test,alan\n")
    result = issue_roster(workspace, roster, workers=1, progress=False)
    assert result.issued == [("ada-lovelace-ada", "Ada Lovelace")]
    assert result.errors[0][0] == 3 and "the id 'alan' is taken by another certificate" in result.errors[0][1]


def test_legacy_p12_rsa_keys_and_no_p12(workspace, tmp_path):
    roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n")
    result = issue_roster(workspace, roster, key="rsa2048", legacy_p12=True, workers=1, progress=False)
    password = summary_rows(result.summary_csv)["ada-lovelace"]["p12_password"]
    contents = load_p12(workspace.path("ada-lovelace", "p12"), password=password)
    assert contents.key.key_size == 2048
    assert "legacy p12" in handout(result, "ada-lovelace").read_text()

    other = write(tmp_path / "other.csv", "name,email\nAlan Turing,alan@kitty.test\n")
    plain = issue_roster(workspace, other, p12=False, workers=1, progress=False)
    folder = plain.out / "handouts" / "alan-turing"
    assert sorted(p.name for p in folder.iterdir()) == ["alan-turing.crt", "alan-turing.html", "alan-turing.key", "kitty-ca.crt"]
    assert summary_rows(plain.summary_csv)["alan-turing"]["p12_password"] == ""
    assert not workspace.path("alan-turing", "p12").exists()


def test_ending_the_workshop_revokes_all_and_the_crl_lists_exactly_them(workspace, tmp_path, require):
    openssl = require("openssl")
    bystander = workspace.issue("eager-client", profile="client", key="p256")
    roster = write(tmp_path / "class.csv", CLASS)
    issued = issue_roster(workspace, roster, workers=2, progress=False)
    serials = {workspace.find(name).serial for name, _ in issued.issued}

    ended = revoke_roster(workspace, roster)
    assert {r.serial for r in ended.revoked} == serials
    assert {r.status() for r in ended.revoked} == {"revoked"} and {r.reason for r in ended.revoked} == {"cessation-of-operation"}
    assert [line for line, _ in ended.errors] == [4]
    crl = load_crl(workspace.crl_path)
    assert {entry.serial_number for entry in crl} == serials
    assert workspace.find("eager-client").status() == "valid"
    text = subprocess.run([openssl, "crl", "-in", str(workspace.crl_path), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    listed = {line.split(":", 1)[1].strip() for line in text.splitlines() if "Serial Number:" in line}
    assert listed == {workspace.find(name).serial_hex for name, _ in issued.issued}
    assert bystander.record.serial_hex not in listed

    assert {row["status"] for row in summary_rows(issued.summary_csv).values()} == {"revoked"}
    assert mode(issued.summary_csv) == 0o600
    again = revoke_roster(workspace, roster)
    assert again.revoked == [] and len(again.not_current) == len(GOOD)
    published = workspace.crl_path.read_bytes()
    assert {entry.serial_number for entry in load_crl(workspace.crl_path)} == serials
    assert "nothing changed: no CRL published" in str(again) and workspace.crl_path.read_bytes() == published


def test_unknown_key_type_is_refused_before_any_work(workspace, tmp_path):
    roster = write(tmp_path / "r.csv", "name,email\nAda,ada@kitty.test\n")
    with pytest.raises(KittylabError, match="unknown key type"):
        issue_roster(workspace, roster, key="dsa1024", progress=False)
    assert [r.name for r in workspace.records()] == ["kitty-ca"]


def test_notebook_views_hide_the_password_and_keep_to_the_workshop(workshop):
    workspace, roster_path, result = workshop
    password = summary_rows(result.summary_csv)["grace-hopper"]["p12_password"]
    preview = result.preview("grace-hopper")
    html = preview._repr_html_()
    assert html.startswith('<iframe class="kl-handout-preview"') and "Grace Hopper" in html
    assert password not in html and "hidden in this preview" in html
    assert password in handout(result, "grace-hopper").read_text()  # the file itself keeps it
    assert repr(preview).startswith("Handout for Grace Hopper, password hidden")
    with pytest.raises(KittylabError, match="no handout for 'nobody'"):
        result.preview("nobody")
    assert sorted(r.name for r in workspace.records() if result.includes(r)) == sorted(GOOD)
    roster = read_roster(roster_path)
    assert repr(roster) == "Roster class.csv: 6 participants, 1 bad row"
    assert "bad email address" in roster._repr_html_() and "<td>zoe-o-brien</td>" in roster._repr_html_()


def test_a_new_workshop_after_the_end_replaces_the_handed_out_files(workspace, tmp_path):
    roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n")
    first = issue_roster(workspace, roster, workers=1, progress=False)
    before = workspace.find("ada-lovelace").serial
    revoke_roster(workspace, roster)
    kept = issue_roster(workspace, roster, workers=1, progress=False)
    assert kept.issued == [] and kept.kept_revoked == ["Ada Lovelace"]
    second = issue_roster(workspace, roster, workers=1, progress=False, reissue=["ADA@kitty.test"])
    assert second.issued == [("ada-lovelace", "Ada Lovelace")] and first.issued == second.issued
    handed_out = second.out / "handouts" / "ada-lovelace" / "ada-lovelace.p12"
    assert handed_out.read_bytes() == workspace.path("ada-lovelace", "p12").read_bytes()
    password = summary_rows(second.summary_csv)["ada-lovelace"]["p12_password"]
    assert load_p12(handed_out, password=password).certificate == workspace.find("ada-lovelace").certificate
    assert workspace.find("ada-lovelace").serial != before
    assert not list(handed_out.parent.glob(".*"))  # no temporary left behind


def test_workers_sign_with_an_encrypted_ca_key(tmp_path):
    """The passphrase stays in the parent: the workers get the CA key already unlocked, through a pipe."""
    key = encrypted_ca(tmp_path / "ws", "ca-secret")
    with Workspace(tmp_path / "ws", ca_passphrase="ca-secret") as workspace:
        roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\nAlan Turing,alan@kitty.test\n")
        result = issue_roster(workspace, roster, workers=2, progress=False)
        assert issued_names(result) == ["ada-lovelace", "alan-turing"]
        assert all(workspace.verify(workspace.find(name).certificate, purpose="client").ok for name, _ in result.issued)
    assert b"ENCRYPTED" in key.read_bytes()


def test_the_mac_users_get_legacy_p12_files_after_the_first_run(workspace, tmp_path, require):
    """issue 15: a roster of the Mac users after the class was issued; export-p12 switches them to legacy
    p12 files with new passwords and updates their handouts and the class's summary."""
    from kittylab.workshop.roster import export_roster_p12

    roster = write(tmp_path / "class.csv", CLASS)
    issue_roster(workspace, roster, url=URL, workers=1, progress=False)
    mac = write(tmp_path / "mac.csv", "name,email\nGrace Hopper,GRACE@kitty.test\nAlan Turing,alan@kitty.test\n")
    again = issue_roster(workspace, mac, legacy_p12=True, url=URL, workers=1, progress=False, out=tmp_path / "mac")
    assert again.issued == [] and [name for name, _ in again.elsewhere] == ["Grace Hopper", "Alan Turing"]
    assert "another workshop" in again.warnings["elsewhere"]
    assert summary_rows(again.summary_csv) == {}  # no rows with empty passwords or missing handouts
    before = summary_rows(workspace.home / "roster-class" / "summary.csv")
    done = export_roster_p12(workspace, mac)
    assert done.exported == ["Grace Hopper", "Alan Turing"] and done.errors == []
    after = summary_rows(workspace.home / "roster-class" / "summary.csv")
    for name in ("grace-hopper", "alan-turing"):
        assert after[name]["p12"] == "legacy" and after[name]["p12_password"] != before[name]["p12_password"]
        p12 = workspace.home / "roster-class" / "handouts" / name / f"{name}.p12"
        assert load_p12(p12, password=after[name]["p12_password"]).certificate == workspace.find(name).certificate
        info = subprocess.run([require("openssl"), "pkcs12", "-info", "-noout", "-in", str(p12), "-passin",
                               f"pass:{after[name]['p12_password']}"], capture_output=True, text=True)
        assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stderr + info.stdout and "MAC: sha1" in info.stderr + info.stdout
        page = (p12.parent / f"{name}.html").read_text()
        assert after[name]["p12_password"] in page and "It is a legacy p12" in page
    assert after["ada-lovelace"] == before["ada-lovelace"]


# -- a class's second day: the roster saved again, settings, the summary, the CA's reach -------------


def test_a_copy_of_the_roster_under_a_new_name_continues_its_workshop(workspace, tmp_path):
    """`class (2).csv` or `class3.csv` with late arrivals: the same workshop, its settings, nobody re-exported."""
    first = issue_roster(workspace, write(tmp_path / "class.csv", "name,email\nAda Lovelace,ada@kitty.test\n"
                                          "Grace Hopper,grace@kitty.test\nAlan Turing,alan@kitty.test\n"),
                         url=URL, title="Mutual TLS 101", days=3, workers=1, progress=False)
    revoke_roster(workspace, who=["Alan Turing"])
    before = summary_rows(first.summary_csv)
    copy = write(tmp_path / "class3.csv", "name,email\nAda Lovelace,ADA@kitty.test\nGrace Hopper,grace@kitty.test\n"
                                          "Alan Turing,alan@kitty.test\nLate Arrival,late@kitty.test\n")
    again = issue_roster(workspace, copy, workers=1, progress=False)
    assert again.out == again.continued == first.out and not (workspace.home / "roster-class3").exists()
    assert again.issued == [("late-arrival", "Late Arrival")] and again.completed == []
    assert again.kept_revoked == ["Alan Turing"] and again.already == 2
    assert again.reused == {"url": URL, "title": "Mutual TLS 101", "days": "3"}
    assert "url" not in again.warnings and f"continuing the workshop in {first.out}" in str(again)
    rows = summary_rows(first.summary_csv)
    assert {n: rows[n]["p12_password"] for n in before} == {n: r["p12_password"] for n, r in before.items()}
    assert rows["alan-turing"]["status"] == "revoked" and rows["late-arrival"]["status"] == "issued"
    page = handout(again, "late-arrival").read_text()
    assert f'href="{URL}"' in page and "Mutual TLS 101" in page
    late = workspace.find("late-arrival")
    assert (late.not_after - late.not_before).days == 3
    assert revoke_roster(workspace, who=["Grace Hopper"]).summaries == [first.summary_csv]  # one workshop, one summary
    assert summary_rows(first.summary_csv)["grace-hopper"]["status"] == "revoked"

    # A separate folder on purpose: the people of the first are named with the folder that holds them.
    apart = issue_roster(workspace, write(tmp_path / "class (2).csv", "name,email\nAda Lovelace,ada@kitty.test\n"),
                         out=tmp_path / "apart", workers=1, progress=False)
    assert apart.issued == [] and apart.elsewhere == [("Ada Lovelace", first.out)]
    assert f"already issued in the workshop folder {first.out}, not issued again" in str(apart)
    assert summary_rows(apart.summary_csv) == {}


@pytest.mark.parametrize("url", ["teacher.lan", "http://teacher.lan:8443/", "https://", "https://:8443/",
                                 "https://teacher.lan:99999/", "ftp://teacher.lan/"])
def test_the_workshop_address_must_be_an_https_url_with_a_host(workspace, tmp_path, url):
    with pytest.raises(KittylabError, match="is not an https:// URL with a host"):
        issue_roster(workspace, write(tmp_path / "r.csv", "name,email\nAda,ada@kitty.test\n"), url=url, progress=False)
    assert not (workspace.home / "roster-r").exists()
    assert check_url(" https://teacher.lan:8443/ ") == "https://teacher.lan:8443/"


def test_a_host_the_server_certificate_does_not_name_is_a_warning(workspace, tmp_path):
    workspace.issue("picture-server", profile="server", key="p256", dns=["localhost", "*.kitty.test"])
    roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n")
    named = issue_roster(workspace, roster, url="https://pictures.kitty.test:8443/", workers=1, progress=False)
    assert "host" not in named.warnings
    other = issue_roster(workspace, roster, url="https://teacher.lan:8443/", progress=False)
    assert "names teacher.lan" in other.warnings["host"] and "picture-server" in other.warnings["host"]


def test_a_handout_without_an_address_says_it_is_a_placeholder(workspace, tmp_path):
    result = issue_roster(workspace, write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n"),
                          workers=1, progress=False)
    assert "url" in result.warnings
    page = handout(result, "ada-lovelace").read_text()
    assert 'class="url kl-url-placeholder"' in page and "is only a" in page and 'href="https://localhost' not in page
    late = issue_roster(workspace, write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n"
                                         "Late Arrival,late@kitty.test\n"), workers=1, progress=False)
    assert late.reused == {"title": "Workshop r", "days": str(WORKSHOP_DAYS)}  # no address to remember
    assert "url" in late.warnings and "kl-url-placeholder" in handout(late, "late-arrival").read_text()


def test_the_summary_gives_each_revocation_its_date_and_reason(workspace, tmp_path):
    roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\nAlan Turing,alan@kitty.test\n")
    result = issue_roster(workspace, roster, url=URL, workers=1, progress=False)
    revoke_roster(workspace, who=["alan@kitty.test"], reason="key-compromise")
    rows = summary_rows(result.summary_csv)
    today = workspace.find("alan-turing").revoked_at.strftime("%Y-%m-%d")
    assert (rows["alan-turing"]["revoked"], rows["alan-turing"]["revocation_reason"]) == (today, "key-compromise")
    assert (rows["ada-lovelace"]["revoked"], rows["ada-lovelace"]["revocation_reason"]) == ("", "")
    header = result.summary_csv.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert header == ["certificate", "name", "email", "ou", "status", "issued", "serial", "expires", "p12",
                      "p12_password", "handout", "revoked", "revocation_reason"]


def test_a_workshop_certificate_lives_a_week_and_an_unconstrained_ca_is_said(workspace, tmp_path):
    roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n")
    result = issue_roster(workspace, roster, url=URL, workers=1, progress=False)
    record = workspace.find("ada-lovelace")
    assert WORKSHOP_DAYS == 7 and (record.not_after - record.not_before).days == 7
    assert "no name constraints" in result.warnings["constraints"]
    assert "No name constraints limit the websites this CA can vouch for" in handout(result, "ada-lovelace").read_text()


def test_a_name_constrained_workshop_ca_is_harmless_to_trust_and_says_so(tmp_path):
    with Workspace(tmp_path / "ws") as workspace:
        workspace.init_ca("/CN=workshop-ca", key="p256", name_constraints=build_name_constraints(permit_dns=["kitty.test"]))
        result = issue_roster(workspace, write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n"),
                              url=URL, workers=1, progress=False)
        assert result.issued == [("ada-lovelace", "Ada Lovelace")] and "constraints" not in result.warnings
        page = handout(result, "ada-lovelace").read_text()
        assert "browsers accept it only for kitty.test" in page and "no name constraints" not in page


def test_a_workshop_ca_with_ip_addresses_left_open_is_not_called_harmless(tmp_path):
    with Workspace(tmp_path / "ws") as workspace:
        workspace.init_ca("/CN=workshop-ca", key="p256",
                          name_constraints=build_name_constraints(permit_dns=["kitty.test"], exclude_ip=()))
        result = issue_roster(workspace, write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n"),
                              url=URL, workers=1, progress=False)
        assert "leave DNS names or IP addresses open" in result.warnings["constraints"]
        page = handout(result, "ada-lovelace").read_text()
        assert "browsers accept it only for" not in page and "No name constraints limit the websites" in page


def test_a_workshop_folder_outside_the_workspace_is_found_again(workspace, tmp_path):
    """`--out DIR` on the first day: the roster saved again (no --out) continues DIR, nobody gets a new password."""
    first = issue_roster(workspace, write(tmp_path / "class.csv", "name,email\nAda Lovelace,ada@kitty.test\n"),
                         out=tmp_path / "handouts-here", url=URL, workers=1, progress=False)
    password = summary_rows(first.summary_csv)["ada-lovelace"]["p12_password"]
    again = issue_roster(workspace, write(tmp_path / "class3.csv", "name,email\nAda Lovelace,ada@kitty.test\n"
                                                                   "Late Arrival,late@kitty.test\n"),
                         workers=1, progress=False)
    assert (workspace.home / "workshops.txt").read_text() == f"{(tmp_path / 'handouts-here').resolve()}\n"
    assert again.continued == tmp_path / "handouts-here" and again.completed == []
    assert again.issued == [("late-arrival", "Late Arrival")] and again.reused["url"] == URL
    assert summary_rows(first.summary_csv)["ada-lovelace"]["p12_password"] == password
    assert revoke_roster(workspace, who=["Late Arrival"]).summaries == [first.summary_csv]


def test_days_beyond_the_ca_are_refused_before_anything_is_written(workspace, tmp_path):
    roster = write(tmp_path / "r.csv", "name,email\nAda Lovelace,ada@kitty.test\n")
    with pytest.raises(KittylabError):
        issue_roster(workspace, roster, url=URL, days=100000, progress=False)
    assert not (workspace.home / "roster-r").exists()
