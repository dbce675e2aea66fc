"""Revoking and CRLs: ``revoke`` (a certificate, then its CA's CRL is published) and ``crl``
(a fresh CRL: one CA's, or every CA's that still answers for what it issued).
"""

from __future__ import annotations

import argparse

from ..errors import KittylabError
from ..pki import openssl
from ..pki.crl import REASONS
from ..pki.facts import when
from ..workspace import deploy
from ..workspace.workspace import Workspace
from .options import (
    command,
    echo,
    emit,
    explained,
    note,
    open_workspace,
    positive_int,
    run_deploy_hook,
    show_command,
)


def cmd_revoke(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    revoked = workspace.revoke_many([args.target], reason=args.reason)
    record = revoked[0]
    echo(f"revoked {record.name} (serial {record.serial_hex}, reason {args.reason})")
    for older in revoked[1:]:
        echo(f"revoked {older.name}'s superseded certificate too (serial {older.serial_hex}): it was still valid")
    crl_path = workspace.path(record.issuer, "crl")
    days, why = workspace.crl_validity(record.issuer)
    echo(f"published the CRL: {crl_path}, valid {days:g} days ({why})")
    deployed = run_deploy_hook(args, workspace)
    if not (getattr(args, "deploy_hook", None) or deploy.hook(workspace)):
        note("reload nginx or Apache so they read it (or give a --deploy-hook that does)")
    if args.json:
        emit(dict(record.as_dict(), crl=str(crl_path), deployed=deployed,
                  superseded_revoked=[older.serial_hex for older in revoked[1:]]))
    show_command(openssl.revoke(f"{record.name}.crt", reason=args.reason))
    show_command(openssl.gencrl(crl_path.name))
    return 0


def cmd_crl(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    if args.all and args.ca:
        raise KittylabError("give --ca NAME or --all, not both")
    names = issuing_cas(workspace) if args.all else [args.ca or workspace.ca_name]
    published, failed = [], []
    for name in names:
        why = "given with --days" if args.days else workspace.crl_validity(name)[1]
        try:
            crl = workspace.publish_crl(next_update_days=args.days, ca=name)
        except KittylabError as error:
            if not args.all:
                raise
            # One CA whose key cannot be used (its passphrase not given) does not stop the others' CRLs.
            failed.append(name)
            note(f"kittylab: error: the CRL of {name} was not published: {explained(error)}")
            published.append({"ca": name, "error": explained(error)})
            continue
        crl_path = workspace.path(name, "crl")
        echo(f"published {crl_path}: {len(crl)} revoked, valid until {when(crl.next_update_utc)} ({why})")
        days = (crl.next_update_utc - crl.last_update_utc).days
        published.append({"ca": name, "crl": str(crl_path), "revoked": len(crl), "days": days, "validity": why,
                          "next_update": crl.next_update_utc.isoformat()})
        show_command(openssl.gencrl(crl_path.name, days=days))
    warning = workspace.crl_warning()
    if warning:
        note(f"warning: {warning}")
    run_deploy_hook(args, workspace)
    if args.json:
        emit(published)
    if failed:
        note(f"kittylab: error: {len(failed)} of {len(names)} CRLs not published: {', '.join(failed)}")
    return 1 if failed else 0


def issuing_cas(workspace: Workspace) -> list[str]:
    """``crl --all``: the CAs that still answer for certificates, but not those that only sign CAs (the
    offline roots, refreshed by hand with ``crl --ca ROOT``)."""
    answerable = workspace.crl_answerable()
    signs_leaves = {r.issuer for r in workspace.records(include_ca=False)}
    return [name for name in answerable if name in signs_leaves or name == workspace.ca_name]


def register(commands: argparse._SubParsersAction) -> None:
    with command(commands, "revoke", cmd_revoke, deploy_hook=True, help="revoke a certificate and publish the CRL") as revoke:
        revoke.add_argument("target", metavar="NAME_OR_SERIAL")
        revoke.add_argument("--reason", default="unspecified", choices=REASONS)


    with command(commands, "crl", cmd_crl, deploy_hook=True, help="publish a fresh CRL and show when it expires") as crl:
        crl.add_argument("--days", type=positive_int, default=None,
                         help="valid for this many days, remembered for this CA (default: as last given, else 30;"
                              " 365 for a CA that signs CAs)")
        crl.add_argument("--ca", metavar="NAME", help="the CA whose CRL to publish (default: the issuing CA)")
        crl.add_argument("--all", action="store_true",
                         help="every CA that still answers for certificates it issued (a replaced CA too, until its"
                              " last certificate expires); the roots that only sign CAs are left to --ca ROOT")

