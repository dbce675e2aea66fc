"""``kittylab ocsp-serve``, ``publish``, ``expiring``, ``renew``, ``export-openssl-db`` and ``import``: beyond the article."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import KittylabError
from ..net.http_service import HttpService
from ..net.ocsp import OcspServer
from ..net.publisher import Publisher
from ..pki.files import read_password_file
from ..workspace.openssldb import export_openssl_db, import_ca_directory
from ..workspace.renewal import due, due_crls, parse_duration
from ..workspace.workspace import Workspace
from .issuing import echo_files, issued_json
from .options import (
    Passphrases,
    UsageError,
    add_listen_options,
    add_p12_password_file,
    ca_passphrase,
    command,
    command_line_fix,
    duration,
    echo,
    emit,
    note,
    open_workspace,
    positive_int,
    run_deploy_hook,
    show_command,
    until_stopped,
)


def cmd_ocsp_serve(args: argparse.Namespace) -> int:
    server = OcspServer(args.home, passphrases=Passphrases(args), host=args.host, port=args.port, log=note)
    names = ", ".join(server.responder.workspace.ca_names())
    echo(f"OCSP responder for {names} at {server.url} (Ctrl-C stops)")
    ca = server.responder.workspace.ca_certificate_path
    show_command(f"openssl ocsp -issuer {ca} -cert CERT.crt -url {server.url} -CAfile {ca} -resp_text")
    return _serve_until_stopped(server)


def cmd_publish(args: argparse.Namespace) -> int:
    publisher = Publisher(args.home, host=args.host, port=args.port, log=note)
    echo(f"publishing at {publisher.url}, read live from {publisher.workspace.home} (Ctrl-C stops):")
    for path in publisher.paths():
        echo(f"  {publisher.url}{path}")
    first = publisher.paths()[1]
    show_command(f"openssl crl -inform DER -in <(curl -s {publisher.url}{first}) -noout -text")
    return _serve_until_stopped(publisher)


def _serve_until_stopped(service: HttpService) -> int:
    until_stopped(service.serve_forever)
    note("stopped")
    return 0


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


def cmd_renew(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    p12_password = read_password_file(args.p12_password_file) if args.p12_password_file else None
    names = list(args.names)
    if not names and args.expiring is None:
        raise UsageError("give NAME, or --expiring 30d for everything due")
    if args.expiring is not None:
        names += [item.record.name for item in due(workspace, parse_duration(args.expiring)) if item.renewable]
    renewed, failed = [], []
    for name in dict.fromkeys(names):
        # One certificate that cannot be renewed does not stop the others: each failure is one line.
        had_p12 = workspace.path(name, "p12").exists()
        try:
            issued = workspace.renew(name, new_key=args.new_key, days=args.days, p12=args.p12 or bool(p12_password),
                                     p12_password=p12_password, ca=args.ca)
        except KittylabError as error:
            failed.append({"name": name, "error": f"{error}{command_line_fix(error)}"})
            note(f"kittylab: error: {name} not renewed: {error}{command_line_fix(error)}")
            continue
        old_p12 = None if "p12" in issued.files or not had_p12 else \
            "stale" if workspace.path(name, "p12").exists() else "removed"
        renewed.append(dict(issued_json(issued), old_p12=old_p12))
        echo(f"renewed {name}: serial {issued.record.serial_hex}, valid until {issued.record.not_after:%Y-%m-%d}"
             f" ({'a new key' if args.new_key else 'the same key'}); the previous certificate is superseded")
        echo_files(issued)
        if old_p12 == "stale":
            note(f"warning: {name}.p12 still holds the superseded certificate: refresh it with kittylab export-p12"
                 f" {name} (or renew with --p12)")
        elif old_p12 == "removed":
            note(f"warning: removed {name}.p12: it held the old key; make a new one with kittylab export-p12 {name}"
                 " (or renew with --p12)")
    if not names:
        echo(f"nothing to renew: nothing is due within {args.expiring}")
    deployed = run_deploy_hook(args, workspace)
    if args.json:
        emit({"renewed": renewed, "failed": failed, "deployed": deployed})
    if failed and renewed:
        note(f"kittylab: error: {len(failed)} of {len(failed) + len(renewed)} could not be renewed:"
             f" {', '.join(f['name'] for f in failed)}")
    return 1 if failed else 0


def cmd_export_openssl_db(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    out = args.out or workspace.home / "openssl-db" / (args.ca or workspace.ca_name)
    export = export_openssl_db(workspace, out, ca=args.ca)
    echo(f"wrote {export.index}, serial, crlnumber, newcerts/, {export.config} and {export.extensions}")
    for line in export.notes:
        note(f"note: {line}")
    show_command(export.gencrl_command())
    show_command(export.ocsp_command())
    if args.json:
        emit({"folder": str(export.folder), "index": str(export.index), "config": str(export.config),
              "notes": list(export.notes)})
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    workspace = open_workspace(args, existing=False)  # import may make the workspace
    given = Passphrases(args)
    # The CA's own passphrase (--ca-passphrase-file NAME=F, $KITTYLAB_CA_PASSPHRASE_NAME), else the one for any CA.
    result = import_ca_directory(workspace, args.source, ca_name=args.ca_name,
                                 passphrase=lambda name: given.specific(name) or ca_passphrase(args))
    echo(f"{result.summary()} into {workspace.home}")
    for line in result.notes:
        note(f"note: {line}")
    echo(f"published the CRL: {workspace.path(result.ca, 'crl')}")
    if args.json:
        emit({"ca": result.ca, "certificates": [r.as_dict() for r in result.certificates], "keys": result.keys,
              "notes": result.notes, "crl": str(workspace.path(result.ca, "crl"))})
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    workspace = Workspace(args.home, ca_passphrase=ca_passphrase(args))
    if not workspace.home.is_dir():
        raise KittylabError(f"no workspace at {workspace.home}: check --home (or $KITTYLAB_HOME)")
    done = workspace.repair()
    for line in done:
        echo(line)
    if args.json:
        emit({"done": done})
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    with command(subparsers, "ocsp-serve", cmd_ocsp_serve, json=False,
                 help="answer OCSP requests for the workspace's CAs over HTTP") as serve:
        add_listen_options(serve, port=8888)

    with command(subparsers, "publish", cmd_publish, json=False,
                 help="serve each CA's CRL (/NAME.crl) and certificate (/NAME.crt) over HTTP") as publish:
        add_listen_options(publish, port=8080)

    with command(subparsers, "expiring", cmd_expiring, help="what expires soon (or has) and needs renewing") as expiring:
        expiring.add_argument("--within", type=duration, default="30d", metavar="30d",
                              help="a time such as 30d, 12h or 2w (default 30d)")
        expiring.add_argument("--check", action="store_true",
                              help="for monitoring: one line, and exit 1 when something is due (0 when nothing is)")

    with command(subparsers, "renew", cmd_renew, deploy_hook=True,
                 help="a new certificate for the same key (or a new key); the old one is superseded") as renew:
        renew.add_argument("names", nargs="*", metavar="NAME")
        renew.add_argument("--new-key", action="store_true", help="make a new key too (default: keep the key)")
        renew.add_argument("--days", type=positive_int, default=None, help="validity (default: as before)")
        renew.add_argument("--expiring", type=duration, metavar="30d", help="also renew everything due within this time")
        renew.add_argument("--p12", action="store_true", help="also write a new NAME.p12")
        add_p12_password_file(renew)
        renew.add_argument("--ca", metavar="NEW_CA", help="move to this CA (a rotation; default: the same CA as before)")

    with command(subparsers, "export-openssl-db", cmd_export_openssl_db,
                 help="write index.txt, serial and openssl.cnf for openssl ca") as export:
        export.add_argument("--out", type=Path, metavar="DIR", help="the folder (default: HOME/openssl-db/CA)")
        export.add_argument("--ca", metavar="NAME", help="the CA to export (default: the issuing CA)")

    with command(subparsers, "repair", cmd_repair,
                 help="after a crash or a lost store: rebuild the store from the workspace's files, fix published files"):
        pass  # no options of its own: only --json

    with command(subparsers, "import", cmd_import,
                 help="bring in an openssl ca directory or an easy-rsa pki folder") as importer:
        importer.add_argument("source", type=Path, metavar="DIR")
        importer.add_argument("--ca-name", metavar="NAME", help="name the CA in the workspace (default: from its CN)")
