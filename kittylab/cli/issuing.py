"""The article's commands: init, issue, sign, export-p12, revoke, crl, list, show, verify (steps 1-17)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import KittylabError
from ..pki import openssl
from ..pki.ca import CA_DAYS, LEAF_DAYS, check_days, load_certificate
from ..pki.constraints import ALL_IP, build_name_constraints, describe_constraints
from ..pki.crl import REASONS
from ..pki.csr import load_csr
from ..pki.facts import format_summary, summarize, when
from ..pki.files import read_input, read_password_file, write_atomically
from ..pki.grant import summarize_request
from ..pki.keys import KEY_KINDS, check_new_passphrase
from ..pki.profiles import AccessUrls
from ..workspace import deploy
from ..workspace.workspace import INTERMEDIATE_DAYS, Issued, Workspace, check_name
from .options import (
    Passphrases,
    add_commands,
    add_p12_password_file,
    add_subject_options,
    command,
    command_line_fix,
    echo,
    emit,
    note,
    open_workspace,
    positive_int,
    run_deploy_hook,
    show_command,
    subject_from,
)


def cmd_init(args: argparse.Namespace) -> int:
    urls = AccessUrls(args.crl_url, args.ocsp_url, args.ca_issuers_url)
    if not args.intermediate_of:  # check the input before Workspace() creates a folder and a store
        check_name(subject_from(args, args.cn, email=args.email or "").cn)
        check_days(args.days or CA_DAYS)
    passphrases = Passphrases(args)
    # The new key gets a passphrase of its own, and only when asked to (--encrypt-key); a weak one is refused
    # before the workspace is made.
    passphrase = passphrases.new(args.cn, first_ca=not args.intermediate_of) if args.encrypt_key else None
    weak = check_new_passphrase(passphrase)
    if weak:
        note(f"warning: {weak}{command_line_fix(weak)}")
    workspace = Workspace(args.home, passphrases=passphrases)  # init makes the workspace
    defaults = workspace.default_subject(args.cn, ca=args.intermediate_of) if args.intermediate_of else None
    subject = subject_from(args, args.cn, defaults, email=args.email or "")
    constraints = build_name_constraints(permit_dns=args.permit_dns or (), permit_email=args.permit_email or (),
                                         permit_ip=args.permit_ip or (), exclude_dns=args.exclude_dns or (),
                                         exclude_ip=args.exclude_ip)
    if args.key == "rsa4096" and (args.intermediate_of or args.another_root or not workspace.has_ca):
        note("making an RSA 4096 key (this takes about a second)...")
    ca = workspace.init_ca(subject, key=args.key, days=args.days, passphrase=passphrase,
                           intermediate_of=args.intermediate_of, another_root=args.another_root,
                           path_length=args.path_length, name_constraints=constraints, urls=urls,
                           replaces=args.replaces)
    key_path, cert_path = workspace.path(subject.cn, "key"), workspace.path(subject.cn, "crt")
    echo(f"created CA {ca.name}: {cert_path} (key: {key_path}, mode 0600{', encrypted' if passphrase else ''})")
    if args.intermediate_of:
        echo(f"  signed by {args.intermediate_of}; the chain for servers and p12 files: {workspace.chain_path(subject.cn)}")
    if constraints is not None:
        echo(f"  name constraints: {describe_constraints(constraints)}")
        if args.exclude_ip is None and not args.permit_ip and constraints.permitted_subtrees:
            echo(f"  IP addresses excluded ({', '.join(ALL_IP)}): constraints bind only the name types they list,"
                 " so without them this CA could still certify any IP address (--permit-ip or --exclude-ip to choose)")
    for label, url in _url_lines(workspace.ca_urls(subject.cn)):
        echo(f"  what it issues carries its {label}: {url}")
    echo(f"published the CRL: {workspace.path(subject.cn, 'crl')} (now the default issuing CA)")
    if args.json:
        emit(dict(workspace.ca_record(subject.cn).as_dict(), encrypted=bool(passphrase),
                  files={"key": str(key_path), "crt": str(cert_path), "crl": str(workspace.path(subject.cn, "crl"))}))
    show_command(openssl.genkey(args.key, key_path.name, passphrase=bool(passphrase)))
    if args.intermediate_of:
        show_command(openssl.csr(key_path.name, f"{subject.cn}.csr", subject))
        parent = args.intermediate_of
        show_command(openssl.reproduce(ca.certificate, csr_file=f"{subject.cn}.csr", out=cert_path.name,
                                       ca_cert=workspace.path(parent, "crt").name, ca_key=workspace.path(parent, "key").name))
    else:
        days = (ca.certificate.not_valid_after_utc - ca.certificate.not_valid_before_utc).days
        show_command(openssl.self_signed_ca(key_path.name, cert_path.name, subject, days=days,
                                            path_length=args.path_length, name_constraints=constraints))
    return 0


def _url_lines(urls: AccessUrls) -> list[tuple[str, str]]:
    labels = {"crl": "CRL URL", "ocsp": "OCSP URL", "ca_issuers": "CA certificate URL"}
    return [(labels[key], url) for key, url in urls.as_dict().items()]


def cmd_issue(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    profile = args.profile
    defaults = workspace.default_subject(args.name, ca=args.ca)
    # A client's email is a SAN; a server certificate carries no email SAN, so there it goes in the subject.
    subject = subject_from(args, args.name, defaults, email=(args.email or "") if profile == "server" else "")
    p12_password = read_password_file(args.p12_password_file) if getattr(args, "p12_password_file", None) else None
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
    show_command(_reproduce(workspace, issued, files["csr"].name, files["crt"].name))
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
    show_command(_reproduce(workspace, issued, str(args.csr), args.out or issued.files["crt"].name))
    return 0


def _reproduce(workspace: Workspace, issued, csr_file: str, out: str) -> str:
    """The ``openssl req -CA`` line that makes the same certificate from the request."""
    issuer = issued.record.issuer
    return openssl.reproduce(issued.certificate, csr_file=csr_file, out=out,
                             ca_cert=workspace.path(issuer, "crt").name, ca_key=workspace.path(issuer, "key").name)


def cmd_export_p12(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    password = read_password_file(args.password_file) if args.password_file else None
    path, generated = workspace.export_p12(args.name, password=password, legacy=args.legacy)
    echo(f"wrote {path} ({'legacy 3DES/SHA-1' if args.legacy else 'modern AES-256/PBKDF2'}, mode 0600)")
    if generated:
        echo(f"  p12 password (shown once, keep it safe): {generated}")
    if args.json:
        emit({"name": args.name, "p12": str(path), "legacy": args.legacy, "p12_password": generated})
    chain = workspace.chain_path(workspace.find(args.name).issuer).name
    show_command(openssl.pkcs12(f"{args.name}.key", f"{args.name}.crt", chain, path.name, name=args.name,
                                legacy=args.legacy))
    return 0


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
            note(f"kittylab: error: the CRL of {name} was not published: {error}{command_line_fix(error)}")
            published.append({"ca": name, "error": f"{error}{command_line_fix(error)}"})
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


def echo_files(issued: Issued) -> None:
    """The files a certificate made wrote, and the p12 password it generated (shown this once)."""
    for kind, path in issued.files.items():
        echo(f"  {kind}: {path}")
    if issued.p12_password:
        echo(f"  p12 password (shown once, keep it safe): {issued.p12_password}")


def issued_json(issued: Issued) -> dict:
    """What ``--json`` prints for a certificate made: its facts, the files written, a generated p12 password."""
    return dict(issued.record.as_dict(), files={kind: str(path) for kind, path in issued.files.items()},
                p12_password=issued.p12_password)


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


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        raise KittylabError("--confirm needs a terminal to ask in: review with --dry-run, then sign without --confirm")
    return input(question).strip().lower() in ("y", "yes")


#: What ``show`` reads as a file name, never as a certificate's name (a missing file is said to be one).
FILE_SUFFIXES = (".csr", ".req", ".crt", ".cer", ".pem", ".der")


def cmd_show(args: argparse.Namespace) -> int:
    looks_like_a_file = Path(args.target).suffix.lower() in FILE_SUFFIXES or "/" in args.target
    if Path(args.target).is_file() or looks_like_a_file:  # a file someone sent: a CSR (or a certificate) to read
        data = read_input(Path(args.target), "certificate or CSR")
        summary = summarize_request(load_csr(data)) if b"CERTIFICATE REQUEST" in data else summarize(load_certificate(data))
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


def cmd_verify(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    result = workspace.verify(args.cert, purpose=args.purpose)
    echo(str(result))
    show_command(openssl.verify(str(args.cert), workspace.chain_path().name, purpose=args.purpose,
                                crl=workspace.crl_chain_path().name, every_level=len(workspace.chain()) > 1))
    return 0 if result.ok else 1


#: ``init``'s name constraints (repeatable): flag, metavar, what the constraint says.
NAME_CONSTRAINTS = (
    ("--permit-dns", "D", "only this domain and below, e.g. *.example.test (repeatable)"),
    ("--permit-email", "E", "only email addresses of this domain (repeatable)"),
    ("--permit-ip", "NET", "only IP addresses in this network, e.g. 127.0.0.0/8 (repeatable)"),
    ("--exclude-dns", "D", "never this domain or below (repeatable)"),
    ("--exclude-ip", "NET", ("never IP addresses in this network (repeatable); with --permit-dns or --permit-email"
                             " and no --permit-ip, every IP address (0.0.0.0/0, ::/0) is excluded")),
)


def add_signing_ca(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ca", metavar="NAME", help="the signing CA (default: the workspace's issuing CA)")


def register(commands: argparse._SubParsersAction) -> None:
    with command(commands, "init", cmd_init, help="create the CA (steps 1-3)") as init:
        init.add_argument("--cn", default="kitty-ca", help="the CA's common name and file name (default kitty-ca)")
        init.add_argument("--key", default="rsa4096", choices=KEY_KINDS, help="key type (default rsa4096)")
        init.add_argument("--days", type=positive_int, default=None,
                          help=f"validity (default {CA_DAYS}, an intermediate {INTERMEDIATE_DAYS})")
        init.add_argument("--encrypt-key", action="store_true", help="protect the CA key with a passphrase")
        add_subject_options(init)
        init.add_argument("--email", help="the CA's email address")
        hierarchy = init.add_argument_group("more CAs in one workspace")
        hierarchy.add_argument("--intermediate-of", metavar="ROOT",
                               help="make an issuing CA signed by the CA named ROOT (which can then go offline)")
        hierarchy.add_argument("--another-root", action="store_true",
                               help="make a second, independent root (the two-CAs setup: one for servers, one for clients)")
        hierarchy.add_argument("--path-length", type=int, metavar="N",
                               help="how many CAs may sit below this one (an intermediate defaults to 0)")
        for flag, metavar, constraint in NAME_CONSTRAINTS:
            hierarchy.add_argument(flag, action="append", metavar=metavar, help=f"name constraint: {constraint}")
        hierarchy.add_argument("--replaces", metavar="OLD_CA",
                               help="a rotation: inherit OLD_CA's name constraints, path length and URLs (what is not"
                                    " given); OLD_CA keeps publishing its CRL; move certificates with renew --ca")
        urls = init.add_argument_group("where clients find revocation (carried by everything this CA issues)")
        urls.add_argument("--crl-url", metavar="URL", help="its CRL, e.g. http://pki.kitty.test/kitty-ca.crl (kittylab publish)")
        urls.add_argument("--ocsp-url", metavar="URL", help="its OCSP responder, e.g. http://pki.kitty.test:8081 (kittylab ocsp-serve)")
        urls.add_argument("--ca-issuers-url", metavar="URL", help="its certificate, e.g. http://pki.kitty.test/kitty-ca.crt")

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

    with command(commands, "list", cmd_list, help="everything the CA issued, with status"):
        pass  # no options of its own: only --json

    with command(commands, "show", cmd_show, help="what a certificate (or a CSR file, before signing it) says") as show:
        show.add_argument("target", metavar="NAME_OR_SERIAL_OR_FILE")

    with command(commands, "verify", cmd_verify, json=False,
                 help="check a certificate against the CA and its CRL") as verify:
        verify.add_argument("cert", type=Path, metavar="CERT_FILE")
        verify.add_argument("--purpose", choices=("client", "server"))
