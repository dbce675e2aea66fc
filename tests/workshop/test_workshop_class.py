"""The proof for a real class: 42 people in ten scripts, namesakes, a duplicate, an uppercase email, a
spreadsheet's BOM and ';' - everyone gets a certificate, a handout and a p12 that NSS, keytool and
OpenSSL open, and sees the gallery greeted by their name from kittylab's server, nginx and Apache at
once; the revoked are refused; a re-run with late arrivals issues exactly them; Excel reads the summary.

The tests run in file order on one module-wide workshop (the run costs a few seconds, the servers more).
"""

from __future__ import annotations

import csv
import html
import io
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from support.system import free_port, require_binary

from kittylab import Workspace
from kittylab.cli.main import main
from kittylab.net.client import Refused, fetch
from kittylab.net.server import PictureServer
from kittylab.net.webconfig import write_site
from kittylab.ui.sites import RunningSite
from kittylab.workshop.roster import read_roster, read_summary

pytestmark = [pytest.mark.slow, pytest.mark.nginx, pytest.mark.apache]

#: (name, email) as a teacher's spreadsheet has them. Scripts: Latin with diacritics, Turkish
#: (dotless ı), Vietnamese, Cyrillic, Greek, Chinese, Japanese, Hangul, Arabic, Hebrew, Devanagari, Thai.
CLASS = [
    ("José Álvarez", "jose.alvarez@kitty.test"), ("Zoë O'Brien", "zoe@kitty.test"),
    ("Søren Kierkegaard-Madsen", "soren@kitty.test"), ("Łukasz Wróbel", "lukasz@kitty.test"),
    ("Jürgen Weiß", "juergen@kitty.test"), ("Ingrid Ødegård", "ingrid@kitty.test"),
    ("Ólafur Þórsson", "olafur@kitty.test"), ("François Lefèvre", "francois@kitty.test"),
    ("Kai Müller", "kai@kitty.test"), ("Émilie Dubois", "emilie@kitty.test"),
    ("Mehmet Yılmaz", "mehmet@kitty.test"), ("Ayşe Kaya", "ayse@kitty.test"), ("İsmail Çelik", "ismail@kitty.test"),
    ("Nguyễn Thị Thu", "thu@kitty.test"), ("Đặng Văn Lâm", "lam@kitty.test"), ("Trần Quốc Bảo", "bao@kitty.test"),
    ("Дмитрий Иванов", "dmitriy@kitty.test"), ("Ольга Смирнова", "olga@kitty.test"),
    ("Алексей Петров", "alexey@kitty.test"), ("Γιώργος Παπαδόπουλος", "giorgos@kitty.test"),
    ("Ελένη Γεωργίου", "eleni@kitty.test"), ("李雷", "lilei@kitty.test"), ("韩梅梅", "meimei@kitty.test"),
    ("佐藤 花子", "hanako@kitty.test"), ("鈴木 一郎", "ichiro@kitty.test"), ("王芳", "wangfang@kitty.test"),
    ("김민준", "minjun@kitty.test"), ("이서연", "seoyeon@kitty.test"), ("박지훈", "jihoon@kitty.test"),
    ("محمد علي", "mohammed@kitty.test"), ("فاطمة الزهراء", "fatima@kitty.test"), ("דוד כהן", "david@kitty.test"),
    ("प्रिया शर्मा", "priya@kitty.test"), ("สมชาย ใจดี", "somchai@kitty.test"), ("Emily Chen", "emily@kitty.test"),
    ("Grace Hopper", "GRACE.Hopper@Kitty.TEST"), ("Alan Turing", "alan@kitty.test"),
    ("Maria García", "maria@kitty.test"), ("Maria García", "mgarcia@kitty.test"),  # namesakes
    ("李雷", "li.lei2@kitty.test"),  # namesakes in Chinese
    ("=HYPERLINK(\"http://evil.test\";\"click\")", "formula@kitty.test"), ("@SUM(1+1)", "at@kitty.test"),
]
DUPLICATE = ("José Álvarez", "JOSE.ALVAREZ@KITTY.TEST")  # the same person again, email in capitals
LATE = [("田中 さくら", "sakura@kitty.test"), ("Νίκος Κωνσταντίνου", "nikos@kitty.test"), ("Chidi Okeke", "chidi@kitty.test")]
URL = "https://127.0.0.1:8443/"


