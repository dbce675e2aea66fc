"""Setting up a CA: ``init`` (a root, an intermediate below it, a second root, a replacement
for an old CA), ``import`` (a CA that ``openssl ca`` or easy-rsa kept, brought in), ``passphrase``
(a CA key's passphrase) and ``profile`` (which kinds of names a profile's certificates may carry).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..pki import openssl
from ..pki.ca import CA_DAYS, check_days
from ..pki.constraints import ALL_IP, build_name_constraints, describe_constraints
from ..pki.keys import KEY_KINDS
from ..pki.profiles import AccessUrls
from ..workspace.openssldb import import_ca_directory
from ..workspace.workspace import INTERMEDIATE_DAYS, Workspace, check_name
from .options import (
    Passphrases,
    add_subject_options,
    command,
    echo,
    emit,
    given_secrets,
    note,
    open_workspace,
    positive_int,
    secret,
    show_command,
    show_reproduce,
    subject_from,
    warn_if_weak,
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
    warn_if_weak(passphrase)
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
        show_reproduce(workspace, ca.certificate, args.intermediate_of, csr_file=f"{subject.cn}.csr", out=cert_path.name)
    else:
        days = (ca.certificate.not_valid_after_utc - ca.certificate.not_valid_before_utc).days
        show_command(openssl.self_signed_ca(key_path.name, cert_path.name, subject, days=days,
                                            path_length=args.path_length, name_constraints=constraints))
    return 0


def _url_lines(urls: AccessUrls) -> list[tuple[str, str]]:
    labels = {"crl": "CRL URL", "ocsp": "OCSP URL", "ca_issuers": "CA certificate URL"}
    return [(labels[key], url) for key, url in urls.as_dict().items()]


#: ``init``'s name constraints (repeatable): flag, metavar, what the constraint says.
NAME_CONSTRAINTS = (
    ("--permit-dns", "D", "only this domain and below, e.g. *.example.test (repeatable)"),
    ("--permit-email", "E", "only email addresses of this domain (repeatable)"),
    ("--permit-ip", "NET", "only IP addresses in this network, e.g. 127.0.0.0/8 (repeatable)"),
    ("--exclude-dns", "D", "never this domain or below (repeatable)"),
    ("--exclude-ip", "NET", ("never IP addresses in this network (repeatable); with --permit-dns or --permit-email"
                             " and no --permit-ip, every IP address (0.0.0.0/0, ::/0) is excluded")),
)


def cmd_import(args: argparse.Namespace) -> int:
    workspace = open_workspace(args, existing=False)  # import may make the workspace
    given = Passphrases(args)
    # The CA's own passphrase (--ca-passphrase-file NAME=F, $KITTYLAB_CA_PASSPHRASE_NAME), else the one for any CA.
    result = import_ca_directory(workspace, args.source, ca_name=args.ca_name,
                                 passphrase=lambda name: given.specific(name) or next(given.generic(), None))
    echo(f"{result.summary()} into {workspace.home}")
    for line in result.notes:
        note(f"note: {line}")
    echo(f"published the CRL: {workspace.path(result.ca, 'crl')}")
    if args.json:
        emit({"ca": result.ca, "certificates": [r.as_dict() for r in result.certificates], "keys": result.keys,
              "notes": result.notes, "crl": str(workspace.path(result.ca, "crl"))})
    return 0


def _new_passphrase(args: argparse.Namespace) -> str | None:
    if args.remove:
        return None
    return secret(given_secrets(args.new_passphrase_file), f"New passphrase for the CA key {args.name} ({args.name}.key): ",
                  new=True, missing="no new passphrase: give --new-passphrase-file F (or --remove), or run it in a terminal")


def cmd_passphrase(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    new = _new_passphrase(args)
    warn_if_weak(new)
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


    with command(commands, "import", cmd_import,
                 help="bring in an openssl ca directory or an easy-rsa pki folder") as importer:
        importer.add_argument("source", type=Path, metavar="DIR")
        importer.add_argument("--ca-name", metavar="NAME", help="name the CA in the workspace (default: from its CN)")


    with command(commands, "passphrase", cmd_passphrase, help="change the passphrase of one CA's key") as passphrase:
        passphrase.add_argument("name", metavar="CA", help="the CA whose key gets the new passphrase")
        given = passphrase.add_mutually_exclusive_group()
        given.add_argument("--new-passphrase-file", metavar="F", help="the new passphrase, F's first line (else asked for)")
        given.add_argument("--remove", action="store_true", help="store the key unencrypted (e.g. on an HSM-less test box)")


    with command(commands, "profile", cmd_profile,
                 help="show or limit which kinds of names a profile's certificates carry") as profile:
        profile.add_argument("name", choices=("client", "server"))
        limits = profile.add_mutually_exclusive_group()
        limits.add_argument("--san-types", metavar="KINDS",
                            help="only these, comma-separated: email, dns, ip, uri (e.g. --san-types email)")
        limits.add_argument("--any-san-type", action="store_true", help="lift the limit (every kind the profile allows)")

