"""Issue 17's proof: a month of a company's private CA, end to end, every step's --json parsed.

An offline-style root with its own passphrase, an issuing CA with name constraints and its own
passphrase, a server, employees, an employee's CSR reviewed, nginx reading the deploy folder, a
rotation to a new issuing CA while nginx trusts both (holders of either get 200, revoked ones of
either get 400), a CRL about to expire caught by ``expiring --check``, a quiet renewal night, the
audit log holding every step, a backup taken while another process issues and restored elsewhere
where it issues and revokes, and an easy-rsa import that fails half-way and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from support.cli import run_cli, run_cli_process
from support.pki import curl_status, easy_rsa
from support.system import free_port, require_binary

from kittylab import KittylabError, Workspace, export_p12, generate_key, load_key, make_csr
from kittylab.net.webconfig import Site
from kittylab.pki.csr import save_csr
from kittylab.pki.names import Subject
from kittylab.ui.sites import RunningSite
from kittylab.workspace.openssldb import import_ca_directory
from kittylab.workspace.store import Store

PASSWORD = "kitty-pass"


def _json(home: Path, *argv) -> dict | list:
    done = run_cli(*argv, "--json", home=home)
    assert done.code == 0, (argv, done.err)
    return json.loads(done.out)


def test_a_month_of_a_private_ca(tmp_path):
    require_binary("nginx")
    require_binary("curl")
    home = tmp_path / "acme"
    secrets = {name: tmp_path / f"{name}.pass" for name in ("acme-root", "acme-issuing-2026", "acme-issuing-2027")}
    for name, path in secrets.items():
        path.write_text(f"{name}-secret\n")
    (tmp_path / "p12.pass").write_text(PASSWORD + "\n")
    issuing = ["--ca-passphrase-file", f"acme-issuing-2026={secrets['acme-issuing-2026']}",
               "--ca-passphrase-file", f"acme-issuing-2027={secrets['acme-issuing-2027']}"]
    root = ["--ca-passphrase-file", f"acme-root={secrets['acme-root']}"]

    # Day 1: the root and the issuing CA, each with its own passphrase; name constraints on the issuing CA.
    made = _json(home, *root, "init", "--cn", "acme-root", "--o", "Acme", "--key", "p256", "--encrypt-key")
    assert made["encrypted"] and made["name"] == "acme-root"
    constraints = ["--permit-dns", "acme.example", "--permit-dns", "localhost", "--permit-ip", "127.0.0.0/8",
                   "--permit-email", "acme.example"]
    _json(home, *root, *issuing, "init", "--cn", "acme-issuing-2026", "--intermediate-of", "acme-root", "--key",
          "p256", "--encrypt-key", *constraints)
    # From here on the root's passphrase is never given: issuing needs only the issuing CA's.
    server = _json(home, *issuing, "issue", "server", "intranet", "--key", "p256", "--dns", "localhost", "--ip",
                   "127.0.0.1")
    anna = _json(home, *issuing, "issue", "client", "anna", "--key", "p256", "--email", "anna@acme.example", "--p12",
                 "--p12-password-file", tmp_path / "p12.pass")
    assert server["issuer"] == anna["issuer"] == "acme-issuing-2026" and anna["p12_password"] is None

    # Lena's CSR asks for more than she gets: reviewed, two names dropped.
    lena_key = generate_key("p256")
    save_csr(make_csr(lena_key, Subject(cn="lena"), email=["lena@acme.example", "ceo@acme.example"],
                      dns=["wiki.acme.example"]), tmp_path / "lena.csr")
    assert "ceo@acme.example" in run_cli("show", tmp_path / "lena.csr", home=home).out
    lena = _json(home, *issuing, "sign", tmp_path / "lena.csr", "--profile", "client", "--drop-san",
                 "email:ceo@acme.example", "--drop-san", "DNS:wiki.acme.example")
    assert lena["grant"]["subject_alternative_names"] == ["email:lena@acme.example"]

    def p12_of(name: str, key) -> Path:
        certificate = Workspace(home).find(name).certificate
        path = tmp_path / f"{name}-{certificate.serial_number:x}.p12"
        path.write_bytes(export_p12(key, certificate, password=PASSWORD, chain=Workspace(home).chain(
            Workspace(home).find(name).issuer), name=name))
        return path

    lena_p12 = p12_of("lena", lena_key)
    anna_p12 = home / "anna.p12"

    # nginx reads the deploy folder (no CA key there), run unprivileged from its own folder.
    # nginx's workers drop root's rights: the site (config and web root) gets a world-readable folder.
    site_dir = Path(tempfile.mkdtemp(prefix="kittylab-month-"))
    site_dir.chmod(0o755)
    port = free_port()
    config = run_cli("webconfig", "nginx", "--out", site_dir / "nginx.conf", "--port", str(port), "--server-name",
                     "intranet", home=home)
    assert config.code == 0, config.err
    deployed = home / "deploy"
    assert sorted(p.name for p in deployed.iterdir()) == ["clients-of-acme-root.crl", "clients-of-acme-root.pem",
                                                         "intranet.fullchain.pem", "intranet.key"]
    ca = home / "acme-root.crt"
    site = Site("nginx", (site_dir / "nginx.conf").resolve(), (site_dir / "www").resolve(), "127.0.0.1", port)
    with RunningSite(site) as web:
        assert curl_status(web.url, anna_p12, ca=ca) == curl_status(web.url, lena_p12, ca=ca) == "200"

        # Rotation: a 2027 issuing CA inherits the constraints; nginx trusts both while certificates move over.
        new = _json(home, *root, *issuing, "init", "--cn", "acme-issuing-2027", "--intermediate-of", "acme-root",
                    "--replaces", "acme-issuing-2026", "--key", "p256", "--encrypt-key")
        new_ca = x509.load_pem_x509_certificate((home / "acme-issuing-2027.crt").read_bytes())
        old_ca = x509.load_pem_x509_certificate((home / "acme-issuing-2026.crt").read_bytes())
        assert new["issuer"] == "acme-root" and new_ca.extensions.get_extension_for_class(
            x509.NameConstraints).value == old_ca.extensions.get_extension_for_class(x509.NameConstraints).value
        bundle = (deployed / "clients-of-acme-root.pem").read_text()
        assert bundle.count("BEGIN CERTIFICATE") == 3  # the root and both issuing CAs
        assert (deployed / "clients-of-acme-root.crl").read_text().count("BEGIN X509 CRL") == 3
        web.reload()
        ben_key = generate_key("p256")
        save_csr(make_csr(ben_key, Subject(cn="ben"), email=["ben@acme.example"]), tmp_path / "ben.csr")
        ben = _json(home, *issuing, "sign", tmp_path / "ben.csr", "--profile", "client")
        assert ben["issuer"] == "acme-issuing-2027"  # the new default issuing CA
        ben_p12 = p12_of("ben", ben_key)
        assert [curl_status(web.url, p12, ca=ca) for p12 in (anna_p12, lena_p12, ben_p12)] == ["200"] * 3
        moved = _json(home, *issuing, "renew", "anna", "--ca", "acme-issuing-2027", "--p12", "--p12-password-file",
                      tmp_path / "p12.pass")
        assert moved["renewed"][0]["issuer"] == "acme-issuing-2027"
        assert curl_status(web.url, anna_p12, ca=ca) == "200"

        # Lena's laptop is stolen: revoked under the old CA; a hook is told which deploy files changed.
        hook_out = tmp_path / "hook.out"
        revoked = _json(home, *issuing, "revoke", "lena", "--reason", "key-compromise", "--deploy-hook",
                        f'echo "$KITTYLAB_DEPLOY_CHANGED" > {hook_out}')
        assert revoked["status"] == "revoked" and str(deployed / "clients-of-acme-root.crl") in revoked["deployed"]
        assert hook_out.read_text().split() == [str(deployed / "clients-of-acme-root.crl")]
        _json(home, *issuing, "revoke", "ben", "--reason", "affiliation-changed")  # a leaver, under the new CA
        web.reload()
        assert [curl_status(web.url, p12, ca=ca) for p12 in (anna_p12, lena_p12, ben_p12)] == ["200", "400", "400"]
        assert "certificate revoked" in web.log_tail(40)

        # The old CA keeps publishing while it has certificates (the server's); the root is left to a person.
        published = _json(home, *issuing, "crl", "--all")
        assert sorted(item["ca"] for item in published) == ["acme-issuing-2026", "acme-issuing-2027"]

        # A CRL about to expire is caught by the monitoring check, and the fix clears it.
        _json(home, *issuing, "crl", "--ca", "acme-issuing-2027", "--days", "1")
        check = run_cli("expiring", "--within", "7d", "--check", home=home)
        assert check.code == 1 and check.out.startswith("DUE: 1 within 7d: CRL of acme-issuing-2027 in ")
        _json(home, *issuing, "crl", "--ca", "acme-issuing-2027", "--days", "30")
        assert run_cli("expiring", "--within", "7d", "--check", home=home).code == 0
        web.reload()
        assert curl_status(web.url, anna_p12, ca=ca) == "200"

    shutil.rmtree(site_dir)

    # A quiet night: nothing due, exit 0, nothing renewed.
    assert _json(home, *issuing, "renew", "--expiring", "30d") == {"renewed": [], "failed": [], "deployed": []}

    # The audit log holds every step, with who and which command.
    log = _json(home, "log")
    actions = [(entry["action"], entry["name"]) for entry in log]
    for step in [("init", "acme-root"), ("init", "acme-issuing-2026"), ("issue", "intranet"), ("issue", "anna"),
                 ("sign", "lena"), ("init", "acme-issuing-2027"), ("sign", "ben"), ("renew", "anna"),
                 ("revoke", "lena"), ("revoke", "ben"), ("crl", "acme-issuing-2026"), ("crl", "acme-issuing-2027"),
                 ("deploy", str(deployed.resolve()))]:
        assert step in actions, step
    assert all(entry["user"] and entry["host"] and entry["command"].startswith("kittylab ") for entry in log)
    lena_revoked = next(entry for entry in log if entry["action"] == "revoke" and entry["name"] == "lena")
    assert lena_revoked["reason"] == "key-compromise" and lena_revoked["serial"] == lena["serial"]

    # A backup while another process issues; restored elsewhere, it issues and revokes, its keys still encrypted.
    busy = subprocess.Popen([sys.executable, "-m", "kittylab", "--home", str(home), *issuing, "issue", "client",
                             "carl", "--key", "p256"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={k: v for k, v in os.environ.items() if not k.startswith("KITTYLAB_")})
    saved = _json(home, "backup", tmp_path / "backup")
    _, errors = busy.communicate(timeout=60)
    assert busy.returncode == 0, errors
    assert (tmp_path / "backup").stat().st_mode & 0o777 == 0o700 and len(saved["files"]) > 10
    restored_home = tmp_path / "elsewhere" / "acme"
    _json(restored_home, *issuing, "restore", tmp_path / "backup")
    assert b"ENCRYPTED" in (restored_home / "acme-issuing-2027.key").read_bytes()
    assert b"ENCRYPTED" in (restored_home / "acme-root.key").read_bytes()
    dora = _json(restored_home, *issuing, "issue", "client", "dora", "--key", "p256")
    assert _json(restored_home, *issuing, "revoke", "dora")["status"] == "revoked"
    assert _json(restored_home, "log")[-1]["action"] == "revoke" and dora["issuer"] == "acme-issuing-2027"
    names = {record.name for record in Workspace(restored_home).records()}
    assert {"anna", "lena", "ben", "intranet"} <= names


def test_an_easy_rsa_import_that_fails_half_way_leaves_nothing(tmp_path, monkeypatch):
    pki = easy_rsa(tmp_path, ["init-pki"], ["--req-cn=Acme Old CA", "build-ca", "nopass"],
                   ["build-client-full", "alice", "nopass"], ["build-client-full", "bob", "nopass"],
                   ["build-server-full", "www", "nopass"])
    home = tmp_path / "ws"
    added = []
    real_add = Store.add

    def failing_add(self, *args, **kwargs):
        added.append(args[0])
        if len(added) == 3:  # half-way: the CA and one certificate are in the transaction
            raise KittylabError("the disk is full (injected)")
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(Store, "add", failing_add)
    with pytest.raises(KittylabError, match="injected"):
        import_ca_directory(Workspace(home), pki, passphrase="import-secret")
    monkeypatch.setattr(Store, "add", real_add)
    left = [p.name for p in home.rglob("*") if p.is_file() and p.name not in (".kittylab.lock", "kittylab.sqlite3")]
    assert left == [] and Workspace(home).records() == []
    # The retry works (nothing is "already used"), with the passphrase in the environment as in the issue.
    retried = run_cli_process("import", pki, "--json", home=home, env={"KITTYLAB_CA_PASSPHRASE": "import-secret"})
    assert retried.code == 0, retried.err
    result = json.loads(retried.out)
    assert result["ca"] == "Acme-Old-CA" and sorted(result["keys"]) == ["alice", "bob", "www"]
    assert load_key(home / "Acme-Old-CA.key", passphrase="import-secret")
    revoked = run_cli_process("revoke", "bob", home=home, env={"KITTYLAB_CA_PASSPHRASE": "import-secret"})
    assert revoked.code == 0, revoked.err
