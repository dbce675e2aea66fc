"""Keeping a CA running: ``passphrase`` (one CA key's passphrase)."""

from __future__ import annotations

import argparse
import getpass
import sys

from ..errors import KittylabError
from ..pki.files import read_password_file
from .options import echo, open_workspace


def _new_passphrase(args: argparse.Namespace) -> str | None:
    if args.remove:
        return None
    if args.new_passphrase_file:
        return read_password_file(args.new_passphrase_file)
    if not sys.stdin.isatty():
        raise KittylabError("no new passphrase: give --new-passphrase-file F (or --remove), or run it in a terminal")
    first = getpass.getpass(f"New passphrase for the CA key {args.name} ({args.name}.key): ")
    if not first or first != getpass.getpass("Again: "):
        raise KittylabError("the passphrases are empty or do not match")
    return first


def cmd_passphrase(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    new = _new_passphrase(args)
    path = workspace.change_passphrase(args.name, new)
    echo(f"{path}: {'encrypted with the new passphrase' if new else 'no longer encrypted'} (mode 0600);"
         " the other CA keys are unchanged")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    passphrase = subparsers.add_parser("passphrase", help="change the passphrase of one CA's key")
    passphrase.add_argument("name", metavar="CA", help="the CA whose key gets the new passphrase")
    given = passphrase.add_mutually_exclusive_group()
    given.add_argument("--new-passphrase-file", metavar="F", help="the new passphrase, F's first line (else asked for)")
    given.add_argument("--remove", action="store_true", help="store the key unencrypted (e.g. on an HSM-less test box)")
    passphrase.set_defaults(handler=cmd_passphrase)
