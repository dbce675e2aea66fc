"""Upkeep of a running CA: ``deploy`` (the folder a web server reads, and the hook that ships
it), ``backup`` and ``restore``, ``repair`` (after a crash or a lost store) and ``export-openssl-db``
(the CA's database as ``openssl ca`` keeps it, to move on with OpenSSL).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..errors import KittylabError
from ..workspace import deploy
from ..workspace.backup import MANIFEST, backup, restore
from ..workspace.openssldb import export_openssl_db
from .options import (
    Passphrases,
    command,
    echo,
    emit,
    note,
    open_workspace,
    run_deploy_hook,
    show_command,
)


def cmd_deploy(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
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
    written = backup(open_workspace(args), args.dir)
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


def cmd_repair(args: argparse.Namespace) -> int:
    # Not open_workspace's check: a lost store (or its lost records) is what repair is for.
    done = open_workspace(args, existing=False).repair()
    for line in done:
        echo(line)
    if args.json:
        emit({"done": done})
    return 0


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


def register(commands: argparse._SubParsersAction) -> None:
    with command(commands, "deploy", cmd_deploy,
                 help="refresh the deploy folder a web server reads, and run the hook") as deploying:
        deploying.add_argument("--dir", metavar="DIR", help="the deploy folder (default: HOME/deploy; remembered)")
        deploying.add_argument("--server", metavar="NAME", help="also deploy this server certificate and its key")
        deploying.add_argument("--client-ca", metavar="CA", help="also deploy the CA and CRL files for this CA's clients")
        hooks = deploying.add_mutually_exclusive_group()
        hooks.add_argument("--hook", metavar="CMD", help="remember CMD as the deploy hook (e.g. 'systemctl reload nginx')")
        hooks.add_argument("--no-hook", action="store_true", help="forget the deploy hook")
        deploying.set_defaults(deploy_hook=None)


    with command(commands, "backup", cmd_backup, help="copy the whole workspace into a new folder, consistent while"
                                                        " other commands run (keys stay as they are)") as saving:
        saving.add_argument("dir", type=Path, metavar="DIR", help="a new or empty folder")


    with command(commands, "restore", cmd_restore,
                 help="make the workspace (--home, new or empty) from a backup folder") as restoring:
        restoring.add_argument("dir", type=Path, metavar="DIR", help="a folder kittylab backup wrote")


    with command(commands, "repair", cmd_repair,
                 help="after a crash or a lost store: rebuild the store from the workspace's files, fix published files"):
        pass  # no options of its own: only --json


    with command(commands, "export-openssl-db", cmd_export_openssl_db,
                 help="write index.txt, serial and openssl.cnf for openssl ca") as export:
        export.add_argument("--out", type=Path, metavar="DIR", help="the folder (default: HOME/openssl-db/CA)")
        export.add_argument("--ca", metavar="NAME", help="the CA to export (default: the issuing CA)")