def roster_text(people, *, delimiter=",") -> str:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Name", "Email", "OU"])
    for name, email in people:
        writer.writerow([name, email, "Research, Development"])
    return text.getvalue()


class Workshop:
    """What the tests share: the workspace, its folder, the summary's rows by email."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ws_path = home / "ws"
        self.out = self.ws_path / "roster-class"

    def rows(self) -> dict[str, dict]:
        return {row["email"].casefold(): row for row in read_summary(self.out / "summary.csv")}

    def kittylab(self, *args: str) -> int:
        return main(["--home", str(self.ws_path), *args])


@pytest.fixture(scope="module")
def workshop(tmp_path_factory) -> Workshop:
    home = tmp_path_factory.mktemp("workshop")
    workshop = Workshop(home)
    assert workshop.kittylab("init", "--key", "p256", "--o", "Kitty Inc", "--c", "DE") == 0
    with Workspace(workshop.ws_path) as workspace:
        workspace.issue("picture-server", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"])
    # Saved by a spreadsheet: UTF-8 with a byte-order mark, the duplicate row in the middle.
    people = CLASS[:20] + [DUPLICATE] + CLASS[20:]
    (home / "class.csv").write_bytes(("\ufeff" + roster_text(people)).encode("utf-8"))
    (home / "class-semicolon.csv").write_bytes(("\ufeff" + roster_text(people, delimiter=";")).encode("utf-8"))
    return workshop


def test_everyone_gets_a_certificate_named_as_written_and_a_readable_file_name(workshop, capsys):
    assert workshop.kittylab("roster", "issue", str(workshop.home / "class.csv"), "--url", URL, "--workers", "2") == 0
    out, err = capsys.readouterr()
    assert f"issued {len(CLASS)} client certificates, 0 already issued" in out
    assert "line 22: a duplicate of line 2 (José Álvarez, JOSE.ALVAREZ@KITTY.TEST): listed once" in err
    rows = workshop.rows()
    assert sorted(rows) == sorted(email.casefold() for _, email in CLASS)
    with Workspace(workshop.ws_path) as workspace:
        for name, email in CLASS:
            row = rows[email.casefold()]
            certificate = workspace.find(row["certificate"]).certificate
            assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", row["certificate"]), row["certificate"]
            assert f"  issued: {name} ({row['certificate']})" in out
            assert (workshop.out / "handouts" / row["certificate"] / f"{row['certificate']}.html").exists()
    names = {rows[email.casefold()]["certificate"] for _, email in CLASS}
    assert len(names) == len(CLASS)  # namesakes apart
    assert {rows["maria@kitty.test"]["certificate"], rows["mgarcia@kitty.test"]["certificate"]} == {
        "maria-garcia", "maria-garcia-mgarcia"}
    assert {rows["lilei@kitty.test"]["certificate"], rows["li.lei2@kitty.test"]["certificate"]} == {
        "li-lei", "li-lei-li-lei2"}
    assert rows["ayse@kitty.test"]["certificate"] == "ayse-kaya"
    assert rows["mehmet@kitty.test"]["certificate"] == "mehmet-yilmaz"
    assert rows["olafur@kitty.test"]["certificate"] == "olafur-thorsson"


def test_the_semicolon_export_of_the_same_class_reads_the_same(workshop):
    comma, semicolon = read_roster(workshop.home / "class.csv"), read_roster(workshop.home / "class-semicolon.csv")
    assert semicolon.delimiter == ";" and comma.delimiter == ","
    assert semicolon.participants == comma.participants and semicolon.errors == comma.errors
    assert comma.participants[0].ou == "Research, Development"


def _tool_checks(workshop: Workshop, row: dict, nss: Path, tools: dict, name: str) -> str | None:
    """Open one participant's p12 with NSS pk12util, keytool and OpenSSL; a problem as text, else None."""
    p12 = workshop.out / "handouts" / row["certificate"] / f"{row['certificate']}.p12"
    password = row["p12_password"]
    runs = {
        "pk12util": [tools["pk12util"], "-i", str(p12), "-W", password, "-d", f"sql:{nss}"],
        "keytool": [tools["keytool"], "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-list", "-storetype", "PKCS12", "-keystore", str(p12), "-storepass", password],
        "openssl": [tools["openssl"], "pkcs12", "-in", str(p12), "-passin", f"pass:{password}", "-nokeys", "-clcerts"],
    }
    for tool, command in runs.items():
        result = subprocess.run(command, capture_output=True, timeout=120)
        if result.returncode != 0:
            return f"{tool} refused {p12.name}: {result.stderr.decode(errors='replace')[-300:]}"
        if tool == "keytool" and b"PrivateKeyEntry" not in result.stdout:
            return f"keytool found no private key in {p12.name}"
        if tool == "openssl":
            certificate = x509.load_pem_x509_certificate(result.stdout[result.stdout.index(b"-----BEGIN"):])
            if certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value != name:
                return f"openssl read another CN from {p12.name}"
    return None


