"""Issue 17: a deploy folder holds only what a web server needs; changes refresh it and run a hook."""

from __future__ import annotations

import json

import pytest
from support.cli import run_cli, run_cli_steps


#: Every test's workspace has the CA acme-ca (not the default kitty-ca: no file name may assume it).
pytestmark = pytest.mark.parametrize("home", [("--cn", "acme-ca")], indirect=True, ids=["acme-ca"])


def test_the_deploy_folder_and_its_hook(tmp_path, home):
    out = tmp_path / "web-host"
    run_cli("issue", "server", "intranet", "--key", "p256", "--dns", "localhost", home=home)
    log = tmp_path / "hook.log"
    made = run_cli("deploy", "--dir", out, "--server", "intranet", "--client-ca", "acme-ca", "--hook",
                   f'echo "$KITTYLAB_COMMAND: $KITTYLAB_DEPLOY_CHANGED" >> {log}', "--json", home=home)
    assert made.code == 0, made.err
    assert sorted(p.name for p in out.iterdir()) == ["clients-of-acme-ca.crl", "clients-of-acme-ca.pem",
                                                     "intranet.fullchain.pem", "intranet.key"]
    assert (out / "intranet.key").stat().st_mode & 0o777 == 0o600 and not (out / "acme-ca.key").exists()
    assert json.loads(made.out)["hook"].startswith("echo")
    # Nothing changed: nothing deployed, the hook does not run.
    assert run_cli("deploy", home=home).out.startswith(f"{out.resolve()} is up to date")
    run_cli("issue", "client", "lena", "--key", "p256", home=home)  # a client: nothing a web server reads changes
    revoked = run_cli("revoke", "lena", "--json", home=home)
    assert json.loads(revoked.out)["deployed"] == [str(out.resolve() / "clients-of-acme-ca.crl")]
    assert log.read_text().splitlines() == [
        f"deploy: {' '.join(str(out.resolve() / n) for n in sorted(p.name for p in out.iterdir()))}",
        f"revoke: {out.resolve() / 'clients-of-acme-ca.crl'}",
    ]
    # A failing hook: the change is done (and said so), the exit code says the hook failed.
    failed = run_cli("crl", "--deploy-hook", "exit 3", home=home)
    assert failed.code == 1 and "the change is done, but the deploy hook failed (exit 3)" in failed.err
    assert "published" in failed.out


def test_a_restored_copy_never_deploys_to_the_original_folder_nor_runs_its_hook(tmp_path, home):
    out, copy = tmp_path / "web-host", tmp_path / "drill"
    log = tmp_path / "hook.log"
    run_cli("issue", "client", "lena", "--key", "p256", home=home)
    run_cli("deploy", "--dir", out, "--client-ca", "acme-ca", "--hook", f"echo ran >> {log}", home=home)
    run_cli("backup", tmp_path / "backup", home=home)
    run_cli("revoke", "lena", home=home)  # production revokes after the backup
    production_crl, hook_runs = (out / "clients-of-acme-ca.crl").read_bytes(), log.read_text()
    restored = run_cli("restore", tmp_path / "backup", "--json", home=copy)
    assert restored.code == 0, restored.err
    assert json.loads(restored.out)["deploy_suspended"] == {"dir": str(out.absolute()), "hook": f"echo ran >> {log}"}
    assert f"deploy --dir {out.absolute()} --hook" in restored.err
    assert run_cli("issue", "client", "dora", "--key", "p256", home=copy).code == 0
    assert run_cli("crl", home=copy).code == 0  # the copy's CRL (lena not revoked) stays in the copy
    assert (out / "clients-of-acme-ca.crl").read_bytes() == production_crl and log.read_text() == hook_runs
    assert (copy / "deploy" / "clients-of-acme-ca.crl").is_file()


def test_a_failed_deploy_hook_runs_again_on_the_next_deploy(tmp_path, home):
    out, log = tmp_path / "web-host", tmp_path / "hook.log"
    run_cli("issue", "client", "lena", "--key", "p256", home=home)
    run_cli("deploy", "--dir", out, "--client-ca", "acme-ca", "--hook", f'echo "$KITTYLAB_DEPLOY_CHANGED" >> {log}',
            home=home)
    failed = run_cli("revoke", "lena", "--deploy-hook", "exit 3", home=home)
    assert failed.code == 1 and "runs it again" in failed.err
    retried = run_cli("deploy", "--json", home=home)  # nginx still has the old CRL: the hook must run
    assert retried.code == 0, retried.err
    assert json.loads(retried.out)["deployed"] == [str(out.resolve() / "clients-of-acme-ca.crl")]
    assert log.read_text().splitlines()[-1] == str(out.resolve() / "clients-of-acme-ca.crl")
    runs = log.read_text()
    assert run_cli("deploy", home=home).out.startswith(f"{out.resolve()} is up to date")  # succeeded: done
    assert log.read_text() == runs


def test_repair_brings_a_stale_deploy_folder_up_to_date(home):
    """A crash after a commit and before the deploy refresh: kittylab repair (or the next change) deploys again."""
    run_cli_steps(
        ("issue", "server", "intranet", "--key", "p256", "--dns", "localhost"),
        ("deploy", "--server", "intranet", "--client-ca", "acme-ca"),
        home=home,
    )
    stale = home / "deploy" / "clients-of-acme-ca.crl"
    stale.write_bytes(b"an old CRL")
    repaired = run_cli("repair", "--json", home=home)
    assert repaired.code == 0 and "deployed clients-of-acme-ca.crl again" in json.loads(repaired.out)["done"]
    assert stale.read_bytes() == (home / "acme-ca.crl").read_bytes()


def test_a_failed_hook_forgotten_with_no_hook_is_not_run_again(tmp_path, home):
    out = tmp_path / "web-host"
    run_cli("deploy", "--dir", out, "--client-ca", "acme-ca", home=home)
    assert run_cli("crl", "--deploy-hook", "exit 3", home=home).code == 1
    forgotten = run_cli("deploy", "--no-hook", home=home)
    assert forgotten.code == 0 and "failed last time" not in forgotten.out
    assert run_cli("deploy", "--hook", "exit 4", home=home).out.startswith(f"{out.resolve()} is up to date")


def test_webconfig_deploys_the_files_its_configuration_names(tmp_path, home):
    """The configuration text is only text; the command puts what it names into the deploy folder (and logs it)."""
    run_cli("issue", "server", "intranet", "--key", "p256", "--dns", "localhost", home=home)
    printed = run_cli("webconfig", "nginx", "--server-name", "intranet", "--webroot", tmp_path / "www", home=home)
    assert printed.code == 0, printed.err
    deployed = home.resolve() / "deploy"
    assert f"ssl_certificate_key {deployed / 'intranet.key'};" in printed.out
    assert sorted(p.name for p in deployed.iterdir()) == ["clients-of-acme-ca.crl", "clients-of-acme-ca.pem",
                                                          "intranet.fullchain.pem", "intranet.key"]
    assert (deployed / "intranet.key").stat().st_mode & 0o777 == 0o600
    assert json.loads(run_cli("log", "--json", home=home).out)[-1]["action"] == "deploy"
