"""Servers and clients: ``serve`` (the picture-server, HTTPS that requires a client
certificate), ``fetch`` (a client with a certificate), ``webconfig`` (nginx or Apache set up for
client certificates), ``ocsp-serve`` (an OCSP responder) and ``publish`` (CRLs and CA certificates
over HTTP). The servers run until Ctrl-C, or SIGTERM as a service manager sends it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from ..net.client import curl_command, fetch
from ..net.http_service import HttpService
from ..net.ocsp import OcspServer
from ..net.publisher import Publisher
from ..net.server import DEFAULT_NAME, PictureServer
from ..net.webconfig import DEFAULT_PORT, KINDS, prepare_site, write_site
from ..workspace.workspace import Workspace
from .options import (
    Passphrases,
    add_client_checks,
    add_listen_options,
    command,
    echo,
    emit,
    given_secrets,
    note,
    open_workspace,
    port_number,
    positive_int,
    secret,
    show_command,
    until_stopped,
)


def cmd_serve(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    server = PictureServer(workspace, name=args.name, client_ca=args.client_ca, host=args.host, port=args.port,
                           ocsp=args.ocsp)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log = logging.getLogger("kittylab.net.server")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        note(f"warning: listening on {args.host}, not only on this machine")
    with server:
        home = workspace.home
        note(f"picture-server at {server.url}, clients need a certificate from {server.ca_name} (Ctrl-C stops)")
        p12 = client_p12(workspace)
        if p12 is None:
            note("  no client p12 in the workspace yet: kittylab issue client NAME --email E --p12 (or roster issue)")
        else:
            note(f"  try: kittylab --home {home} fetch {server.url} --p12 {p12} --password-file FILE")
            note("  or:  " + curl_command(server.url, p12=p12, password_file="FILE", ca=workspace.ca_certificate_path))
        until_stopped(threading.Event().wait)
    note(f"stopped: {server.requests_served} requests served, {len(server.refusals)} connections refused")
    return 0


def client_p12(workspace: Workspace) -> Path | None:
    """A p12 of a usable client certificate in the workspace, for the ``try:`` hint: eager-client's, else an early one."""
    story = [workspace.current("eager-client")]
    for record in [*story, *workspace.current_of("client", limit=64)]:
        if record is not None and record.usable and workspace.path(record.name, "p12").exists():
            return workspace.path(record.name, "p12")
    return None


def _password(args: argparse.Namespace) -> str | None:
    given = given_secrets(args.password_file, "KITTYLAB_P12_PASSWORD")
    if args.p12 is None:  # a key file's passphrase, if it has one
        return next(given, None)
    return secret(given, f"Password for {args.p12}: ",
                  missing="the p12 needs its password: give --password-file or set KITTYLAB_P12_PASSWORD")


def cmd_fetch(args: argparse.Namespace) -> int:
    ca = args.ca
    if ca is None:
        workspace = Workspace(args.home) if Path(args.home).is_dir() else None
        if workspace is not None and workspace.has_ca:
            ca = workspace.ca_certificate_path
    note("  curl equivalent: " + curl_command(args.url, p12=args.p12, password_file=args.password_file, key=args.key,
                                               cert=args.cert, ca=ca))
    response = fetch(args.url, p12=args.p12, password=_password(args), key=args.key, cert=args.cert, ca=ca,
                     timeout=args.timeout, images=False, tls_max=args.tls_max)
    note(f"{response.status} {response.reason} from {response.server_subject} over {response.tls_version}")
    sys.stdout.buffer.write(response.body)
    sys.stdout.flush()
    return 0 if response.ok else 1