def test_every_p12_opens_in_nss_keytool_and_openssl(workshop, tmp_path):
    tools = {name: require_binary(name) for name in ("pk12util", "certutil", "keytool", "openssl")}
    nss = tmp_path / "nssdb"
    nss.mkdir()
    subprocess.run([tools["certutil"], "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    rows = workshop.rows()
    # keytool's JVM start is the slow part: in parallel (NSS takes one import at a time: its database locks).
    with ThreadPoolExecutor(max_workers=6) as pool:
        problems = [p for p in pool.map(lambda person: _tool_checks(workshop, rows[person[1].casefold()], nss, tools,
                                                                    person[0]), CLASS) if p]
    assert problems == []
    listed = subprocess.run([tools["certutil"], "-L", "-d", f"sql:{nss}"], capture_output=True, text=True, check=True)
    assert sum(1 for line in listed.stdout.splitlines() if line.rstrip().endswith("u,u,u")) == len(CLASS)


@pytest.fixture(scope="module")
def servers(workshop):
    """kittylab's picture-server, nginx and Apache on the workshop's workspace, all running."""
    for binary in ("nginx", "apache2"):
        require_binary(binary)
    with ExitStack() as stack:
        workspace = stack.enter_context(Workspace(workshop.ws_path))
        running = {"kittylab": stack.enter_context(PictureServer(workspace, handshake_timeout=5))}
        for kind in ("nginx", "apache"):
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"kittylab-class-{kind}-"))
            Path(folder).chmod(0o755)  # Apache's workers read the web root as www-data
            running[kind] = stack.enter_context(RunningSite(write_site(kind, workspace, folder, port=free_port())))
        yield running


def _greeting(server, workshop: Workshop, row: dict) -> str:
    """Whom the server's gallery greets when this participant's p12 knocks."""
    p12 = workshop.out / "handouts" / row["certificate"] / f"{row['certificate']}.p12"
    ca = workshop.ws_path / "kitty-ca.crt"
    page = fetch(server.url, ca=ca, p12=p12, password=row["p12_password"], images=False, timeout=30).text
    return html.unescape(re.search(r'<span class="kl-cn">(.*?)</span>', page).group(1))


def test_everyone_sees_the_gallery_greeted_by_name_from_three_servers_at_once(workshop, servers):
    rows = workshop.rows()
    jobs = [(kind, name, rows[email.casefold()]) for name, email in CLASS for kind in servers]
    with ThreadPoolExecutor(max_workers=12) as pool:
        greeted = list(pool.map(lambda job: _greeting(servers[job[0]], workshop, job[2]), jobs))
    wrong = [(kind, name, got) for (kind, name, _), got in zip(jobs, greeted) if got != name]
    assert wrong == []
    assert len(jobs) == 3 * len(CLASS)


