"""Issuing certificates: ``issue`` (a key, a CSR and a certificate in one go), ``sign`` (a CSR
someone sent, shown before it is signed), ``export-p12`` and ``renew``; and the files and JSON every
certificate made is reported with.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import KittylabError
from ..pki import openssl
from ..pki.ca import LEAF_DAYS
from ..pki.files import write_atomically
from ..pki.keys import KEY_KINDS
from ..workspace.renewal import due, parse_duration
from ..workspace.workspace import Issued
from .options import (
    UsageError,
    add_commands,
    add_p12_password_file,
    add_subject_options,
    command,
    duration,
    echo,
    emit,
    explained,
    given_secret,
    note,
    open_workspace,
    positive_int,
    run_deploy_hook,
    show_command,
    show_reproduce,
    subject_from,
)


def cmd_issue(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    profile = args.profile
    defaults = workspace.default_subject(args.name, ca=args.ca)
    # A client's email is a SAN; a server certificate carries no email SAN, so there it goes in the subject.
    subject = subject_from(args, args.name, defaults, email=(args.email or "") if profile == "server" else "")
    p12_password = given_secret(getattr(args, "p12_password_file", None))
    issued = workspace.issue(
        args.name,
        profile=profile,
        subject=subject,
        key=args.key,
        days=args.days,
        dns=getattr(args, "dns", None) or (),
        ip=getattr(args, "ip", None) or (),
        email=[args.email] if args.email and profile == "client" else (),
        p12=getattr(args, "p12", False),
        p12_password=p12_password,
        legacy_p12=getattr(args, "legacy_p12", False),
        ca=args.ca,
    )
    echo(f"issued {profile} certificate {issued.name} (serial {issued.record.serial_hex})")
    echo_files(issued)
    deployed = run_deploy_hook(args, workspace)
    if args.json:
        emit(dict(issued_json(issued), deployed=deployed))
    files = issued.files
    show_command(openssl.genkey(args.key, files["key"].name))
    show_command(openssl.csr(files["key"].name, files["csr"].name, subject, sans=openssl.sans_of(issued.certificate)))
    show_reproduce(workspace, issued.certificate, issued.record.issuer, csr_file=files["csr"].name, out=files["crt"].name)
    if "p12" in files:
        show_command(openssl.pkcs12(files["key"].name, files["crt"].name, workspace.chain_path(args.ca).name,
                                    files["p12"].name, name=issued.name, legacy=args.legacy_p12))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    names = dict(dns=args.dns or (), ip=args.ip or (), email=args.email or (), uri=args.uri or (),
                 drop=args.drop_san or (), replace=args.replace_sans)
    # Refused here as the signing would refuse it (name constraints, name, validity): a dry run shows no false grant.
    grant = workspace.review_csr(args.csr, profile=args.profile, name=args.name, days=args.days, ca=args.ca, **names)
    # What it will grant, before the CA key is touched (openssl ca shows the request and asks "Sign?").
    note(f"{args.csr} asks for a {args.profile} certificate, signed by {args.ca or workspace.ca_name} for {args.days} days:")
    for line in grant.lines():
        note(f"  {line}")
    if args.dry_run:
        if args.json:
            emit(dict(grant.as_dict(), signed=False))
        return 0
    if args.confirm and not _confirmed("Sign it? [y/N] "):
        raise KittylabError("not signed: the request was declined")
    issued = workspace.sign_csr(args.csr, profile=args.profile, name=args.name, days=args.days, ca=args.ca, **names)
    if args.out:
        write_atomically(Path(args.out), issued.record.pem.encode())
    echo(f"signed {args.profile} certificate {issued.name} (serial {issued.record.serial_hex})")
    echo(f"  crt: {issued.files['crt']}" + (f" and {args.out}" if args.out else ""))
    deployed = run_deploy_hook(args, workspace)
    if args.json:
        emit(dict(issued_json(issued), grant=grant.as_dict(), deployed=deployed))
    show_reproduce(workspace, issued.certificate, issued.record.issuer, csr_file=str(args.csr),
                   out=args.out or issued.files["crt"].name)
    return 0


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        raise KittylabError("--confirm needs a terminal to ask in: review with --dry-run, then sign without --confirm")
    return input(question).strip().lower() in ("y", "yes")


def cmd_export_p12(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    password = given_secret(args.password_file)
    path, generated = workspace.export_p12(args.name, password=password, legacy=args.legacy)
    echo(f"wrote {path} ({'legacy 3DES/SHA-1' if args.legacy else 'modern AES-256/PBKDF2'}, mode 0600)")
    echo_p12_password(generated)
    if args.json:
        emit({"name": args.name, "p12": str(path), "legacy": args.legacy, "p12_password": generated})
    chain = workspace.chain_path(workspace.find(args.name).issuer).name
    show_command(openssl.pkcs12(f"{args.name}.key", f"{args.name}.crt", chain, path.name, name=args.name,
                                legacy=args.legacy))
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    p12_password = given_secret(args.p12_password_file)
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
            failed.append({"name": name, "error": explained(error)})
            note(f"kittylab: error: {name} not renewed: {explained(error)}")
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


def echo_files(issued: Issued) -> None:
    """The files a certificate made wrote, and the p12 password it generated (shown this once)."""
    for kind, path in issued.files.items():
        echo(f"  {kind}: {path}")
    echo_p12_password(issued.p12_password)


def echo_p12_password(password: str | None) -> None:
    """A generated p12 password, shown this once (a password the user gave is never printed: None)."""
    if password:
        echo(f"  p12 password (shown once, keep it safe): {password}")


def issued_json(issued: Issued) -> dict:
    """What ``--json`` prints for a certificate made: its facts, the files written, a generated p12 password."""
    return dict(issued.record.as_dict(), files={kind: str(path) for kind, path in issued.files.items()},
                p12_password=issued.p12_password)


def add_signing_ca(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ca", metavar="NAME", help="the signing CA (default: the workspace's issuing CA)")


def register(commands: argparse._SubParsersAction) -> None:
    kinds = add_commands(commands.add_parser("issue", help="make a key, a CSR and a certificate in one go"),
                         "profile", "PROFILE")
    for profile, help_text in (("server", "a server certificate (steps 4-8)"),
                               ("client", "a client certificate (steps 11-14)")):
        with command(kinds, profile, cmd_issue, deploy_hook=True, help=help_text) as sub:
            sub.add_argument("name", help="names the files NAME.key, NAME.csr, NAME.crt and the CN")
            if profile == "server":
                sub.add_argument("--dns", action="extend", nargs="+", metavar="D", help="host names (repeatable)")
                sub.add_argument("--ip", action="extend", nargs="+", metavar="I", help="IP addresses (repeatable)")
                sub.add_argument("--email", help="an email address for the subject (emailAddress)")
            else:
                sub.add_argument("--email", help="the client's email address (as a SAN)")
                sub.add_argument("--p12", action="store_true", help="also write NAME.p12 for browsers")
                add_p12_password_file(sub)
                sub.add_argument("--legacy-p12", action="store_true", help="3DES/SHA-1 p12 for Apple keychains, old Windows and Android")
            sub.add_argument("--key", default="rsa2048", choices=KEY_KINDS, help="key type (default rsa2048)")
            sub.add_argument("--days", type=positive_int, default=LEAF_DAYS, help=f"validity (default {LEAF_DAYS})")
            add_signing_ca(sub)
            add_subject_options(sub)


    with command(commands, "sign", cmd_sign, deploy_hook=True, help="sign a CSR someone sent (steps 7-8)") as sign:
        sign.add_argument("csr", type=Path, metavar="CSR_FILE")
        sign.add_argument("--profile", required=True, choices=("client", "server"))
        sign.add_argument("--days", type=positive_int, default=LEAF_DAYS)
        sign.add_argument("--out", metavar="FILE", help="also write the certificate here")
        sign.add_argument("--name", help="the name to record it under (default: the CSR's CN)")
        sign.add_argument("--dns", action="extend", nargs="+", metavar="D", help="add host names (repeatable)")
        sign.add_argument("--ip", action="extend", nargs="+", metavar="I", help="add IP addresses (repeatable)")
        sign.add_argument("--email", action="extend", nargs="+", metavar="E", help="add email addresses (repeatable)")
        sign.add_argument("--uri", action="extend", nargs="+", metavar="U", help="add URIs (repeatable)")
        review = sign.add_argument_group("review (what it will grant is printed before signing)")
        review.add_argument("--drop-san", action="append", metavar="SAN",
                            help="leave out a requested name, e.g. email:ceo@acme.example or DNS:wiki.acme.example")
        review.add_argument("--replace-sans", action="store_true",
                            help="leave out every requested name: grant only --dns/--ip/--email/--uri")
        review.add_argument("--confirm", action="store_true", help="ask before signing (on a terminal)")
        review.add_argument("--dry-run", action="store_true", help="only show what it would grant; sign nothing")
        add_signing_ca(sign)


    with command(commands, "export-p12", cmd_export_p12,
                 help="bundle NAME.key and NAME.crt into NAME.p12 (step 14)") as export:
        export.add_argument("name")
        add_p12_password_file(export, "--password-file")
        export.add_argument("--legacy", action="store_true", help="3DES/SHA-1 for Apple keychains, old Windows and Android")


    with command(commands, "renew", cmd_renew, deploy_hook=True,
                 help="a new certificate for the same key (or a new key); the old one is superseded") as renew:
        renew.add_argument("names", nargs="*", metavar="NAME")
        renew.add_argument("--new-key", action="store_true", help="make a new key too (default: keep the key)")
        renew.add_argument("--days", type=positive_int, default=None, help="validity (default: as before)")
        renew.add_argument("--expiring", type=duration, metavar="30d", help="also renew everything due within this time")
        renew.add_argument("--p12", action="store_true", help="also write a new NAME.p12")
        add_p12_password_file(renew)
        renew.add_argument("--ca", metavar="NEW_CA", help="move to this CA (a rotation; default: the same CA as before)")

