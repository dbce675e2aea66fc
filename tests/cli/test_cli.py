"""The command line, exactly as issue 2 spells it: commands, flags, files, output and errors."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from support.cli import run_cli, run_cli_process, snapshot

from kittylab import generate_key, load_certificate, load_p12, make_csr, save_csr
from kittylab.pki.keys import key_to_pem


def issue_client(home, name="eager-client", *extra):
    result = run_cli("issue", "client", name, "--key", "p256", *extra, home=home)
    assert result.code == 0, result.err
    return result


def test_init_options(tmp_path):
    home = tmp_path / "ws"
    result = run_cli("init", "--cn", "my-ca", "--key", "p256", "--days", "100", "--o", "Kitty Inc", "--ou", "Lab",
                     "--c", "DE", "--st", "Berlin", "--l", "Berlin", "--email", "ca@kitty.test", home=home)
    assert result.code == 0, result.err
    cert = load_certificate(home / "my-ca.crt")
    assert cert.subject.rfc4514_string() == "1.2.840.113549.1.9.1=ca@kitty.test,CN=my-ca,OU=Lab,O=Kitty Inc,L=Berlin,ST=Berlin,C=DE"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 100
    assert stat.S_IMODE((home / "my-ca.key").stat().st_mode) == 0o600
    assert (home / "my-ca.crl").exists()
    assert "openssl req -x509" in result.err


def test_init_defaults_to_rsa4096_and_7300_days(tmp_path):
    result = run_cli("init", home=tmp_path / "ws")
    assert result.code == 0, result.err
    cert = load_certificate(tmp_path / "ws" / "kitty-ca.crt")
    assert cert.public_key().key_size == 4096
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 7300


def test_issue_server_with_several_names(home):
    result = run_cli("issue", "server", "picture-server", "--dns", "localhost", "pictures.kitty.test", "--ip",
                     "127.0.0.1", "--key", "p256", "--days", "90", "--ou", "Pictures", home=home)
    assert result.code == 0, result.err
    cert = load_certificate(home / "picture-server.crt")
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["localhost", "pictures.kitty.test", "127.0.0.1"]
    assert cert.subject.rfc4514_string() == "CN=picture-server,OU=Pictures,O=Kitty Inc,C=DE"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90
    for suffix in ("key", "csr", "crt"):
        assert (home / f"picture-server.{suffix}").exists()
    assert "openssl genpkey" in result.err and "openssl req -in picture-server.csr -CA kitty-ca.crt" in result.err


def test_every_subject_option_where_a_certificate_is_made(home):
    for profile, extra in (("server", ["--dns", "localhost"]), ("client", [])):
        result = run_cli("issue", profile, f"{profile}-x", "--key", "p256", *extra, "--o", "Kitty Inc", "--ou", "Lab",
                         "--c", "FR", "--st", "IDF", "--l", "Paris", "--email", f"{profile}@kitty.test", home=home)
        assert result.code == 0, result.err
        cert = load_certificate(home / f"{profile}-x.crt")
        assert "OU=Lab,O=Kitty Inc,L=Paris,ST=IDF,C=FR" in cert.subject.rfc4514_string()
        names = [str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value]
        # A server's email goes in its subject and (RFC 5280, 4.1.2.6) in its SAN too; a client's is its SAN.
        assert (f"{profile}@kitty.test" in cert.subject.rfc4514_string()) == (profile == "server")
        assert f"{profile}@kitty.test" in names


def test_issue_client_default_key_is_rsa2048(home):
    assert run_cli("issue", "client", "eager-client", "--email", "eager@kitty.test", home=home).code == 0
    cert = load_certificate(home / "eager-client.crt")
    assert cert.public_key().key_size == 2048
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [n.value for n in names] == ["eager@kitty.test"]


def test_generated_p12_password_is_printed_once(home):
    result = issue_client(home, "eager-client", "--p12")
    lines = [line for line in result.out.splitlines() if "p12 password" in line]
    assert len(lines) == 1
    password = lines[0].rsplit(": ", 1)[1]
    assert result.out.count(password) == 1 and password not in result.err
    assert load_p12(home / "eager-client.p12", password=password)
    assert password not in run_cli("show", "eager-client", home=home).out
    assert password not in run_cli("list", "--json", home=home).out


def test_password_files_first_line(home, tmp_path):
    password_file = tmp_path / "pass.txt"
    password_file.write_text("kitty pass\nsecond line ignored\n")
    result = issue_client(home, "eager-client", "--p12", "--p12-password-file", password_file, "--legacy-p12")
    assert "p12 password" not in result.out and "kitty pass" not in result.out
    assert load_p12(home / "eager-client.p12", password="kitty pass")
    assert b"\x06\x0a\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01\x03" in (home / "eager-client.p12").read_bytes()  # 3DES
    password_file.write_text("other\r\n")
    result = run_cli("export-p12", "eager-client", "--password-file", password_file, home=home)
    assert result.code == 0 and load_p12(home / "eager-client.p12", password="other")
    result = run_cli("export-p12", "eager-client", "--legacy", home=home)
    assert result.out.count("p12 password") == 1
    assert stat.S_IMODE((home / "eager-client.p12").stat().st_mode) == 0o600


def test_sign_a_csr(home, tmp_path):
    key = generate_key("p256")
    save_csr(make_csr(key, "picture-server"), tmp_path / "ps.csr")
    out = tmp_path / "out.crt"
    result = run_cli("sign", tmp_path / "ps.csr", "--profile", "server", "--dns", "localhost", "--days", "30",
                     "--out", out, home=home)
    assert result.code == 0, result.err
    assert load_certificate(out) == load_certificate(home / "picture-server.crt")
    assert load_certificate(out).public_key() == key.public_key()


def test_revoke_crl_list_show_verify(home):
    issue_client(home, "eager-client")
    serial = json.loads(run_cli("show", "eager-client", "--json", home=home).out)["serial"]
    ok = run_cli("verify", home / "eager-client.crt", "--purpose", "client", home=home)
    assert ok.code == 0 and "verified: OK" in ok.out
    wrong = run_cli("verify", home / "eager-client.crt", "--purpose", "server", home=home)
    assert wrong.code == 1 and "FAIL purpose server" in wrong.out
    assert run_cli("revoke", serial, "--reason", "key-compromise", home=home).code == 0
    revoked = run_cli("verify", home / "eager-client.crt", home=home)
    assert revoked.code == 1 and "FAIL revocation" in revoked.out
    listing = json.loads(run_cli("list", "--json", home=home).out)
    [entry] = [c for c in listing["certificates"] if c["name"] == "eager-client"]
    assert entry["status"] == "revoked" and entry["reason"] == "key-compromise" and entry["serial"] == serial
    assert listing["crl_next_update"] and listing["crl_warning"] is None
    shown = json.loads(run_cli("show", "eager-client", "--json", home=home).out)
    for key in ("subject", "issuer", "serial", "not_before", "not_after", "subject_alternative_names",
                "key_usage", "extended_key_usage", "status", "fingerprint_sha256", "fingerprint_sha1"):
        assert key in shown
    text = run_cli("show", "eager-client", home=home).out
    assert "Status:" in text and "revoked" in text and "SHA-256 fingerprint" in text
    table = run_cli("list", home=home).out
    assert "eager-client" in table and "revoked" in table and "CRL: 1 revoked" in table
    crl = run_cli("crl", "--days", "10", home=home)
    assert crl.code == 0 and "1 revoked" in crl.out


def test_show_of_a_file_says_what_the_workspace_knows_of_it(home, tmp_path):
    """``show FILE`` of a certificate the workspace issued says its record's status (revoked); elsewhere (no
    workspace, or another one) only what its dates say, and that revocation was not checked."""
    issue_client(home, "leaver")
    assert run_cli("revoke", "leaver", home=home).code == 0
    copy = tmp_path / "sent-to-me.crt"
    copy.write_bytes((home / "leaver.crt").read_bytes())
    assert json.loads(run_cli("show", copy, "--json", home=home).out)["status"] == "revoked"
    for elsewhere in (tmp_path / "no-workspace", tmp_path / "other"):
        if elsewhere.name == "other":
            assert run_cli("init", "--key", "p256", home=elsewhere).code == 0
        shown = run_cli("show", copy, "--json", home=elsewhere)
        assert shown.code == 0 and json.loads(shown.out)["status"] == "in date, unchecked"
    assert not (tmp_path / "no-workspace").exists()


def test_crl_expiry_warning_in_list_and_crl(home):
    crl = run_cli("crl", "--days", "2", home=home)
    assert crl.code == 0 and "warning: the CRL expires" in crl.err
    listing = run_cli("list", home=home)
    assert listing.code == 0 and "warning: the CRL expires" in listing.err
    assert "expires" in json.loads(run_cli("list", "--json", home=home).out)["crl_warning"]
    assert "warning" in run_cli("crl", home=home).err  # the 2 days are remembered
    assert run_cli("crl", "--days", "30", home=home).err.count("warning") == 0
    assert "warning" not in run_cli("list", home=home).err


@pytest.mark.parametrize(
    "argv",
    [
        ["issue", "client", "x", "--key", "rsa1024"],
        ["issue", "client", "x", "--days", "-5"],
        ["issue", "client", "../escape", "--key", "p256"],
        ["issue", "client", "eager-client", "--key", "p256"],  # a duplicate
        ["issue", "server", "s", "--key", "p256"],  # no name
        ["issue", "client", "x", "--key", "p256", "--c", "Germany"],
        ["revoke", "ghost"],
        ["show", "ghost"],
        ["revoke", "eager-client", "--reason", "lost"],
        ["export-p12", "ghost"],
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(home, argv):
    issue_client(home, "eager-client")
    before = snapshot(home)
    run_cli(*argv, home=home).assert_one_line_error()
    assert snapshot(home) == before


def test_a_file_that_is_not_a_csr_and_a_tampered_csr(home, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    der = bytearray(make_csr(generate_key("p256"), "victim").public_bytes(Encoding.DER))
    der[der.index(b"victim")] = ord("V")
    (tmp_path / "tampered.csr").write_bytes(bytes(der))
    before = snapshot(home)
    assert "not a certificate signing request" in run_cli(
        "sign", tmp_path / "notes.txt", "--profile", "client", home=home).assert_one_line_error()
    assert "tampered" in run_cli("sign", tmp_path / "tampered.csr", "--profile", "client",
                                 home=home).assert_one_line_error()
    assert "not found" in run_cli("sign", tmp_path / "missing.csr", "--profile", "client",
                                  home=home).assert_one_line_error()
    (tmp_path / "key.pem").write_bytes(key_to_pem(generate_key("p256")))
    assert "not a certificate" in run_cli("verify", tmp_path / "key.pem", home=home).assert_one_line_error()
    assert snapshot(home) == before


def test_real_process_home_env_and_default(tmp_path):
    """The installed entry point: --home, $KITTYLAB_HOME, and ./kitty-workspace by default."""
    env_home = tmp_path / "from-env"
    result = run_cli_process("init", "--key", "p256", env={"KITTYLAB_HOME": str(env_home)})
    assert result.code == 0 and (env_home / "kitty-ca.crt").exists()
    done = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "kittylab"), "init", "--key", "p256"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "KITTYLAB_HOME"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "kitty-workspace" / "kitty-ca.crt").exists()
    bad = run_cli_process("issue", "client", "../x", home=env_home)
    assert bad.code == 1 and bad.err.startswith("kittylab: error: bad name") and len(bad.err.splitlines()) == 1
    usage = run_cli_process("frobnicate", home=env_home)
    assert usage.code == 2 and len(usage.err.splitlines()) == 1 and "Traceback" not in usage.err


def test_help_lists_every_command_once_under_its_task_family():
    """`kittylab --help` groups the commands by task family: each command under one heading, with its one-line help."""
    from kittylab.cli.main import FAMILIES, build_parser

    commands = build_parser().commands
    text = run_cli("--help").out
    headings = [line.removesuffix(":") for line in text.splitlines() if line.endswith(":") and line[:1].isalpha()]
    assert headings == [title for title, _ in FAMILIES] + ["options"]
    listed = re.findall(r"^  ([a-z][a-z0-9-]*)(?:  |$)", text, re.M)
    assert sorted(listed) == sorted(commands.choices) and len(set(listed)) == len(listed) == 26
    words = " ".join(text.split())
    for each in commands._get_subactions():  # the help each command was registered with, as before
        assert f"{each.dest} {' '.join(each.help.split())}" in words


@pytest.mark.parametrize("command", [["list"], ["show", "eager-client"], ["expiring", "--check"], ["expiring", "--json"],
                                     ["verify", "x.crt"], ["crl"], ["revoke", "eager-client"], ["export-openssl-db"],
                                     ["webconfig", "nginx"], ["issue", "client", "eager-client"], ["repair"],
                                     ["deploy"], ["backup", "saved"], ["ocsp-serve", "--port", "0"],
                                     ["publish", "--port", "0"]])
def test_a_mistyped_home_is_an_error_and_creates_nothing(tmp_path, command, monkeypatch):
    """Monitoring that read "nothing expires" from a folder that does not exist would say all is well.

    Every command says it in the core's words (``fix="no-workspace"``), with the command line's remedy."""
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "typo"
    result = run_cli(*command, home=typo)
    assert result.assert_one_line_error() == (f"kittylab: error: no workspace at {typo}"
                                              " (check --home or $KITTYLAB_HOME, or make one with kittylab init)")
    assert not typo.exists() and not (tmp_path / "saved").exists()
