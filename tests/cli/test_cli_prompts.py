"""Secrets the command line asks for: one way for all (a file, the environment, else a prompt without echo on a
terminal, twice for a new one), the same prompts, messages and exit codes for a CA's new key, ``passphrase`` and
``fetch``'s p12 password."""

from __future__ import annotations

from support.cli import run_cli_process, run_cli_steps, run_in_terminal

from kittylab import load_key

OLD, NEW = "old-kitty-passphrase", "new-kitty-passphrase"


def test_passphrase_asks_for_the_new_one_twice(tmp_path, terminal_env):
    home = tmp_path / "kitty-workspace"
    (tmp_path / "old").write_text(OLD + "\n")
    run_cli_steps(("--ca-passphrase-file", tmp_path / "old", "init", "--key", "p256", "--encrypt-key"), home=home)
    code, output = run_in_terminal(["passphrase", "kitty-ca"], [NEW, "not the same"], terminal_env)
    assert code == 1 and "kittylab: error: the passphrases are empty or do not match" in output
    assert "New passphrase for the CA key kitty-ca (kitty-ca.key): " in output and "Again: " in output
    assert load_key(home / "kitty-ca.key", passphrase=OLD)
    code, output = run_in_terminal(["passphrase", "kitty-ca"], [NEW, NEW, OLD], terminal_env)  # then the key's passphrase
    assert code == 0, output
    assert "Passphrase for the CA key kitty-ca (kitty-ca.key): " in output
    assert NEW not in output and OLD not in output
    assert load_key(home / "kitty-ca.key", passphrase=NEW)
    # No terminal to ask on: one line that says where the new passphrase can come from.
    none = run_cli_process("passphrase", "kitty-ca", home=home, env={"KITTYLAB_CA_PASSPHRASE": NEW}, input="")
    assert none.assert_one_line_error() == ("kittylab: error: no new passphrase: give --new-passphrase-file F"
                                            " (or --remove), or run it in a terminal")


def test_a_second_ca_key_asks_for_its_own_passphrase(tmp_path, terminal_env):
    home = tmp_path / "kitty-workspace"
    run_cli_steps(("init", "--cn", "acme-root", "--key", "p256"), home=home)
    argv = ["init", "--cn", "acme-issuing", "--key", "p256", "--intermediate-of", "acme-root", "--encrypt-key"]
    terminal_env["KITTYLAB_CA_PASSPHRASE"] = OLD  # for any CA: never the new key's passphrase
    code, output = run_in_terminal(argv, [""], terminal_env)
    assert code == 1 and "kittylab: error: the passphrases are empty or do not match" in output
    assert "New passphrase for the CA key acme-issuing (acme-issuing.key): " in output and "Again: " not in output
    assert not (home / "acme-issuing.key").exists()
    code, output = run_in_terminal(argv, [NEW, NEW], terminal_env)
    assert code == 0, output
    assert load_key(home / "acme-issuing.key", passphrase=NEW)
    none = run_cli_process(*argv[:2], "acme-issuing-2", *argv[3:], home=home, input="",
                           env={"KITTYLAB_CA_PASSPHRASE": OLD})
    assert none.assert_one_line_error() == (
        "kittylab: error: no passphrase for the new key of the CA acme-issuing-2: give --ca-passphrase-file"
        " acme-issuing-2=F or set KITTYLAB_CA_PASSPHRASE_ACME_ISSUING_2 (each CA key has its own passphrase)")


def test_fetch_asks_for_the_p12_password(tmp_path, terminal_env):
    home = tmp_path / "kitty-workspace"
    (tmp_path / "pw").write_text("p12-secret\n")
    run_cli_steps(("init", "--key", "p256"),
                  ("issue", "client", "lena", "--key", "p256", "--p12", "--p12-password-file", tmp_path / "pw"), home=home)
    url = "https://127.0.0.1:1/"  # nothing listens: the password is asked for before connecting
    code, output = run_in_terminal(["fetch", url, "--p12", home / "lena.p12"], ["p12-secret"], terminal_env)
    assert f"Password for {home / 'lena.p12'}: " in output and "p12-secret" not in output
    assert code == 1 and "kittylab: error:" in output and "password" not in output.split("kittylab: error:")[1]
    none = run_cli_process("fetch", url, "--p12", home / "lena.p12", home=home, input="")
    assert none.code == 1 and none.err.splitlines()[-1] == (
        "kittylab: error: the p12 needs its password: give --password-file or set KITTYLAB_P12_PASSWORD")
    by_env = run_cli_process("fetch", url, "--p12", home / "lena.p12", home=home, input="",
                             env={"KITTYLAB_P12_PASSWORD": "p12-secret"})
    assert by_env.code == 1 and "password" not in by_env.err.splitlines()[-1]


def test_a_given_passphrase_that_opens_the_key_is_not_asked_for_again(tmp_path, terminal_env):
    """On a terminal too, $KITTYLAB_CA_PASSPHRASE (or a file) that opens the CA key is enough: the prompt is
    only the fallback when what was given fails (it used to come first, before any was tried)."""
    home = tmp_path / "kitty-workspace"
    (tmp_path / "old").write_text(OLD + "\n")
    run_cli_steps(("--ca-passphrase-file", tmp_path / "old", "init", "--key", "p256", "--encrypt-key"), home=home)
    terminal_env["KITTYLAB_CA_PASSPHRASE"] = OLD
    code, output = run_in_terminal(["issue", "client", "lena", "--key", "p256"], ["typed only if asked"], terminal_env)
    assert code == 0, output
    assert "Passphrase for" not in output
    terminal_env["KITTYLAB_CA_PASSPHRASE"] = "not the passphrase"
    code, output = run_in_terminal(["issue", "client", "max", "--key", "p256"], [OLD], terminal_env)
    assert code == 0, output
    assert "Passphrase for the CA key kitty-ca (kitty-ca.key): " in output  # asked after the given one failed

