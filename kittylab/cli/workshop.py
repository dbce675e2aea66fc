"""A class (a workshop): ``roster issue`` (a certificate, p12 and handout per row of ROSTER.csv; run again for late
arrivals), ``roster revoke`` (participants, or the whole class at its end) and ``roster export-p12`` (new p12
files, legacy ones for Macs by default)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import KittylabError
from ..pki.crl import REASONS
from ..pki.keys import KEY_KINDS
from ..render.handout import DEFAULT_URL
from ..workshop.roster import END_REASON, WORKSHOP_DAYS, export_roster_p12, issue_roster, revoke_roster
from .options import add_commands, command, echo, emit, note, open_workspace, positive_int

R = TypeVar("R")


def cmd_roster_issue(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    result = issue_roster(
        workspace,
        args.roster,
        key=args.key,
        p12=args.p12,
        legacy_p12=args.legacy_p12,
        days=args.days,
        out=args.out,
        url=args.url,
        title=args.title,
        workers=args.workers,
        reissue=args.reissue,
    )
    issued = result.issued
    if result.continued:
        echo(f"continuing the workshop in {result.continued}: it holds people of this roster"
             " (--out DIR starts a separate workshop)")
    if result.reused:
        echo("this workshop's settings kept (give them again to change them): "
             + ", ".join(f"--{name} {value}" for name, value in result.reused.items()))
    echo(f"issued {len(issued)} client certificates, {result.already} already issued (skipped)")
    for file, name in issued:
        echo(f"  issued: {name} ({file})")
    if result.kept_revoked:
        echo(f"kept revoked {len(result.kept_revoked)} (--reissue NAME issues a new certificate): "
             + ", ".join(result.kept_revoked))
    if result.completed:
        echo(f"completed after an interrupted run {len(result.completed)}: " + ", ".join(result.completed))
    for line in result.elsewhere_lines():
        echo(line)
    echo(f"  summary for the teacher (holds every p12 password, mode 0600): {result.summary_csv}")
    echo(f"  a folder per participant to hand out: {result.handouts}")
    for line, message in result.duplicates:
        note(f"kittylab: note: {args.roster} line {line}: {message}")
    _report_bad_rows(args.roster, result.errors)
    hints = {"url": " (--url https://HOST:8443/)",
             "modern-p12": f" (kittylab roster export-p12 {args.roster} --legacy [--who NAME])",
             "elsewhere": f" (kittylab roster export-p12 {args.roster} --legacy)",
             "constraints": " (kittylab --home NEW init --cn workshop-ca --permit-dns HOST; or in this workspace add --another-root)",
             "host": " (kittylab issue server workshop-server --dns HOST, then kittylab serve --name workshop-server)"}
    for kind, warning in result.warnings.items():
        note(f"kittylab: warning: {warning}{hints.get(kind, '')}")
    return _outcome(args, result.errors, {
        "issued": [{"name": name, "file": str(file)} for file, name in issued], "already": result.already,
        "summary": str(result.summary_csv), "handouts": str(result.handouts),
        "continued": str(result.continued) if result.continued else None, "kept_settings": result.reused,
        "elsewhere": [{"name": name, "folder": str(folder)} for name, folder in result.elsewhere],
    })


def cmd_roster_revoke(args: argparse.Namespace) -> int:
    result = _for_participants(args, revoke_roster, reason=args.reason)
    # Only errors (an unknown or ambiguous name): the errors say it all, on stderr with the outcome.
    say = echo if result.revoked or result.not_current or not result.errors else note
    for line in result.report():
        say(line)
    if result.revoked:
        echo("  reload nginx or Apache so they read it (kittylab serve reads it by itself)")
        if args.reason is None and result.reason != END_REASON:
            note("kittylab: note: revoked with reason unspecified: a lost or stolen laptop is --reason key-compromise")
    _report_summaries(args.roster, result.summaries, result.errors)
    return _outcome(args, result.errors, {"revoked": [{"name": r.name, "serial": r.serial_hex} for r in result.revoked],
                                          "summaries": [str(p) for p in result.summaries]})


def cmd_roster_export_p12(args: argparse.Namespace) -> int:
    result = _for_participants(args, export_roster_p12, legacy=args.legacy)
    for line in result.report():
        echo(line)
    _report_summaries(args.roster, result.summaries, result.errors)
    if any(": revoked on " in message for _, message in result.errors):
        note("kittylab: hint: a revoked participant gets a new certificate (and p12) with"
             " kittylab roster issue ROSTER.csv --reissue EMAIL")
    return 1 if result.errors else 0


def _for_participants(args: argparse.Namespace, action: Callable[..., R], **options: object) -> R:
    """``action`` (revoke_roster, export_roster_p12) for the participants the command names (a roster file or
    ``--who``), in the workshop folder of ``--out``."""
    workspace = open_workspace(args)
    if args.roster is None and not args.who:
        raise KittylabError("name the participants: a roster file, or --who NAME (a name, email or file name)")
    return action(workspace, args.roster, who=args.who, out=args.out, **options)


def _report_summaries(roster: Path | None, summaries: list[Path], errors: list[tuple[int, str]]) -> None:
    """The summary files a revocation or a p12 export updated, and the roster rows it skipped."""
    for path in summaries:
        echo(f"  summary updated: {path}")
    _report_bad_rows(roster, errors)


def _outcome(args: argparse.Namespace, errors: list[tuple[int, str]], result: dict) -> int:
    """The exit code (1 when rows or names were skipped); with ``--json``, the result and what was skipped on stdout."""
    if args.json:
        emit({**result, "errors": [{"line": line, "message": message} for line, message in errors]})
    return 1 if errors else 0


def _report_bad_rows(roster: Path | None, errors: list[tuple[int, str]]) -> None:
    for line, message in errors:
        where = f"{roster} line {line}: " if line else ""
        note(f"kittylab: error: {where}{message}" + (" (row skipped)" if line else ""))


def _add_participants(parser: argparse.ArgumentParser, roster_help: str) -> None:
    """Whom a command is for: ``ROSTER.csv`` (optional) and ``--who NAME``."""
    parser.add_argument("roster", type=Path, metavar="ROSTER.csv", nargs="?", help=roster_help)
    parser.add_argument("--who", action="append", default=[], metavar="NAME",
                        help="a participant by name, email or file name (repeat it)")


def _add_workshop_folder(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, metavar="DIR", help="the workshop's folder (default: found in the workspace)")


def register(commands: argparse._SubParsersAction) -> None:
    actions = add_commands(commands.add_parser("roster", help="a workshop: certificates and handouts for a class roster"),
                           "roster_action", "ACTION")

    with command(
        actions, "issue", cmd_roster_issue,
        help="a client certificate, p12 and handout per row of ROSTER.csv (header: name,email[,ou][,id])",
        description="Issue a client certificate with a p12 and a generated password for every participant, a"
        " handout per participant and a summary CSV for the teacher. Bad rows are reported with their line"
        " number and skipped. Run it again for late arrivals: only people who never had a certificate are"
        " issued; revoked ones stay revoked unless named with --reissue.",
    ) as issue:
        issue.add_argument("roster", type=Path, metavar="ROSTER.csv")
        issue.add_argument("--key", default="p256", choices=KEY_KINDS, help="key type (default p256: fast)")
        issue.add_argument("--p12", action=argparse.BooleanOptionalAction, default=True,
                           help="write a p12 with a generated password per participant (default: yes)")
        issue.add_argument("--legacy-p12", action="store_true",
                           help="3DES/SHA-1 p12 files for macOS Keychain, older Windows and Java")
        issue.add_argument("--days", type=positive_int, default=None,
                           help=f"validity: as long as the workshop (default {WORKSHOP_DAYS} days, or what this workshop used before)")
        issue.add_argument("--out", type=Path, metavar="DIR",
                           help="where the handouts and summary go (default: WORKSPACE/roster-NAME)")
        issue.add_argument("--url", help=f"the https:// address participants open (give it: without it the handouts say"
                                         f" {DEFAULT_URL} is a placeholder); a re-run keeps the workshop's")
        issue.add_argument("--title", help="the workshop's title on the handouts (default: Workshop NAME, or the workshop's)")
        issue.add_argument("--workers", type=positive_int, metavar="N", help="worker processes (default: one per core)")
        issue.add_argument("--reissue", action="append", default=[], metavar="NAME",
                           help="issue a new certificate to this revoked participant (name, email or file name; repeat it)")

    with command(actions, "revoke", cmd_roster_revoke,
                 help="revoke participants (a roster, or --who NAME) and publish the CRL; the whole roster ends a workshop") as revoke:
        _add_participants(revoke, "the participants to revoke (matched by email, else name)")
        revoke.add_argument("--reason", choices=REASONS,
                            help=f"default {END_REASON} when everyone left is revoked (the end), else unspecified")
        _add_workshop_folder(revoke)

    with command(actions, "export-p12", cmd_roster_export_p12, json=False,
                 help="new p12 files (legacy by default) with new passwords for chosen participants, handouts updated") as export:
        _add_participants(export, "the participants (e.g. the Mac users)")
        export.add_argument("--legacy", action=argparse.BooleanOptionalAction, default=True,
                            help="3DES with a SHA-1 MAC, for macOS Keychain (default); --no-legacy: modern AES-256")
        _add_workshop_folder(export)
