"""What every command shares: the parser, output, subject options and secrets from file, environment or prompt."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import NoReturn

from ..errors import KittylabError
from ..pki.files import read_password_file
from ..pki.names import Subject
from ..workspace.workspace import Workspace


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive whole number")
    return value


def add_subject_options(parser: argparse.ArgumentParser) -> None:
    """``--o --ou --c --st --l --email``: the subject fields besides the CN."""
    group = parser.add_argument_group("subject fields")
    for flag, label in (("o", "organization"), ("ou", "organizational unit"), ("c", "country, two letters"),
                        ("st", "state or province"), ("l", "locality")):
        group.add_argument(f"--{flag}", default=None, metavar=flag.upper(), help=label)


def subject_from(args: argparse.Namespace, cn: str, defaults: Subject | None = None, *, email: str = "") -> Subject:
    fields = {"o": "", "c": "", "st": "", "l": "", "ou": ""}
    if defaults is not None:
        fields.update(o=defaults.o, c=defaults.c, st=defaults.st, l=defaults.l)
    fields.update({k: getattr(args, k) for k in fields if getattr(args, k, None) is not None})
    return Subject(cn=cn, email=email, **fields)


def ca_passphrase(args: argparse.Namespace, *, confirm: bool = False) -> str | None:
    """The CA key's passphrase: from --ca-passphrase-file, $KITTYLAB_CA_PASSPHRASE, or asked for."""
    if getattr(args, "ca_passphrase_file", None):
        return read_password_file(args.ca_passphrase_file)
    if os.environ.get("KITTYLAB_CA_PASSPHRASE"):
        return os.environ["KITTYLAB_CA_PASSPHRASE"]
    if not confirm:
        return None
    if not sys.stdin.isatty():
        raise KittylabError("no passphrase: give --ca-passphrase-file or set KITTYLAB_CA_PASSPHRASE")
    first = getpass.getpass("Passphrase for the CA key: ")
    if not first or first != getpass.getpass("Again: "):
        raise KittylabError("the passphrases are empty or do not match")
    return first


def open_workspace(args: argparse.Namespace) -> Workspace:
    """The workspace of ``--home``, its CA key's passphrase asked for only if the key needs it."""
    workspace = Workspace(args.home, ca_passphrase=ca_passphrase(args))
    if workspace.has_ca and workspace._ca_passphrase is None and workspace.ca_key_is_encrypted():
        if not sys.stdin.isatty():
            raise KittylabError(
                "the CA key is encrypted: give --ca-passphrase-file or set KITTYLAB_CA_PASSPHRASE"
            )
        workspace._ca_passphrase = getpass.getpass(f"Passphrase for {workspace.ca_name}.key: ")
    return workspace


def echo(text: str = "") -> None:
    print(text, flush=True)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def show_command(command: str) -> None:
    note(f"  openssl equivalent: {command}")


