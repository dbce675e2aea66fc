"""``kittylab roster issue|revoke ROSTER.csv``: a workshop's certificates in one go, and its end."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..pki.ca import LEAF_DAYS
from ..pki.crl import REASONS
from ..pki.keys import KEY_KINDS
from ..render.handout import DEFAULT_URL
from ..workshop.roster import END_REASON, issue_roster, revoke_roster
from .options import echo, note, open_workspace, positive_int


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
    )
    echo(f"issued {len(result.issued)} client certificates, {len(result.skipped)} already issued (skipped)")
    echo(f"  summary for the teacher (holds every p12 password, mode 0600): {result.summary_csv}")
    echo(f"  a folder per participant to hand out: {result.out / 'handouts'}")
    _report_bad_rows(args.roster, result.errors)
    return 1 if result.errors else 0


def cmd_roster_revoke(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    result = revoke_roster(workspace, args.roster, reason=args.reason, out=args.out)
    echo(f"revoked {len(result.revoked)} certificates (reason {args.reason}),"
         f" {len(result.not_current)} had no current certificate")
    echo(f"published the CRL: {result.crl_path}: reload nginx or Apache so they read it")
    _report_bad_rows(args.roster, result.errors)
    return 1 if result.errors else 0


def _report_bad_rows(roster: Path, errors: list[tuple[int, str]]) -> None:
    for line, message in errors:
        note(f"kittylab: error: {roster} line {line}: {message} (row skipped)")


def register(subparsers: argparse._SubParsersAction) -> None:
    roster = subparsers.add_parser("roster", help="a workshop: certificates and handouts for a class roster")
    actions = roster.add_subparsers(dest="roster_action", metavar="ACTION", parser_class=type(roster))
    actions.required = True

    issue = actions.add_parser(
        "issue",
        help="a client certificate, p12 and handout per row of ROSTER.csv (header: name,email[,ou])",
        description="Issue a client certificate with a p12 and a generated password for every participant, a"
        " handout per participant and a summary CSV for the teacher. Bad rows are reported with their line"
        " number and skipped; participants who already hold a certificate are skipped too.",
    )
    issue.add_argument("roster", type=Path, metavar="ROSTER.csv")
    issue.add_argument("--key", default="p256", choices=KEY_KINDS, help="key type (default p256: fast)")
    issue.add_argument("--p12", action=argparse.BooleanOptionalAction, default=True,
                       help="write a p12 with a generated password per participant (default: yes)")
    issue.add_argument("--legacy-p12", action="store_true", help="3DES/SHA-1 p12 files for older macOS and Windows")
    issue.add_argument("--days", type=positive_int, default=LEAF_DAYS, help=f"validity (default {LEAF_DAYS})")
    issue.add_argument("--out", type=Path, metavar="DIR",
                       help="where the handouts and summary go (default: WORKSPACE/roster-NAME)")
    issue.add_argument("--url", default=DEFAULT_URL, help=f"the address participants open (default {DEFAULT_URL})")
    issue.add_argument("--title", help="the workshop's title on the handouts (default: Workshop NAME)")
    issue.add_argument("--workers", type=positive_int, metavar="N", help="worker processes (default: one per core)")
    issue.set_defaults(handler=cmd_roster_issue)

    revoke = actions.add_parser("revoke", help="end a workshop: revoke every participant's certificate, publish the CRL")
    revoke.add_argument("roster", type=Path, metavar="ROSTER.csv")
    revoke.add_argument("--reason", default=END_REASON, choices=REASONS, help=f"default {END_REASON}")
    revoke.add_argument("--out", type=Path, metavar="DIR",
                        help="where roster issue wrote the summary, to mark them revoked (default: WORKSPACE/roster-NAME)")
    revoke.set_defaults(handler=cmd_roster_revoke)
