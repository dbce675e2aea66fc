"""The ``kittylab`` command line: the same moves as the notebooks, for scripts and terminals.

Each task family is a module with ``register(commands)`` and a heading of its own in ``kittylab --help``
(:data:`FAMILIES`); each handler takes the parsed arguments and returns an exit code. Anything a user
can fix ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Callable, Sequence

from ..errors import KittylabError
from ..workspace.workspace import default_home, set_audit_command
from . import inspecting, issuing, revoking, servers, setting_up, upkeep, workshop
from .options import CommandsParser, UsageError, explained, note, set_json_output

#: The task families, each a module, in the order ``kittylab --help`` lists them under these headings.
FAMILIES = (
    ("setting up a CA", setting_up),
    ("issuing certificates", issuing),
    ("revoking and CRLs", revoking),
    ("looking at what was issued", inspecting),
    ("servers and clients", servers),
    ("a class", workshop),
    ("upkeep", upkeep),
)


def build_parser() -> CommandsParser:
    parser = CommandsParser(prog="kittylab", description="Run a small certificate authority for mutual TLS.",
                            epilog="kittylab COMMAND --help says what a command does and takes.")
    parser.add_argument("--home", type=Path, default=None,
                        help="the workspace folder (default: $KITTYLAB_HOME or ./kitty-workspace)")
    parser.add_argument("--ca-passphrase-file", metavar="[CA=]F", action="append",
                        help="read a CA key's passphrase from F's first line: CA=F for the CA named CA alone,"
                             " F for any CA (repeatable; or set KITTYLAB_CA_PASSPHRASE_CA or KITTYLAB_CA_PASSPHRASE)")
    for title, family in FAMILIES:
        parser.add_family(title, family.register)
    return parser


def run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Call a handler, turning every error a user can fix into one line on stderr."""
    set_json_output(bool(getattr(args, "json", False)))
    try:
        return handler(args)
    except UsageError as exc:
        note(f"kittylab: error: {exc} (see kittylab {args.command} --help)")
        return 2
    except KittylabError as exc:
        note(f"kittylab: error: {explained(exc)}")
    except KeyboardInterrupt:
        note("kittylab: interrupted")
        return 130
    except BrokenPipeError:
        # The reader (``| head``) has gone: stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        note(f"kittylab: error: {exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The audit log names the command of every change (secrets never come on the command line).
    set_audit_command(shlex.join(["kittylab", *(sys.argv[1:] if argv is None else [str(a) for a in argv])]))
    if args.home is None:
        args.home = default_home()
    return run(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
