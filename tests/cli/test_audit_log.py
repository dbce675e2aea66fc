"""Issue 17: every change appends to an audit log (time, user, host, command, serial, subject, reason),
kept in the store's own transactions, read with ``kittylab log [--json]``."""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sqlite3

from support.cli import run_cli

from kittylab import generate_key, make_csr
from kittylab.pki.csr import save_csr
from kittylab.pki.names import Subject


def test_every_change_is_logged_with_who_and_which_command(tmp_path):
    home = tmp_path / "ws"
    (tmp_path / "pass").write_text("s3cret-cat\n")
    save_csr(make_csr(generate_key("p256"), Subject(cn="max"), email=["max@acme.example"]), tmp_path / "max.csr")
    steps = [
        ("init", "--cn", "acme-ca", "--key", "p256"),
        ("issue", "client", "lena", "--key", "p256"),
        ("sign", tmp_path / "max.csr", "--profile", "client"),
        ("renew", "lena"),
        ("revoke", "lena", "--reason", "key-compromise"),
        ("crl", "--days", "7"),
        ("profile", "client", "--san-types", "email"),
        ("passphrase", "acme-ca", "--new-passphrase-file", tmp_path / "pass"),
    ]
    for step in steps:
        assert run_cli(*step, home=home).code == 0, step
    assert run_cli("revoke", "lena", home=home).code == 1  # refused: nothing happened, nothing logged
    entries = json.loads(run_cli("log", "--json", home=home).out)
    # Revoking lena revokes her current certificate and the one the renewal superseded: one entry each.
    assert [e["action"] for e in entries] == ["init", "crl", "issue", "sign", "renew", "revoke", "revoke", "crl",
                                               "profile", "passphrase"]
    assert {e["user"] for e in entries} == {getpass.getuser()} and {e["host"] for e in entries} == {socket.gethostname()}
    revoked = entries[5]
    assert revoked["reason"] == "key-compromise" and revoked["subject"].startswith("CN=lena")
    assert revoked["command"] == f"kittylab --home {home} revoke lena --reason key-compromise"
    renewed, issued = entries[4], entries[2]
    assert renewed["name"] == issued["name"] == "lena" and renewed["serial"] != issued["serial"]
    assert revoked["serial"] == renewed["serial"] and entries[6]["serial"] == issued["serial"]
    assert entries[7]["details"]["next_update"] and "s3cret-cat" not in json.dumps(entries)
    text = run_cli("log", "--name", "lena", home=home).out.splitlines()
    assert len(text) == 4 and "revoke lena serial " in text[2] and "(key-compromise)" in text[2]
    # The log lives in the store, in the same transaction as the change it records.
    with sqlite3.connect(home / "kittylab.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM audit").fetchone()[0] == len(entries)


def test_every_command_that_makes_or_changes_something_takes_json():
    """Issue 17: scripts parse results instead of scraping text; servers and read-only checks aside."""
    from kittylab.cli.main import build_parser

    def leaves(name, parser):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield name, parser
        for child, sub in (subs[0].choices.items() if subs else ()):
            yield from leaves(f"{name} {child}".strip(), sub)

    long_running_or_checks = {"serve", "ocsp-serve", "publish", "fetch", "verify", "roster export-p12"}
    without = [name for name, parser in leaves("", build_parser())
               if name not in long_running_or_checks and not any("--json" in a.option_strings for a in parser._actions)]
    assert without == []
