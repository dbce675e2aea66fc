"""Keeping a CA running: ``passphrase`` (one CA key's passphrase), ``profile`` (what a profile may carry),
``log`` (the audit log), ``deploy`` (the folder a web server reads, and the hook that ships it), ``backup`` and ``restore``."""

from __future__ import annotations

import argparse
import getpass
import shlex
import sys
from pathlib import Path

from ..errors import KittylabError
from ..pki.files import read_password_file
from ..pki.keys import check_new_passphrase
from ..workspace import deploy
from ..workspace.backup import MANIFEST, backup, restore
from ..workspace.workspace import Workspace
from .options import Passphrases, command, command_line_fix, echo, emit, note, open_workspace, run_deploy_hook


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
    weak = check_new_passphrase(new)
    if weak:
        note(f"warning: {weak}{command_line_fix(weak)}")
    path = workspace.change_passphrase(args.name, new)
    echo(f"{path}: {'encrypted with the new passphrase' if new else 'no longer encrypted'} (mode 0600);"
         " the other CA keys are unchanged")
    if args.json:
        emit({"ca": args.name, "key": str(path), "encrypted": bool(new)})
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    if args.san_types is not None or args.any_san_type:
        kinds = None if args.any_san_type else [k.strip().lower() for k in args.san_types.split(",") if k.strip()]
        chosen = workspace.limit_profile(args.name, kinds)
    else:
        chosen = workspace.profile(args.name)
    echo(f"{chosen.name} certificates ({chosen.purpose}) may carry: {', '.join(chosen.san_kinds) or 'no'} names")
    if args.json:
        emit({"profile": chosen.name, "san_types": list(chosen.san_kinds), "purpose": chosen.purpose})
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    workspace = Workspace(args.home)
    settings = deploy.configure(workspace, directory=args.dir, server=args.server,
                                client_ca=args.client_ca if args.client_ca is not None else ...,
                                hook="" if args.no_hook else args.hook)
    where = deploy.folder(workspace)
    for server in settings.get("servers", []):
        try:
            deploy.server_files(workspace, server)
        except KittylabError as exc:
            note(f"kittylab: warning: not deployed: {exc}")
    deployed = run_deploy_hook(args, workspace)
    if not deployed:
        echo(f"{where} is up to date")
    echo(f"  servers: {', '.join(settings.get('servers', [])) or 'none yet (kittylab webconfig, or --server NAME)'};"
         f" hook: {settings.get('hook') or 'none'}")
    if args.json:
        emit({"dir": str(where), "deployed": deployed, **settings})
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    written = backup(Workspace(args.home), args.dir)
    echo(f"backed up {Path(args.home)} into {args.dir}: {len(written)} files (keys as they are: encrypted ones stay"
         f" encrypted), checksums in {MANIFEST}; restore with: kittylab --home NEW_HOME restore {args.dir}")
    if args.json:
        emit({"dir": str(args.dir), "files": [str(p) for p in written]})
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    workspace = restore(args.dir, args.home, passphrases=Passphrases(args))
    records = workspace.records()
    echo(f"restored {args.dir} into {workspace.home}: {len(records)} certificates, every file checked")
    forgotten = deploy.suspended(workspace)
    if forgotten:
        echo("the deploy folder and hook were not carried over (they are the original's: a restored copy never"
             f" deploys there); when this copy replaces the original: {_reenable_command(workspace.home, forgotten)}")
    if args.json:
        emit({"home": str(workspace.home), "certificates": len(records), "deploy_suspended": forgotten})
    return 0


def _reenable_command(home: Path, forgotten: dict) -> str:
    """The ``kittylab deploy`` command that turns a restore's forgotten deploy folder and hook on again."""
    parts = [f"kittylab --home {shlex.quote(str(home))} deploy"]
    if forgotten.get("dir"):
        parts.append(f"--dir {shlex.quote(forgotten['dir'])}")
    if forgotten.get("hook"):
        parts.append(f"--hook {shlex.quote(forgotten['hook'])}")
    return " ".join(parts)


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


def register(subparsers: argparse._SubParsersAction) -> None:
    with command(subparsers, "passphrase", cmd_passphrase, help="change the passphrase of one CA's key") as passphrase:
        passphrase.add_argument("name", metavar="CA", help="the CA whose key gets the new passphrase")
        given = passphrase.add_mutually_exclusive_group()
        given.add_argument("--new-passphrase-file", metavar="F", help="the new passphrase, F's first line (else asked for)")
        given.add_argument("--remove", action="store_true", help="store the key unencrypted (e.g. on an HSM-less test box)")

    with command(subparsers, "profile", cmd_profile,
                 help="show or limit which kinds of names a profile's certificates carry") as profile:
        profile.add_argument("name", choices=("client", "server"))
        limits = profile.add_mutually_exclusive_group()
        limits.add_argument("--san-types", metavar="KINDS",
                            help="only these, comma-separated: email, dns, ip, uri (e.g. --san-types email)")
        limits.add_argument("--any-san-type", action="store_true", help="lift the limit (every kind the profile allows)")

    with command(subparsers, "deploy", cmd_deploy,
                 help="refresh the deploy folder a web server reads, and run the hook") as deploying:
        deploying.add_argument("--dir", metavar="DIR", help="the deploy folder (default: HOME/deploy; remembered)")
        deploying.add_argument("--server", metavar="NAME", help="also deploy this server certificate and its key")
        deploying.add_argument("--client-ca", metavar="CA", help="also deploy the CA and CRL files for this CA's clients")
        hooks = deploying.add_mutually_exclusive_group()
        hooks.add_argument("--hook", metavar="CMD", help="remember CMD as the deploy hook (e.g. 'systemctl reload nginx')")
        hooks.add_argument("--no-hook", action="store_true", help="forget the deploy hook")
        deploying.set_defaults(deploy_hook=None)

    with command(subparsers, "backup", cmd_backup, help="copy the whole workspace into a new folder, consistent while"
                                                        " other commands run (keys stay as they are)") as saving:
        saving.add_argument("dir", type=Path, metavar="DIR", help="a new or empty folder")

    with command(subparsers, "restore", cmd_restore,
                 help="make the workspace (--home, new or empty) from a backup folder") as restoring:
        restoring.add_argument("dir", type=Path, metavar="DIR", help="a folder kittylab backup wrote")

    with command(subparsers, "log", cmd_log,
                 help="the audit log: who issued, signed, renewed, revoked what, and when") as log:
        log.add_argument("--name", metavar="NAME_OR_SERIAL", help="only the entries about this certificate or CA")
