"""The command line with more than one CA, and over time: init --intermediate-of and --another-root,
--ca, each CA key's passphrase and CRL, ocsp-serve; expiring and renew; export-openssl-db and import."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys

import pytest
from support.cli import run_cli, run_cli_process, run_cli_steps
from support.pki import openssl

from kittylab import Workspace
from kittylab.errors import KittylabError
from kittylab.pki.facts import serial_hex
from kittylab.pki.ca import utcnow
from kittylab.pki.csr import make_csr
from kittylab.pki.keys import generate_key, load_key


@pytest.fixture
def tree(tmp_path):
    home = tmp_path / "ws"
    assert run_cli("init", "--cn", "kitty-root", "--key", "p256", "--o", "Kitty Inc", "--c", "DE", home=home).code == 0
    made = run_cli("init", "--cn", "kitty-issuing", "--key", "p256", "--intermediate-of", "kitty-root",
                   "--permit-dns", "*.example.test", "--permit-dns", "localhost", "--permit-email", "kitty.test",
                   "--permit-ip", "127.0.0.0/8", home=home)
    assert made.code == 0, made.err
    return home, made


def test_init_intermediate_of(tree):
    home, made = tree
    assert "created CA kitty-issuing" in made.out
    assert f"the chain for servers and p12 files: {home / 'kitty-issuing.chain.pem'}" in made.out
    assert "name constraints: permitted: DNS:example.test, DNS:localhost, email:kitty.test, IP:127.0.0.0/8" in made.out
    assert ("openssl req -in kitty-issuing.csr -CA kitty-root.crt -CAkey kitty-root.key -days 3650 -sha256"
            " -copy_extensions none -addext basicConstraints=critical,CA:TRUE,pathlen:0") in made.err
    workspace = Workspace(home)
    assert workspace.ca_name == "kitty-issuing"
    assert workspace.ca_record().certificate.subject.rfc4514_string() == "CN=kitty-issuing,O=Kitty Inc,C=DE"
    issued = run_cli("issue", "server", "picture-server", "--key", "p256", "--dns", "www.example.test", home=home)
    assert issued.code == 0 and "-certfile" not in issued.err
    client = run_cli("issue", "client", "eager-client", "--key", "p256", "--email", "e@kitty.test", "--p12", home=home)
    assert "-certfile kitty-issuing.chain.pem" in client.err
    refused = run_cli("issue", "server", "bank", "--key", "p256", "--dns", "bank.test", home=home)
    assert "DNS:bank.test is not permitted by the name constraints" in refused.assert_one_line_error()
    assert not (home / "bank.key").exists()


def test_choosing_the_ca_and_its_crl(tree):
    home, _ = tree
    direct = run_cli("issue", "client", "root-admin", "--key", "p256", "--ca", "kitty-root", home=home)
    assert direct.code == 0, direct.err
    assert Workspace(home).find("root-admin").issuer == "kitty-root"
    revoked = run_cli("revoke", "root-admin", home=home)
    assert f"published the CRL: {home / 'kitty-root.crl'}" in revoked.out
    crl = run_cli("crl", "--ca", "kitty-root", "--days", "180", home=home)
    assert crl.code == 0 and f"published {home / 'kitty-root.crl'}: 1 revoked" in crl.out
    unknown = run_cli("issue", "client", "x", "--key", "p256", "--ca", "nobody", home=home)
    assert "no CA named 'nobody'" in unknown.assert_one_line_error()
    twice = run_cli("init", "--cn", "again", "--key", "p256", home=home)
    assert "--intermediate-of" in twice.assert_one_line_error()
    deeper = run_cli("init", "--cn", "deeper", "--key", "p256", "--intermediate-of", "kitty-issuing", home=home)
    assert "path length 0" in deeper.assert_one_line_error()
    bad = run_cli("init", "--cn", "odd", "--key", "p256", "--intermediate-of", "kitty-root", "--permit-ip", "10.0.0.1/8",
                  home=home)
    assert "bad IP network" in bad.assert_one_line_error()


def test_another_root(tmp_path):
    home = tmp_path / "ws"
    run_cli("init", "--cn", "server-ca", "--key", "p256", home=home)
    made = run_cli("init", "--cn", "client-ca", "--key", "p256", "--another-root", home=home)
    assert made.code == 0 and "openssl req -x509" in made.err
    assert run_cli("issue", "server", "picture-server", "--key", "p256", "--dns", "localhost", "--ca", "server-ca",
                   home=home).code == 0
    listing = json.loads(run_cli("list", "--json", home=home).out)["certificates"]
    assert [(c["name"], c["issuer"]) for c in listing] == [
        ("server-ca", "server-ca"), ("client-ca", "client-ca"), ("picture-server", "server-ca")
    ]


def test_expiring_and_renew(tmp_path):
    home = tmp_path / "ws"
    run_cli_steps(
        ("init", "--cn", "kitty-ca", "--key", "p256"),
        ("issue", "client", "soon", "--key", "p256", "--days", "10"),
        ("issue", "client", "later", "--key", "p256", "--days", "200"),
        home=home,
    )
    listed = run_cli("expiring", "--within", "30d", home=home)
    assert listed.code == 0 and "\nsoon (client, serial " in listed.out and "later" not in listed.out
    assert listed.out.startswith("CRL of kitty-ca: expires in 30 days")  # a 30-day CRL is due within 30d
    assert "renewing what is due takes it from " in listed.out  # 10 days of 10: not yet in its last third
    as_json = json.loads(run_cli("expiring", "--within", "300d", "--json", home=home).out)
    assert [item["name"] for item in as_json] == ["kitty-ca", "soon", "later"]
    assert [item["kind"] for item in as_json] == ["crl", "certificate", "certificate"]
    assert as_json[1]["seconds_left"] > 9 * 86400
    assert run_cli("expiring", "--within", "1h", home=home).out.startswith("nothing expires within 1h")
    for wrong in (("expiring", "--within", "soon"), ("expiring", "--within", "7x"), ("renew", "--expiring", "7x")):
        usage = run_cli(*wrong, home=home)
        assert usage.code == 2 and "bad duration" in usage.assert_one_line_error()
    old = Workspace(home).find("soon")
    renewed = run_cli("renew", "soon", "--days", "90", home=home)
    assert renewed.code == 0 and "the same key" in renewed.out and "superseded" in renewed.out
    assert Workspace(home).find(old.serial).status() == "superseded"
    assert "soon" not in run_cli("expiring", "--within", "30d", home=home).out
    rekeyed = run_cli("renew", "later", "--new-key", "--p12", home=home)
    assert "a new key" in rekeyed.out and "p12 password (shown once" in rekeyed.out
    usage = run_cli("renew", home=home)
    assert usage.code == 2 and "give NAME, or --expiring 30d" in usage.assert_one_line_error()
    # Nothing due is a quiet night, not a failure; and fresh certificates are never renewed again, however
    # wide the window (a certificate is due only in the last third of its life when the window is longer).
    quiet = run_cli("renew", "--expiring", "400d", "--json", home=home)
    assert quiet.code == 0 and json.loads(quiet.out) == {"renewed": [], "failed": [], "deployed": []} and "nothing to renew" in quiet.err
    assert "has no current certificate" in run_cli("renew", "ghost", home=home).assert_one_line_error()


def test_a_nightly_renewal_renews_what_it_can_and_reports_each_failure(tmp_path):
    """A certificate signed from a CSR (its key stays with its owner) is renewed for the same public key;
    one that cannot be renewed does not stop the others: one line each, in --json too, exit 1 at the end."""
    home = tmp_path / "ws"
    run_cli("init", "--cn", "acme-ca", "--key", "p256", home=home)
    key = generate_key("p256")
    eight_days_ago = utcnow() - dt.timedelta(days=8)  # 10-day certificates with 2 days left: due
    workspace = Workspace(home)
    workspace.sign_csr(make_csr(key, "lena", email=["lena@acme.example"]), profile="client", days=10, now=eight_days_ago)
    for name in ("anna", "zoe"):
        workspace.issue(name, profile="client", key="p256", days=10, now=eight_days_ago)
    (home / "anna.key").write_bytes((home / "zoe.key").read_bytes())  # anna's key no longer matches her certificate
    nightly = run_cli("renew", "--expiring", "30d", "--json", home=home)
    assert nightly.code == 1
    result = json.loads(nightly.out)
    assert sorted(r["name"] for r in result["renewed"]) == ["lena", "zoe"]
    assert [f["name"] for f in result["failed"]] == ["anna"] and "does not belong" in result["failed"][0]["error"]
    assert "kittylab: error: anna not renewed: anna.key does not belong" in nightly.err
    lena = Workspace(home).find("lena")
    assert lena.certificate.public_key() == key.public_key() and (lena.not_after - lena.not_before).days == 10
    assert [r.status() for r in Workspace(home).records() if r.name == "lena"] == ["superseded", "expiring"]


def test_export_and_import(tmp_path, story):
    workspace, server, _ = story
    workspace.revoke("eager-client", reason="affiliation-changed")
    out = tmp_path / "db"
    exported = run_cli("export-openssl-db", "--out", out, home=workspace.home)
    assert exported.code == 0 and f"openssl ca -config {out / 'openssl.cnf'} -gencrl" in exported.err
    assert "\t" + server.record.serial_hex + "\t" in (out / "index.txt").read_text()
    default = run_cli("export-openssl-db", home=workspace.home)
    assert (workspace.home / "openssl-db" / "kitty-ca" / "index.txt").exists() and default.code == 0
    (out / "cacert.pem").write_bytes(workspace.ca_certificate_path.read_bytes())
    (out / "cakey.pem").write_bytes(workspace.path("kitty-ca", "key").read_bytes())
    imported = run_cli("import", out, "--ca-name", "old-ca", home=tmp_path / "new")
    assert imported.code == 0, imported.err
    assert "imported the CA old-ca with 2 certificates (1 revoked) and 0 keys" in imported.out  # leaf keys were not exported
    assert Workspace(tmp_path / "new").find("eager-client").reason == "affiliation-changed"
    missing = run_cli("import", tmp_path / "nowhere", home=tmp_path / "other")
    assert "no index.txt" in missing.assert_one_line_error()


def test_ocsp_serve(story):
    workspace, server, client = story
    workspace.revoke("eager-client", reason="cessation-of-operation")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITTYLAB_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "kittylab", "--home", str(workspace.home), "ocsp-serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        banner = process.stdout.readline()
        assert banner.startswith("OCSP responder for kitty-ca at http://127.0.0.1:"), banner
        url = banner.split(" at ")[1].split()[0]
        ca = workspace.ca_certificate_path
        for cert, said in ((server.files["crt"], "good"), (client.files["crt"], "revoked")):
            done = openssl("ocsp", "-issuer", ca, "-cert", cert, "-url", url, "-CAfile", ca)
            assert f"{cert}: {said}".encode() in done.stdout, done.stderr
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert f"kitty-ca serial {client.record.serial_hex}: revoked (cessation-of-operation" in err
    assert f"serial {serial_hex(server.record.serial)}: good" in err and "stopped" in err
    busy = subprocess.run([sys.executable, "-m", "kittylab", "--home", str(workspace.home), "ocsp-serve", "--port",
                           "99999"], capture_output=True, text=True, env=env, timeout=60)
    assert busy.returncode == 2 and "not a port number" in busy.stderr


def test_export_p12_below_an_intermediate_shows_the_chain_file(tree):
    home, _ = tree
    run_cli("issue", "client", "eager-client", "--key", "p256", home=home)
    exported = run_cli("export-p12", "eager-client", home=home)
    assert exported.code == 0 and "-certfile kitty-issuing.chain.pem" in exported.err


def test_list_shows_every_cas_crl(tree):
    home, _ = tree
    listing = run_cli("list", home=home)
    assert "\nCRL of kitty-root: 0 revoked, next update " in listing.out
    assert "\nCRL of kitty-issuing: 0 revoked, next update " in listing.out
    assert set(json.loads(run_cli("list", "--json", home=home).out)["crls"]) == {"kitty-root", "kitty-issuing"}


def test_an_encrypted_root_signs_its_intermediate_with_the_passphrase_file(tmp_path):
    home, secret = tmp_path / "ws", tmp_path / "passphrase"
    secret.write_text("s3cret-pass\n")
    assert run_cli("--ca-passphrase-file", secret, "init", "--cn", "kitty-root", "--key", "p256", "--encrypt-key",
                   home=home).code == 0
    made = run_cli("--ca-passphrase-file", secret, "init", "--cn", "kitty-issuing", "--key", "p256",
                   "--intermediate-of", "kitty-root", home=home)
    # Without --encrypt-key the new key is not encrypted, and never with the root's passphrase.
    assert made.code == 0 and "mode 0600, encrypted" not in made.out
    assert (home / "kitty-issuing.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    republished = run_cli("--ca-passphrase-file", secret, "crl", "--ca", "kitty-root", "--days", "200", home=home)
    assert "-crldays 200" in republished.err
    again = run_cli("--ca-passphrase-file", secret, "crl", "--ca", "kitty-root", home=home)
    assert "-crldays 200" in again.err  # remembered for this CA


def test_each_ca_key_has_its_own_passphrase(tmp_path):
    """Issue 17: the root's passphrase in the environment, the issuing CA's in a file; the root's is never
    needed to issue from the intermediate; ``kittylab passphrase NAME`` changes one."""
    home = tmp_path / "ws"
    (tmp_path / "root").write_text("root-secret\n")
    (tmp_path / "issuing").write_text("issuing-secret\n")
    root_env = {"KITTYLAB_CA_PASSPHRASE_ACME_ROOT": "root-secret"}
    assert run_cli_process("init", "--cn", "acme-root", "--key", "p256", "--encrypt-key", home=home,
                           env=root_env).code == 0
    made = run_cli_process("--ca-passphrase-file", f"acme-issuing={tmp_path / 'issuing'}", "init", "--cn",
                           "acme-issuing", "--key", "p256", "--intermediate-of", "acme-root", "--encrypt-key",
                           home=home, env=root_env)
    assert made.code == 0, made.err
    assert load_key(home / "acme-issuing.key", passphrase="issuing-secret")
    with pytest.raises(KittylabError):
        load_key(home / "acme-issuing.key", passphrase="root-secret")
    # Both sources at once, as in the issue: each key opens with its own.
    both = run_cli_process("--ca-passphrase-file", tmp_path / "issuing", "issue", "client", "lena", "--key", "p256",
                           home=home, env={"KITTYLAB_CA_PASSPHRASE": "root-secret"})
    assert both.code == 0, both.err
    # The root's passphrase is not needed to issue from the intermediate (none given for it).
    alone = run_cli_process("--ca-passphrase-file", f"acme-issuing={tmp_path / 'issuing'}", "issue", "client", "max",
                            "--key", "p256", home=home, input="")
    assert alone.code == 0, alone.err
    # Without any: the error names the CA and where its passphrase can come from.
    none = run_cli_process("issue", "client", "ola", "--key", "p256", home=home, input="")
    assert none.code == 1 and "KITTYLAB_CA_PASSPHRASE_ACME_ISSUING" in none.err and "acme-issuing=F" in none.err
    # Change the issuing CA's passphrase; the root's stays as it was.
    (tmp_path / "new").write_text("brand-new\n")
    changed = run_cli_process("--ca-passphrase-file", f"acme-issuing={tmp_path / 'issuing'}", "passphrase",
                              "acme-issuing", "--new-passphrase-file", tmp_path / "new", home=home)
    assert changed.code == 0, changed.err
    assert load_key(home / "acme-issuing.key", passphrase="brand-new")
    assert load_key(home / "acme-root.key", passphrase="root-secret")
    assert oct((home / "acme-issuing.key").stat().st_mode & 0o777) == "0o600"
    for result in (made, both, alone, none, changed):
        assert "secret" not in result.out + result.err and "brand-new" not in result.out + result.err


def test_ocsp_serve_needs_the_passphrase_of_an_encrypted_ca_key(tmp_path):
    home, secret = tmp_path / "ws", tmp_path / "passphrase"
    secret.write_text("s3cret-pass\n")
    run_cli("--ca-passphrase-file", secret, "init", "--cn", "kitty-ca", "--key", "p256", "--encrypt-key", home=home)
    refused = run_cli("ocsp-serve", "--port", "0", home=home)
    assert "the key of the CA kitty-ca is encrypted: give --ca-passphrase-file kitty-ca=F" in (
        refused.assert_one_line_error()
    )


def test_verify_below_an_intermediate_shows_a_check_of_every_level(tree):
    home, _ = tree
    run_cli("issue", "server", "picture-server", "--key", "p256", "--dns", "localhost", home=home)
    checked = run_cli("verify", home / "picture-server.crt", "--purpose", "server", home=home)
    assert checked.code == 0 and "kitty-issuing: revocation: not revoked" in checked.out
    command = checked.err.split("openssl equivalent: ")[1].strip()
    assert command.startswith("openssl verify -CAfile kitty-issuing.chain.pem -crl_check_all -CRLfile kitty-issuing.chain.crl")
    done = subprocess.run(command.split(), cwd=home, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_crl_cannot_expire_unnoticed(tmp_path):
    """Issue 17: ``crl --days 1`` is caught by ``expiring`` and ``--check``; a remembered validity is stated
    where it is used; a CA that signs CAs gets a long CRL by default."""
    home = tmp_path / "ws"
    run_cli("init", "--cn", "acme-root", "--key", "p256", home=home)
    run_cli("init", "--cn", "acme-issuing", "--key", "p256", "--intermediate-of", "acme-root", home=home)
    root_crl = Workspace(home).current_crl("acme-root")
    assert (root_crl.next_update_utc - root_crl.last_update_utc).days == 365
    quiet = run_cli("expiring", "--within", "7d", "--check", home=home)
    assert quiet.code == 0 and quiet.out.startswith("OK: nothing expires within 7d") and quiet.out.count("\n") == 1
    short = run_cli("crl", "--days", "1", home=home)
    assert short.code == 0 and "(given with --days)" in short.out
    caught = run_cli("expiring", "--within", "30d", home=home)
    assert "CRL of acme-issuing: expires in 24 hours" in caught.out or "CRL of acme-issuing: expires in 1 days" in caught.out
    check = run_cli("expiring", "--within", "7d", "--check", home=home)
    assert check.code == 1 and check.out.count("\n") == 1
    assert check.out.startswith("DUE: 1 within 7d: CRL of acme-issuing in ")
    as_json = json.loads(run_cli("expiring", "--within", "7d", "--json", home=home).out)
    assert [(i["kind"], i["ca"], i["status"]) for i in as_json] == [("crl", "acme-issuing", "expiring")]
    # The next crl and revoke use the remembered day, and say so.
    again = run_cli("crl", home=home)
    assert "remembered from an earlier choice of 1 days for acme-issuing" in again.out
    run_cli("issue", "client", "lena", "--key", "p256", home=home)
    revoked = run_cli("revoke", "lena", home=home)
    assert "valid 1 days (remembered from an earlier choice of 1 days for acme-issuing)" in revoked.out
    fixed = run_cli("crl", "--days", "30", "--json", home=home)
    assert json.loads(fixed.out)[0]["days"] == 30
    assert run_cli("expiring", "--within", "7d", "--check", home=home).code == 0


def test_crl_all_publishes_every_ca_it_can_and_reports_the_others(tmp_path):
    """After a rotation, a passphrase not given for one CA: the other CAs' CRLs are published, exit 1."""
    home = tmp_path / "ws"
    (tmp_path / "old.pass").write_text("old-secret\n")
    (tmp_path / "new.pass").write_text("new-secret\n")
    run_cli("init", "--cn", "acme-root", "--key", "p256", home=home)
    for name, secret in (("old-ca", "old.pass"), ("new-ca", "new.pass")):
        made = run_cli("--ca-passphrase-file", f"{name}={tmp_path / secret}", "init", "--cn", name, "--intermediate-of",
                       "acme-root", "--key", "p256", "--encrypt-key", home=home)
        assert made.code == 0, made.err
        run_cli("--ca-passphrase-file", f"{name}={tmp_path / secret}", "issue", "client", f"holder-of-{name}", "--ca",
                name, "--key", "p256", home=home)
    before = (home / "old-ca.crl").read_bytes()
    done = run_cli("--ca-passphrase-file", f"new-ca={tmp_path / 'new.pass'}", "crl", "--all", "--json", home=home)
    assert done.code == 1
    results = {each["ca"]: each for each in json.loads(done.out)}
    assert "crl" in results["new-ca"] and "the key of the CA old-ca is encrypted" in results["old-ca"]["error"]
    assert "kittylab: error: 1 of " in done.err and "CRLs not published: old-ca" in done.err
    assert (home / "old-ca.crl").read_bytes() == before


