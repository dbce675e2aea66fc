"""Looking at what the CAs issued, changing nothing: ``list``, ``show`` (a certificate, or a CSR
file before signing it), ``verify``, ``expiring`` (what needs renewing; ``--check`` for monitoring)
and ``log`` (the audit log).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography import x509

from ..errors import KittylabError
from ..pki import openssl
from ..pki.ca import load_certificate
from ..pki.csr import load_csr
from ..pki.facts import Record, format_summary, summarize, when
from ..pki.files import read_input
from ..pki.grant import summarize_request
from ..workspace.renewal import due, due_crls, parse_duration
from ..workspace.workspace import Workspace
from .options import (
    command,
    duration,
    echo,
    emit,
    note,
    open_workspace,
    show_command,
)


def cmd_list(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    unsafe = workspace.permission_warning()
    if unsafe:
        note(f"warning: {unsafe}")
    records = workspace.records()
    crl = workspace.current_crl()
    # Each CA (a root, its intermediates, a second root) publishes its own CRL.
    crls = {name: c for name in workspace.ca_names() if (c := workspace.current_crl(name)) is not None}
    warning = workspace.crl_warning()
    if args.json:
        emit({
            "certificates": [record.as_dict() for record in records],
            "crl_next_update": crl.next_update_utc.isoformat() if crl else None,
            "crl_warning": warning,
            "crls": {name: c.next_update_utc.isoformat() for name, c in crls.items()},
        })
    else:
        rows = [(r.name, r.profile, r.status(), r.not_after.strftime("%Y-%m-%d"), r.serial_hex) for r in records]
        header = ("NAME", "PROFILE", "STATUS", "EXPIRES", "SERIAL")
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        if crls:
            echo()
        for name, each in crls.items():
            label = "CRL" if len(crls) == 1 else f"CRL of {name}"
            echo(f"{label}: {len(each)} revoked, next update {when(each.next_update_utc)}")
    if warning:
        note(f"warning: {warning}")
    return 0


#: What ``show`` reads as a file name, never as a certificate's name (a missing file is said to be one).
FILE_SUFFIXES = (".csr", ".req", ".crt", ".cer", ".pem", ".der")


def cmd_show(args: argparse.Namespace) -> int:
    looks_like_a_file = Path(args.target).suffix.lower() in FILE_SUFFIXES or "/" in args.target
    if Path(args.target).is_file() or looks_like_a_file:  # a file someone sent: a CSR (or a certificate) to read
        data = read_input(Path(args.target), "certificate or CSR")
        if b"CERTIFICATE REQUEST" in data:
            summary = summarize_request(load_csr(data))
        else:
            certificate = load_certificate(data)
            summary = summarize(certificate, _record_of(args, certificate))
    else:
        workspace = open_workspace(args)
        record = workspace.find(args.target)
        summary = summarize(record.certificate, record)
        if record.profile == "ca":
            summary["issues_with"] = workspace.ca_urls(record.name).as_dict()
    if args.json:
        emit(summary)
    else:
        echo(format_summary(summary))
    return 0


def _record_of(args: argparse.Namespace, certificate: x509.Certificate) -> Record | None:
    """The workspace's record of a certificate file, when the workspace issued this very certificate: then
    ``show FILE`` says what ``show NAME`` says (revoked, superseded), not only what the dates say."""
    try:
        with Workspace(args.home) as workspace:  # opening never writes; no workspace is no record
            record = workspace.by_serial(certificate.serial_number) if workspace.exists else None
    except KittylabError:
        return None
    return record if record is not None and record.certificate == certificate else None


def cmd_verify(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    result = workspace.verify(args.cert, purpose=args.purpose)
    echo(str(result))
    show_command(openssl.verify(str(args.cert), workspace.chain_path().name, purpose=args.purpose,
                                crl=workspace.crl_chain_path().name, every_level=len(workspace.chain()) > 1))
    return 0 if result.ok else 1


def cmd_expiring(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    window = parse_duration(args.within)
    items = due(workspace, window)
    crls = due_crls(workspace, window)
    if args.json:
        emit([item.as_dict() for item in [*crls, *items]])
    elif args.check:
        echo(check_summary(items, crls, args.within))
    elif not items and not crls:
        echo(f"nothing expires within {args.within} (certificates, CA certificates and CRLs)")
    else:
        for each in [*crls, *items]:
            echo(each.describe())
        renewable = [item.record.name for item in items if item.renewable]
        if renewable:
            note(f"renew with: kittylab renew {' '.join(renewable)}")
    # --check: the exit code is for monitoring (1 when something is due); else listing is the job done.
    return 1 if args.check and (items or crls) else 0


def check_summary(items: list, crls: list, within: str) -> str:
    """``expiring --check``'s one line, for a monitoring system's status text."""
    if not items and not crls:
        return f"OK: nothing expires within {within} (certificates, CA certificates and CRLs)"
    parts = [f"CRL of {c.ca} {'missing' if c.left is None else _short(c.left)}" for c in crls]
    parts += [f"{i.record.name} {_short(i.left)}" for i in items]
    return f"DUE: {len(crls) + len(items)} within {within}: " + "; ".join(parts)


def _short(left) -> str:
    hours = left.total_seconds() / 3600
    if hours <= 0:
        return "expired"
    return f"in {hours / 24:.0f}d" if hours >= 24 else f"in {hours:.0f}h"


def cmd_log(args: argparse.Namespace) -> int:
    entries = open_workspace(args).audit_log()
    if args.name:
        entries = [e for e in entries if args.name in (e.name, e.serial)]
    if args.json:
        emit([entry.as_dict() for entry in entries])
    else:
        for entry in entries:
            echo(entry.describe())
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    with command(commands, "list", cmd_list, help="everything the CA issued, with status"):
        pass  # no options of its own: only --json


    with command(commands, "show", cmd_show, help="what a certificate (or a CSR file, before signing it) says") as show:
        show.add_argument("target", metavar="NAME_OR_SERIAL_OR_FILE")


    with command(commands, "verify", cmd_verify, json=False,
                 help="check a certificate against the CA and its CRL") as verify:
        verify.add_argument("cert", type=Path, metavar="CERT_FILE")
        verify.add_argument("--purpose", choices=("client", "server"))


    with command(commands, "expiring", cmd_expiring, help="what expires soon (or has) and needs renewing") as expiring:
        expiring.add_argument("--within", type=duration, default="30d", metavar="30d",
                              help="a time such as 30d, 12h or 2w (default 30d)")
        expiring.add_argument("--check", action="store_true",
                              help="for monitoring: one line, and exit 1 when something is due (0 when nothing is)")


    with command(commands, "log", cmd_log,
                 help="the audit log: who issued, signed, renewed, revoked what, and when") as log:
        log.add_argument("--name", metavar="NAME_OR_SERIAL", help="only the entries about this certificate or CA")