def cmd_webconfig(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    options = dict(server_name=args.server_name, host=args.host, port=args.port, upstream=args.upstream,
                   client_ca=args.client_ca, ocsp=args.ocsp, publish_port=args.publish_port)
    if args.out is not None:
        out = Path(args.out)
        site = write_site(args.kind, workspace, out.parent, webroot=args.webroot, config_name=out.name, **options)
        echo(f"wrote {site.config} and the gallery in {site.webroot}")
        note(f"  run it:                 {site.run_command}")
        note(f"  after a revocation:     {site.reload_command}")
        note(f"  then:                   kittylab fetch {site.url} --p12 eager-client.p12 --password-file FILE")
        if args.json:
            emit({"config": str(site.config), "webroot": str(site.webroot), "url": site.url,
                  "run": site.run_command, "reload": site.reload_command})
        return 0
    webroot = Path(args.webroot or workspace.home / f"www-{args.kind}")
    text = prepare_site(args.kind, workspace, webroot=webroot, server_root=workspace.home, **options)
    echo(text.rstrip("\n"))
    note(f"wrote the gallery in {webroot}; save this configuration with --out FILE")
    return 0


def cmd_ocsp_serve(args: argparse.Namespace) -> int:
    server = OcspServer(_existing_home(args), passphrases=Passphrases(args), host=args.host, port=args.port, log=note)
    names = ", ".join(server.responder.workspace.ca_names())
    echo(f"OCSP responder for {names} at {server.url} (Ctrl-C stops)")
    ca = server.responder.workspace.ca_certificate_path
    show_command(f"openssl ocsp -issuer {ca} -cert CERT.crt -url {server.url} -CAfile {ca} -resp_text")
    return _serve_until_stopped(server)


def cmd_publish(args: argparse.Namespace) -> int:
    publisher = Publisher(_existing_home(args), host=args.host, port=args.port, log=note)
    echo(f"publishing at {publisher.url}, read live from {publisher.workspace.home} (Ctrl-C stops):")
    for path in publisher.paths():
        echo(f"  {publisher.url}{path}")
    first = publisher.paths()[1]
    show_command(f"openssl crl -inform DER -in <(curl -s {publisher.url}{first}) -noout -text")
    return _serve_until_stopped(publisher)


def _existing_home(args: argparse.Namespace) -> Path:
    """``--home`` for a server that opens it itself, checked first as every command checks it (a mistyped one is
    "no workspace", not "no CA")."""
    open_workspace(args).close()
    return args.home


def _serve_until_stopped(service: HttpService) -> int:
    until_stopped(service.serve_forever)
    note("stopped")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    with command(commands, "serve", cmd_serve, json=False,
                 help="run the picture-server: HTTPS that requires a client certificate") as serve:
        add_listen_options(serve, port=DEFAULT_PORT)
        serve.add_argument("--name", default=DEFAULT_NAME, help="the server certificate's name in the workspace")
        add_client_checks(serve)


    with command(commands, "fetch", cmd_fetch, json=False,
                 help="GET a URL with a client certificate and say why a server refuses") as get:
        get.add_argument("url", metavar="URL")
        get.add_argument("--p12", metavar="F", help="the client's p12 file")
        get.add_argument("--password-file", metavar="P", help="the p12 password (or the key's passphrase), first line")
        get.add_argument("--key", metavar="F", help="the client's key (instead of --p12, with --cert)")
        get.add_argument("--cert", metavar="F", help="the client's certificate (with --key)")
        get.add_argument("--ca", metavar="F", help="the CA that signed the server's certificate (default: the workspace's)")
        get.add_argument("--timeout", type=positive_int, default=10, help="seconds (default 10)")
        get.add_argument("--tls-max", choices=("1.2", "1.3"), help="highest TLS version to offer")


    with command(commands, "webconfig", cmd_webconfig,
                 help="write an nginx or Apache configuration that requires client certificates") as web:
        web.add_argument("kind", choices=KINDS)
        web.add_argument("--out", metavar="FILE", help="write the configuration here (the gallery goes to www/ beside it)")
        add_listen_options(web, port=DEFAULT_PORT, free=False)
        web.add_argument("--server-name", default=DEFAULT_NAME, help="the server certificate's name (default picture-server)")
        web.add_argument("--webroot", metavar="DIR", help="where to put the gallery pages and pictures")
        web.add_argument("--upstream", metavar="URL", help="an application to pass /app/ on to, with the client's identity")
        add_client_checks(web)
        web.add_argument("--publish-port", type=port_number, metavar="P",
                         help="also serve every CA's CRL and certificate over plain HTTP on this port (as kittylab publish)")


    with command(commands, "ocsp-serve", cmd_ocsp_serve, json=False,
                 help="answer OCSP requests for the workspace's CAs over HTTP") as serve:
        add_listen_options(serve, port=8888)


    with command(commands, "publish", cmd_publish, json=False,
                 help="serve each CA's CRL (/NAME.crl) and certificate (/NAME.crt) over HTTP") as publish:
        add_listen_options(publish, port=8080)