def test_renew_without_p12_says_the_old_p12_is_stale_and_removes_one_holding_an_old_key(tmp_path):
    home = tmp_path / "ws"
    run_cli("init", "--cn", "acme-ca", "--key", "p256", home=home)
    run_cli("issue", "client", "bob", "--key", "p256", "--p12", home=home)
    same_key = run_cli("renew", "bob", "--json", home=home)
    assert json.loads(same_key.out)["renewed"][0]["old_p12"] == "stale"
    assert "warning: bob.p12 still holds the superseded certificate" in same_key.err
    new_key = run_cli("renew", "bob", "--new-key", "--json", home=home)
    assert json.loads(new_key.out)["renewed"][0]["old_p12"] == "removed" and "warning: removed bob.p12" in new_key.err
    assert not (home / "bob.p12").exists()
    assert json.loads(run_cli("renew", "bob", "--json", home=home).out)["renewed"][0]["old_p12"] is None


def test_import_takes_the_ca_s_own_passphrase(tmp_path, monkeypatch):
    home, secret = tmp_path / "ws", tmp_path / "ca.pass"
    secret.write_text("kitty-secret\n")
    run_cli("--ca-passphrase-file", secret, "init", "--cn", "kitty-ca", "--key", "p256", "--encrypt-key", home=home)
    out = tmp_path / "db"
    run_cli("export-openssl-db", "--out", out, home=home)
    (out / "cacert.pem").write_bytes((home / "kitty-ca.crt").read_bytes())
    (out / "cakey.pem").write_bytes((home / "kitty-ca.key").read_bytes())
    by_file = run_cli("--ca-passphrase-file", f"old-ca={secret}", "import", out, "--ca-name", "old-ca",
                      home=tmp_path / "a")
    assert by_file.code == 0, by_file.err
    monkeypatch.setenv("KITTYLAB_CA_PASSPHRASE_OLD_CA", "kitty-secret")
    by_variable = run_cli("import", out, "--ca-name", "old-ca", home=tmp_path / "b")
    assert by_variable.code == 0, by_variable.err
    assert b"ENCRYPTED" in (tmp_path / "b" / "old-ca.key").read_bytes()


def test_a_weak_ca_passphrase_is_refused_and_a_short_one_warned_about(tmp_path, monkeypatch):
    home = tmp_path / "ws"
    monkeypatch.setenv("KITTYLAB_CA_PASSPHRASE", "x")
    weak = run_cli("init", "--cn", "acme-ca", "--key", "p256", "--encrypt-key", home=home)
    assert "at least 4 characters" in weak.assert_one_line_error() and not home.exists()
    monkeypatch.setenv("KITTYLAB_CA_PASSPHRASE", "kitt")
    short = run_cli("init", "--cn", "acme-ca", "--key", "p256", "--encrypt-key", home=home)
    assert short.code == 0 and "warning: the passphrase has only 4 characters" in short.err
    assert "change it for a longer one (kittylab passphrase CA)" in short.err  # the core's words, the CLI's command
    (tmp_path / "new").write_text("abc\n")
    changed = run_cli("passphrase", "acme-ca", "--new-passphrase-file", tmp_path / "new", home=home)
    assert "too short" in changed.assert_one_line_error()
    assert load_key(home / "acme-ca.key", passphrase="kitt")
