"""What every command shares: the parser, output, subject options and secrets from file, environment or prompt."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Callable, Iterable, Iterator, NoReturn

from cryptography import x509

from ..errors import KittylabError
from ..pki import openssl
from ..pki.files import read_password_file
from ..pki.keys import check_new_passphrase
from ..pki.names import Subject
from ..workspace import deploy
from ..workspace.renewal import parse_duration
from ..workspace.workspace import NAME_PATTERN, Workspace


class UsageError(KittylabError):
    """A command given wrongly (exit code 2, as argparse's own usage errors)."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CommandsParser(Parser):
    """The top-level parser: its ``--help`` lists the commands under the headings of their task families.

    argparse lists subcommands in one block; here each family's commands get a section of their own,
    formatted as argparse formats any section (``kittylab COMMAND --help`` is argparse's own).
    """

    def __init__(self, **kwargs: str) -> None:
        super().__init__(**kwargs)
        self.commands = add_commands(self, "command", "COMMAND")
        self.families: list[tuple[str, list[str]]] = []

    def add_family(self, title: str, register: Callable[[argparse._SubParsersAction], None]) -> None:
        """Add the commands ``register`` adds, listed in ``--help`` under ``title``."""
        before = len(self.commands.choices)
        register(self.commands)
        self.families.append((title, list(self.commands.choices)[before:]))

    def format_help(self) -> str:
        formatter = self._get_formatter()
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        formatter.add_text(self.description)
        listed = {action.dest: action for action in self.commands._get_subactions()}
        sections = [(title, [listed[name] for name in names]) for title, names in self.families]
        # The options as argparse lists them; the positional COMMAND is the families above.
        sections += [(group.title, group._group_actions) for group in self._action_groups if group is not self._positionals]
        for title, actions in sections:
            formatter.start_section(title)
            formatter.add_arguments(actions)
            formatter.end_section()
        formatter.add_text(self.epilog)
        return formatter.format_help()


def _whole_number(text: str, what: str) -> int:
    """``text`` as a number, or the usage mistake ``'x' is not a WHAT``."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None


def positive_int(text: str) -> int:
    value = _whole_number(text, "whole number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive whole number")
    return value


def duration(text: str) -> str:
    """A time such as ``30d``, ``12h`` or ``2w``, checked as the command line is read (a mistake is usage: exit 2)."""
    try:
        parse_duration(text)
    except KittylabError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def port_number(text: str) -> int:
    value = _whole_number(text, "port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def until_stopped(wait: Callable[[], object]) -> None:
    """Run ``wait`` (a server's loop) until Ctrl-C, or SIGTERM as a service manager sends it."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        wait()
    except KeyboardInterrupt:
        pass


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


def passphrase_variable(name: str) -> str:
    """The environment variable holding CA ``name``'s passphrase: ``KITTYLAB_CA_PASSPHRASE_ACME_ROOT``."""
    return "KITTYLAB_CA_PASSPHRASE_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def given_secrets(file: str | None, variable: str | None = None) -> Iterator[str]:
    """The secrets given for one use, in this order: ``file``'s first line, ``$variable`` (each only if given)."""
    if file:
        yield read_password_file(file)
    if variable and os.environ.get(variable):
        yield os.environ[variable]


def given_secret(file: str | None, variable: str | None = None) -> str | None:
    """The secret given for one use (``file``'s first line, else ``$variable``), or None."""
    return next(given_secrets(file, variable), None)


def secret(given: Iterable[str], prompt: str, *, missing: str, new: bool = False) -> str:
    """A secret: the first one ``given`` (a file's, the environment's), else asked for without echo on a terminal.

    ``new``: a new secret is asked for twice and may not be empty. Without a terminal to ask on, ``missing``
    is the error (it says where the secret can come from).
    """
    for each in given:
        return each
    if not sys.stdin.isatty():
        raise KittylabError(missing)
    first = getpass.getpass(prompt)
    if new and (not first or first != getpass.getpass("Again: ")):
        raise KittylabError("the passphrases are empty or do not match")
    return first


class Passphrases:
    """Each CA key's passphrase, as the command line gives them.

    For CA ``NAME``, most specific first: ``--ca-passphrase-file NAME=F``, ``$KITTYLAB_CA_PASSPHRASE_NAME``;
    then the ones for any CA: ``--ca-passphrase-file F``, ``$KITTYLAB_CA_PASSPHRASE``; then a prompt that
    names the CA (on a terminal). Only the CA whose key a command uses is asked for: issuing from an
    intermediate never needs the root's passphrase.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.files: dict[str, str] = {}
        self.generic_file: str | None = None
        for value in getattr(args, "ca_passphrase_file", None) or ():
            name, sep, path = str(value).partition("=")
            if sep and NAME_PATTERN.match(name) and not Path(value).exists():
                self.files[name] = path
            else:
                self.generic_file = str(value)

    def specific(self, name: str) -> str | None:
        """The passphrase given for CA ``name`` alone, if any."""
        if name in self.files:
            return read_password_file(self.files[name])
        return os.environ.get(passphrase_variable(name)) or None

    def generic(self) -> Iterator[str]:
        """The passphrases given for any CA."""
        return given_secrets(self.generic_file, "KITTYLAB_CA_PASSPHRASE")

    def __call__(self, name: str) -> Iterator[str]:
        given = False
        for each in chain(filter(None, [self.specific(name)]), self.generic()):
            given = True
            yield each
        if given and not sys.stdin.isatty():
            return  # each was tried on the key: no prompt to fall back on
        yield secret((), f"Passphrase for the CA key {name} ({name}.key): ", missing=(
            f"the key of the CA {name} is encrypted: give --ca-passphrase-file {name}=F"
            f" or set {passphrase_variable(name)} (or KITTYLAB_CA_PASSPHRASE)"))

    def new(self, name: str, *, first_ca: bool) -> str:
        """A passphrase for CA ``name``'s new key: its own (the ones for any CA only for the first CA)."""
        given = chain(filter(None, [self.specific(name)]), self.generic() if first_ca else ())
        return secret(given, f"New passphrase for the CA key {name} ({name}.key): " if not first_ca
                      else "Passphrase for the CA key: ", new=True, missing=(
            f"no passphrase for the new key of the CA {name}: give --ca-passphrase-file {name}=F"
            f" or set {passphrase_variable(name)}" + (" (or KITTYLAB_CA_PASSPHRASE)" if first_ca else
                                                    " (each CA key has its own passphrase)")))


def open_workspace(args: argparse.Namespace, *, existing: bool = True) -> Workspace:
    """The workspace of ``--home``; a CA key's passphrase is looked for when that key is first used.

    ``existing``: a mistyped ``--home`` is an error, not an empty workspace (monitoring that reads
    "nothing expires" from a folder that does not exist would say all is well).
    """
    workspace = Workspace(args.home, passphrases=Passphrases(args))
    if existing:
        workspace.check_exists()
    return workspace


class _Output:
    """Where human text goes: stdout, or stderr when ``--json`` keeps stdout for the JSON alone."""

    json = False


def set_json_output(on: bool) -> None:
    _Output.json = on


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout (the human text goes to stderr)")


def add_commands(parser: argparse.ArgumentParser, dest: str, metavar: str) -> argparse._SubParsersAction:
    """The subcommands of ``parser`` (one of them must be given), named in ``args.<dest>``."""
    commands = parser.add_subparsers(dest=dest, metavar=metavar, parser_class=Parser)
    commands.required = True
    return commands


@contextmanager
def command(commands: argparse._SubParsersAction, name: str, handler: Callable[[argparse.Namespace], int], *,
            json: bool = True, deploy_hook: bool = False, **kwargs: str) -> Iterator[argparse.ArgumentParser]:
    """Register the subcommand ``name`` (``kwargs``: its help, description) that ``handler`` runs.

    The ``with`` block adds the command's own options; after them come the ones commands share, last in
    its ``--help``: ``--json`` (``json``: it prints a result) and ``--deploy-hook`` (``deploy_hook``: it changes
    what the deploy folder holds).
    """
    parser = commands.add_parser(name, **kwargs)
    yield parser
    if json:
        add_json(parser)
    if deploy_hook:
        add_deploy_hook(parser)
    parser.set_defaults(handler=handler)


def add_listen_options(parser: argparse.ArgumentParser, *, port: int, free: bool = True) -> None:
    """``--port`` (``free``: 0 picks a free one) and ``--host`` of the server a command runs or configures."""
    parser.add_argument("--port", type=port_number, default=port,
                        help=f"the port (default {port}" + ("; 0 picks a free one)" if free else ")"))
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1, this machine only)")


def add_client_checks(parser: argparse.ArgumentParser) -> None:
    """``--client-ca`` and ``--ocsp``: whose clients a server lets in, and how it asks about revocation."""
    parser.add_argument("--client-ca", metavar="CA", help="let in the clients of this CA (default: the issuing CA)")
    parser.add_argument("--ocsp", metavar="URL",
                        help="ask this OCSP responder (kittylab ocsp-serve) instead of reading the CRL")


def add_p12_password_file(parser: argparse.ArgumentParser, flag: str = "--p12-password-file") -> None:
    parser.add_argument(flag, metavar="F", help="the p12 password (else one is generated)")


def add_deploy_hook(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deploy-hook", metavar="CMD",
                        help="run CMD (with sh) when the deploy folder changed; $KITTYLAB_DEPLOY_CHANGED names the"
                             " files, $KITTYLAB_DEPLOY_DIR the folder (default: the hook set with kittylab deploy)")


def run_deploy_hook(args: argparse.Namespace, workspace: Workspace) -> list[str]:
    """After a change: say which deploy files changed and run the deploy hook with them; return their paths."""
    changed = [str(path) for path in workspace.deployed]
    # Files whose hook run failed before are named again: the hook runs until it has succeeded once for them.
    retried = [path for path in deploy.pending(workspace) if path not in changed]
    if not changed and not retried:
        return []
    where = deploy.folder(workspace)
    if changed:
        echo(f"deployed to {where}: {', '.join(Path(path).name for path in changed)}")
    command = getattr(args, "deploy_hook", None) or deploy.hook(workspace)
    if retried and command:
        echo(f"the deploy hook failed last time for {', '.join(Path(path).name for path in retried)}: running it again")
    changed = sorted(changed + retried) if command else changed
    if not command:
        deploy.remember_hook_run(workspace, [], ok=True)  # no hook (any more): nothing is waiting to run
    else:
        env = dict(os.environ, KITTYLAB_DEPLOY_DIR=str(where), KITTYLAB_DEPLOY_CHANGED=" ".join(changed),
                   KITTYLAB_COMMAND=str(args.command))
        done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True)  # noqa: S602 - the user's own
        for line in (done.stdout + done.stderr).splitlines():
            note(f"  deploy hook: {line}")
        deploy.remember_hook_run(workspace, changed, ok=not done.returncode)
        if done.returncode:
            raise KittylabError(f"the change is done, but the deploy hook failed (exit {done.returncode}): {command};"
                                " the next kittylab deploy (or change) runs it again")
        echo(f"ran the deploy hook: {command}")
    return changed