def test_revoked_people_are_refused_by_all_three_and_nothing_else_changes(workshop, servers, capsys):
    # Kai typed without the umlaut, Olga by her email in capitals; a lost laptop is a key compromise.
    assert workshop.kittylab("roster", "revoke", "--who", "Kai Muller", "--who", "OLGA@kitty.test",
                             "--reason", "key-compromise") == 0
    out, _ = capsys.readouterr()
    assert "revoked 2 certificates (reason key-compromise): Kai Müller, Ольга Смирнова" in out
    assert "summary updated" in out
    for kind in ("nginx", "apache"):
        servers[kind].reload()
    rows = workshop.rows()
    for email in ("kai@kitty.test", "olga@kitty.test"):
        assert rows[email]["status"] == "revoked"
        for server in servers.values():
            with pytest.raises(Refused):
                _greeting(server, workshop, rows[email])
    assert {row["status"] for email, row in rows.items() if email not in ("kai@kitty.test", "olga@kitty.test")} == {
        "issued"}
    for server in servers.values():
        assert _greeting(server, workshop, rows["ayse@kitty.test"]) == "Ayşe Kaya"
    crl_before = (workshop.ws_path / "kitty-ca.crl").read_bytes()
    assert workshop.kittylab("roster", "revoke", "--who", "kai@kitty.test") == 0  # already revoked
    assert "nothing changed: no CRL published" in capsys.readouterr().out
    assert (workshop.ws_path / "kitty-ca.crl").read_bytes() == crl_before


def test_a_rerun_with_late_arrivals_issues_exactly_them(workshop, capsys):
    with Workspace(workshop.ws_path) as workspace:
        before = {record.serial for record in workspace.records(include_ca=False)}
    passwords = {email: row["p12_password"] for email, row in workshop.rows().items()}
    roster = workshop.home / "class.csv"
    roster.write_bytes(roster.read_bytes() + roster_text(LATE).split("\r\n", 1)[1].encode("utf-8"))
    assert workshop.kittylab("roster", "issue", str(roster), "--url", URL, "--workers", "2") == 0
    out, _ = capsys.readouterr()
    assert f"issued {len(LATE)} client certificates, {len(CLASS) - 2} already issued" in out
    assert [line for line in out.splitlines() if line.startswith("  issued: ")] == [
        f"  issued: {name} ({file})" for (name, _), file in zip(LATE, ["tian-zhong-sakura", "nikos-konstantinoy",
                                                                        "chidi-okeke"])]
    assert "kept revoked 2" in out and "Kai Müller" in out
    with Workspace(workshop.ws_path) as workspace:
        after = {record.serial for record in workspace.records(include_ca=False)}
    assert len(after - before) == len(LATE)
    rows = workshop.rows()
    assert {email: rows[email]["p12_password"] for email in passwords} == passwords  # nobody else touched
    assert rows["kai@kitty.test"]["status"] == "revoked"


def test_excel_reads_the_summary_right(workshop):
    """Excel opens a CSV as UTF-8 only with a byte-order mark (else the ANSI code page, 1252 in the
    West), splits on the roster's separator, and runs a cell starting with = + - @ as a formula."""
    data = (workshop.out / "summary.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # without it Excel shows "JosÃ© Ã\x81lvarez"
    text = data[3:].decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=","))  # the roster's delimiter
    header, body = rows[0], rows[1:]
    assert header[:5] == ["certificate", "name", "email", "ou", "status"] and "issued" in header
    names = {row[header.index("name")] for row in body}
    assert "José Álvarez" in names and "李雷" in names and "Ольга Смирнова" in names
    formula = [row for row in body if "formula@kitty.test" in row][0]
    assert formula[header.index("name")] == "'=HYPERLINK(\"http://evil.test\";\"click\")"
    at = [row for row in body if "at@kitty.test" in row][0]
    assert at[header.index("name")] == "'@SUM(1+1)"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in body for cell in row)
    assert {row[header.index("status")] for row in body} == {"issued", "revoked"}
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", row[header.index("issued")]) for row in body)
