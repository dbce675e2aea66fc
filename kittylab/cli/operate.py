"""``kittylab ocsp-serve``, ``publish``, ``expiring``, ``renew``, ``export-openssl-db`` and ``import``: beyond the article."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from ..errors import KittylabError
from ..net.http_service import HttpService
from ..net.ocsp import OcspServer
from ..net.publisher import Publisher
from ..pki.files import read_password_file
from ..workspace.openssldb import export_openssl_db, import_ca_directory
from ..workspace.renewal import due, parse_duration
from ..workspace.workspace import Workspace
from .options import (
    Passphrases,
    ca_passphrase,
    echo,
    note,
    open_workspace,
    positive_int,
    show_command,
)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


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
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C
    try:
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    note("stopped")
    return 0


def cmd_expiring(args: argparse.Namespace) -> int:
    workspace = Workspace(args.home)
    items = due(workspace, parse_duration(args.within))
    if args.json:
        echo(json.dumps([dict(item.record.as_dict(), seconds_left=int(item.left.total_seconds())) for item in items],
                        indent=2))
    elif not items:
        echo(f"nothing expires within {args.within}")
    else:
        for item in items:
            echo(item.describe())
        renewable = [item.record.name for item in items if item.renewable]
        if renewable:
            note(f"renew with: kittylab renew {' '.join(renewable)}")
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    p12_password = read_password_file(args.p12_password_file) if args.p12_password_file else None
    names = list(args.names)
    if args.expiring is not None:
        names += [item.record.name for item in due(workspace, parse_duration(args.expiring)) if item.renewable]
    if not names:
        raise KittylabError("nothing to renew: give NAME, or --expiring 30d for everything due")
    for name in dict.fromkeys(names):
        issued = workspace.renew(name, new_key=args.new_key, days=args.days, p12=args.p12 or bool(p12_password),
                                 p12_password=p12_password)
        echo(f"renewed {name}: serial {issued.record.serial_hex}, valid until {issued.record.not_after:%Y-%m-%d}"
             f" ({'a new key' if args.new_key else 'the same key'}); the previous certificate is superseded")
        for kind, path in issued.files.items():
            echo(f"  {kind}: {path}")
        if issued.p12_password:
            echo(f"  p12 password (shown once, keep it safe): {issued.p12_password}")
        elif "p12" not in issued.files and workspace.path(name, "p12").exists():
            note(f"note: {name}.p12 still holds the old certificate: kittylab export-p12 {name}")
    return 0


def cmd_export_openssl_db(args: argparse.Namespace) -> int:
    workspace = Workspace(args.home)
    out = args.out or workspace.home / "openssl-db" / (args.ca or workspace.ca_name)
    export = export_openssl_db(workspace, out, ca=args.ca)
    echo(f"wrote {export.index}, serial, crlnumber, newcerts/ and {export.config}")
    for line in export.notes:
        note(f"note: {line}")
    show_command(export.gencrl_command())
    show_command(export.ocsp_command())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    workspace = Workspace(args.home)
    result = import_ca_directory(workspace, args.source, ca_name=args.ca_name, passphrase=ca_passphrase(args))
    echo(f"{result.summary()} into {workspace.home}")
    for line in result.notes:
        note(f"note: {line}")
    echo(f"published the CRL: {workspace.path(result.ca, 'crl')}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("ocsp-serve", help="answer OCSP requests for the workspace's CAs over HTTP")
    serve.add_argument("--port", type=_port, default=8888, help="the port (default 8888; 0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.set_defaults(handler=cmd_ocsp_serve)

    publish = subparsers.add_parser("publish", help="serve each CA's CRL (/NAME.crl) and certificate (/NAME.crt) over HTTP")
    publish.add_argument("--port", type=_port, default=8080, help="the port (default 8080; 0 picks a free one)")
    publish.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    publish.set_defaults(handler=cmd_publish)

    expiring = subparsers.add_parser("expiring", help="what expires soon (or has) and needs renewing")
    expiring.add_argument("--within", default="30d", metavar="30d",
                          help="a time such as 30d, 12h or 2w (default 30d)")
    expiring.add_argument("--json", action="store_true")
    expiring.set_defaults(handler=cmd_expiring)

    renew = subparsers.add_parser("renew", help="a new certificate for the same key (or a new key); the old one is superseded")
    renew.add_argument("names", nargs="*", metavar="NAME")
    renew.add_argument("--new-key", action="store_true", help="make a new key too (default: keep the key)")
    renew.add_argument("--days", type=positive_int, default=None, help="validity (default: as before)")
    renew.add_argument("--expiring", metavar="30d", help="also renew everything due within this time")
    renew.add_argument("--p12", action="store_true", help="also write a new NAME.p12")
    renew.add_argument("--p12-password-file", metavar="F", help="the p12 password (else one is generated)")
    renew.set_defaults(handler=cmd_renew)

    export = subparsers.add_parser("export-openssl-db", help="write index.txt, serial and openssl.cnf for openssl ca")
    export.add_argument("--out", type=Path, metavar="DIR", help="the folder (default: HOME/openssl-db/CA)")
    export.add_argument("--ca", metavar="NAME", help="the CA to export (default: the issuing CA)")
    export.set_defaults(handler=cmd_export_openssl_db)

    importer = subparsers.add_parser("import", help="bring in an openssl ca directory or an easy-rsa pki folder")
    importer.add_argument("source", type=Path, metavar="DIR")
    importer.add_argument("--ca-name", metavar="NAME", help="name the CA in the workspace (default: from its CN)")
    importer.set_defaults(handler=cmd_import)