def echo(text: str = "") -> None:
    print(text, file=sys.stderr if _Output.json else sys.stdout, flush=True)


def emit(data: object) -> None:
    """The machine-readable result, on stdout."""
    print(json.dumps(data, indent=2), flush=True)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def show_command(command: str) -> None:
    note(f"  openssl equivalent: {command}")


def show_reproduce(workspace: Workspace, certificate: x509.Certificate, issuer: str, *, csr_file: str, out: str) -> None:
    """The ``openssl req -CA`` line that makes the same certificate from the request, signed by CA ``issuer``."""
    show_command(openssl.reproduce(certificate, csr_file=csr_file, out=out, ca_cert=workspace.path(issuer, "crt").name,
                                   ca_key=workspace.path(issuer, "key").name))




#: The command line's words for the remedies the core names (``KittylabError.fix``).
FIXES = {
    "init": "kittylab init",
    "another-ca": "--home DIR for another workspace, or kittylab init --intermediate-of CA / --another-root",
    "new-intermediate": "kittylab init --cn NAME --intermediate-of ROOT",
    "path-length": "--path-length",
    "server-names": "--dns localhost --ip 127.0.0.1",
    "issue-server": "kittylab issue server {name} --dns localhost --ip 127.0.0.1",
    "crl": "kittylab crl",
    "p12-password": "--password-file F",
    "ca-name": "--ca-name NAME",
    "home": "--home DIR",
    "ca-passphrase": "--ca-passphrase-file F",
    "name": "--name",
    "trust-ca": "--ca kitty-ca.crt",
    "renew-no-p12": "kittylab renew NAME without --p12, or with --new-key",
    "crl-url": "--crl-url",
    "ocsp-url": "--ocsp-url",
    "ca-issuers-url": "--ca-issuers-url",
    "repair": "kittylab repair",
    "no-workspace": "check --home or $KITTYLAB_HOME, or make one with kittylab init",
    "drop-san": "a CSR's name: kittylab sign ... --drop-san {san}",
    "passphrase": "kittylab passphrase CA",
}


def explained(error: KittylabError) -> str:
    """The error's words and its remedy as the command line says it: ``wrong ... (kittylab passphrase CA)``."""
    return f"{error}{command_line_fix(error)}"


def warn_if_weak(passphrase: str | None) -> None:
    """A new CA key passphrase: one too short was refused (a KittylabError), a weak one is warned about."""
    weak = check_new_passphrase(passphrase)
    if weak:
        note(f"warning: {explained(weak)}")


def command_line_fix(error: KittylabError) -> str:
    """`` (kittylab init)``: the error's remedy as a command or flag, or nothing when it names none."""
    if error.fix not in FIXES:
        return ""
    try:
        return f" ({FIXES[error.fix].format(**error.details)})"
    except KeyError:
        return f" ({FIXES[error.fix]})"
