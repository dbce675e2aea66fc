"""nginx and Apache configurations for the picture-server's certificate, with client certificates required.

Step 9 of the story ("put the server's certificate into the web server") for the two web servers
most people run. :func:`nginx_config` and :func:`apache_config` only make text (they read the
workspace, never write it); the files they point at are put into the workspace's deploy folder by
the workspace itself (:func:`kittylab.workspace.deploy.deploy_site`, which :func:`prepare_site` calls).
:func:`write_site` writes a complete, runnable configuration plus a web root
holding the same cat gallery as kittylab's own server: the greeting is filled in per request by
server-side includes from the verified client certificate. The client's identity is also passed
on to an application behind the web server (``upstream``) in request headers:
``X-SSL-Client-S-DN``, ``X-SSL-Client-CN``, ``X-SSL-Client-Serial``, ``X-SSL-Client-Not-After``
and ``X-SSL-Client-Verify``.

Both servers read the CRL when they start or reload: after a revocation, reload them
(:attr:`Site.reload_command`).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import KittylabError, check_choice
from ..pki.files import write_atomically
from ..render.gallery import gallery_page, picture_bytes, pictures
from ..render.templates import render
from ..workspace import deploy
from ..workspace.protocol import make_private_folder
from ..workspace.workspace import PUBLISHED, Workspace
from .server import DEFAULT_NAME

KINDS = ("nginx", "apache")
DEFAULT_PORT = 8443
CONFIG_FILE = {"nginx": "nginx.conf", "apache": "apache.conf"}
#: Where distributions keep Apache's modules (Debian first).
APACHE_MODULE_DIRS = ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules",
                      "/usr/libexec/apache2")

# The greeting, as each server's include directives write it.
# nginx's names go through internal locations that decode them (see nginx.conf and name_rules).
_NGINX_GREETING = {
    "cn": '<!--# include virtual="/.kittylab/html/cn" -->',
    "subject": '<!--# include virtual="/.kittylab/html-dn/subject" -->',
    "serial": '<!--# echo var="ssl_client_serial" -->',
    "not_after": '<!--# echo var="ssl_client_v_end" -->',
    "issuer": '<!--# include virtual="/.kittylab/html/issuer" -->',
}
_NGINX_WHOAMI = dict(
    _NGINX_GREETING,
    cn='<!--# include virtual="/.kittylab/json/name/cn" -->',
    subject='<!--# include virtual="/.kittylab/json/subject" -->',
    issuer='<!--# include virtual="/.kittylab/json/name/issuer" -->',
)
#: The file (in the web root's internal ``.kittylab/`` folder) whose sub_filter rules turn nginx's
#: ``\XX`` escapes back into bytes: one rule per byte 0x80-0xFF, so every script decodes.
NGINX_NAMES_FILE = "utf8-bytes.conf"
#: The characters RFC 4514 (and OpenSSL's RFC 2253 output) escape with a backslash.
_DN_SPECIALS = ',+;<>#"= \\'


def _nginx_string(text: str) -> str:
    """``text`` inside an nginx single-quoted string (nginx reads ``\\\\`` as one backslash)."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def name_rules() -> dict[str, list[tuple[str, str]]]:
    """nginx sub_filter rules (pattern, replacement as written in the file) after the bytes are decoded.

    ``html``: RFC 4514 escapes undone and the text HTML-escaped (the greeting); ``html_dn``: the subject
    kept in RFC 4514, HTML-escaped; ``json_name``: a name
    as a JSON string's content; ``json_dn``: the subject kept in RFC 4514, as a JSON string's content.
    """
    html_of = {"<": "&lt;", ">": "&gt;", '"': "&quot;", "&": "&amp;"}
    rules: dict[str, list[tuple[str, str]]] = {"html": [("&", "&amp;")], "html_dn": [("&", "&amp;")],
                                               "json_name": [], "json_dn": []}
    for char in _DN_SPECIALS:
        escaped = "\\" + char
        rules["html"].append((escaped, html_of.get(char, char)))
        rules["html_dn"].append((escaped, "\\" + html_of.get(char, char)))
        # \" and \\ are JSON escapes already: kept, but matched, so that \\ + space is not read as \ + space
        rules["json_name"].append((escaped, escaped if char in '"\\' else char))
        rules["json_dn"].append((escaped, "\\\\" + ("\\" + char if char in '"\\' else char)))
    return {group: [(_nginx_string(a), _nginx_string(b)) for a, b in pairs] for group, pairs in rules.items()}


def nginx_bytes_rules() -> bytes:
    """The sub_filter rules for ``NGINX_NAMES_FILE``: ``\\C5`` -> the byte 0xC5, for 0x80-0xFF."""
    lines = [b"# Written by kittylab: nginx escapes each byte of a UTF-8 name as \\XX; these rules restore it."]
    lines += [b"sub_filter '\\\\%02X' '%c';" % (byte, byte) for byte in range(0x80, 0x100)]
    return b"\n".join(lines) + b"\n"
_APACHE_GREETING = {
    "cn": '<!--#echo var="SSL_CLIENT_S_DN_CN" -->',
    "subject": '<!--#echo var="SSL_CLIENT_S_DN" -->',
    "serial": '<!--#echo var="SSL_CLIENT_M_SERIAL" -->',
    "not_after": '<!--#echo var="SSL_CLIENT_V_END" -->',
    "issuer": '<!--#echo var="SSL_CLIENT_I_DN_CN" -->',
}
_WHOAMI_KEYS = ("cn", "subject", "serial", "not_after", "issuer")


@dataclass(frozen=True)
class Site:
    """A written configuration: the file, its web root, and the commands to run and reload it."""

    kind: str
    config: Path
    webroot: Path
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/"

    @property
    def run_command(self) -> str:
        return self._command(nginx="-e stderr -g 'daemon off;'", apache="-DFOREGROUND")

    @property
    def reload_command(self) -> str:
        """What to run after a revocation, so that the server reads the new CRL."""
        return self._command(nginx="-s reload", apache="-k graceful")

    def _command(self, *, nginx: str, apache: str) -> str:
        """The server's command line for this configuration, ending with its own flags."""
        if self.kind == "nginx":
            return f"nginx -p {self.config.parent}/ -c {self.config} {nginx}"
        return f"apache2 -d {self.config.parent} -f {self.config} {apache}"


def _upstream(url: str | None, *, what: str = "upstream") -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise KittylabError(f"{what} {url!r} must look like http://127.0.0.1:8080 (no path)")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class SiteOptions:
    """What a site serves, and where: the keyword options of :func:`nginx_config`,
    :func:`apache_config` and :func:`write_site`.

    ``client_ca`` names the CA whose clients get in (the "two CAs" setup); with ``ocsp`` (a
    responder's URL, e.g. from ``kittylab ocsp-serve``) the server asks it instead of reading a
    CRL. With ``publish_port`` it also serves, over plain HTTP on that port, every CA's CRL and
    certificate from the workspace's ``published/`` folder: what ``kittylab publish`` serves.
    ``upstream`` (``http://127.0.0.1:8080``) gets the requests for ``/app/``.
    """

    server_name: str = DEFAULT_NAME
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    upstream: str | None = None
    client_ca: str | None = None
    ocsp: str | None = None
    publish_port: int | None = None

    def context(self, workspace: Workspace, webroot: str | os.PathLike) -> dict:
        """What both templates are filled with (read from the workspace, never written)."""
        responder, proxy = _upstream(self.ocsp, what="OCSP responder"), _upstream(self.upstream)
        return dict(
            paths=deploy.site_files(workspace, self.server_name, self.client_ca),
            responder=responder,
            proxy=proxy,
            client_ca=self.client_ca or workspace.ca_name,
            server_name=self.server_name,
            host=self.host,
            port=self.port,
            webroot=Path(webroot).resolve(),
            publish_port=self.publish_port,
            published=(workspace.home / PUBLISHED).resolve(),
        )


def nginx_config(workspace: Workspace, *, webroot: str | os.PathLike, **options: object) -> str:
    """A complete ``nginx.conf``, run unprivileged with ``nginx -p DIR/ -c DIR/nginx.conf``.

    The ``server { }`` block is what to copy into a system nginx's ``sites-enabled``.
    ``options``: the fields of :class:`SiteOptions`.
    """
    return render(
        "nginx.conf",
        **SiteOptions(**options).context(workspace, webroot),
        names_file=Path(webroot).resolve() / ".kittylab" / NGINX_NAMES_FILE,
        name_rules=name_rules(),
    )


def apache_modules_dir() -> Path | None:
    """The folder holding ``mod_ssl.so`` on this system, or None where Apache is not installed."""
    for folder in APACHE_MODULE_DIRS:
        if (Path(folder) / "mod_ssl.so").is_file():
            return Path(folder)
    return None


def _worker_user() -> str:
    """The user Apache's workers run as when it is started by root (it refuses to serve as root)."""
    for name in ("www-data", "apache", "daemon", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    return "nobody"


def apache_config(
    workspace: Workspace,
    *,
    webroot: str | os.PathLike,
    server_root: str | os.PathLike,
    modules_dir: str | os.PathLike | None = None,
    **options: object,
) -> str:
    """A complete Apache httpd configuration, run with ``apache2 -d DIR -f DIR/apache.conf -DFOREGROUND``.

    ``options``: the fields of :class:`SiteOptions`.
    """
    context = SiteOptions(**options).context(workspace, webroot)
    # Writing the configuration never needs Apache: only running it needs the modules where it says.
    found = Path(modules_dir) if modules_dir else apache_modules_dir()
    return render(
        "apache.conf",
        **context,
        server_root=Path(server_root).resolve(),
        user=_worker_user(),
        modules_dir=found or Path(APACHE_MODULE_DIRS[0]),
        modules_guessed=found is None,
        modules=["mpm_event", "authz_core", "mime", "dir", "alias", "include", "headers", "env", "setenvif",
                 "socache_shmcb", "ssl", "substitute"] + (["proxy", "proxy_http"] if context["proxy"] else []),
    )


def write_webroot(webroot: str | os.PathLike, *, kind: str, server_name: str, ca_name: str) -> Path:
    """Copy the gallery into ``webroot``: ``index.html`` (greeting by server-side includes),
    ``whoami.json`` and the pictures under ``static/``. Readable by everyone, as web roots are."""
    check_kind(kind)
    root = Path(webroot)
    make_private_folder(root)
    make_private_folder(root / "static")
    greeting = _NGINX_GREETING if kind == "nginx" else _APACHE_GREETING
    page = gallery_page(greeting, server_name=server_name, ca_name=ca_name, directives=True)
    write_atomically(root / "index.html", page.encode())
    if kind == "nginx":
        make_private_folder(root / ".kittylab")
        write_atomically(root / ".kittylab" / NGINX_NAMES_FILE, nginx_bytes_rules())
        (root / ".kittylab").chmod(0o755)
        greeting = _NGINX_WHOAMI
    whoami = ",\n".join(f'  "{key}": "{greeting[key]}"' for key in _WHOAMI_KEYS)
    write_atomically(root / "whoami.json", f"{{\n{whoami}\n}}\n".encode())
    for name, _ in pictures():
        write_atomically(root / "static" / name, picture_bytes(name))
    for folder in (root, root / "static"):
        folder.chmod(0o755)
    return root


def check_kind(kind: str) -> str:
    return check_choice(kind, KINDS, "web server")


def prepare_site(kind: str, workspace: Workspace, *, webroot: str | os.PathLike, server_root: str | os.PathLike,
                 **options: object) -> str:
    """``kind``'s configuration text, once what it reads is in place: the deploy folder (written by the
    workspace: :func:`kittylab.workspace.deploy.deploy_site`) and the gallery in ``webroot``.
    Bad options, no CA or no server certificate: one line, and nothing written.

    ``options``: the fields of :class:`SiteOptions`.
    """
    check_kind(kind)
    site = SiteOptions(**options)
    if kind == "nginx":
        text = nginx_config(workspace, webroot=webroot, **options)
    else:
        text = apache_config(workspace, webroot=webroot, server_root=server_root, **options)
    deploy.deploy_site(workspace, site.server_name, site.client_ca)
    write_webroot(webroot, kind=kind, server_name=site.server_name, ca_name=site.client_ca or workspace.ca_name)
    return text


def write_site(
    kind: str,
    workspace: Workspace,
    directory: str | os.PathLike,
    *,
    webroot: str | os.PathLike | None = None,
    config_name: str | None = None,
    **options: object,
) -> Site:
    """Write a complete site into ``directory``: the configuration file and the web root (``www``),
    after the deploy folder it reads (:func:`prepare_site`).

    ``options``: the fields of :class:`SiteOptions`.
    """
    check_kind(kind)
    site = SiteOptions(**options)
    folder = Path(directory)
    make_private_folder(folder)  # never group- or world-writable, whatever the umask; never through a link
    root = Path(webroot) if webroot is not None else folder / "www"
    text = prepare_site(kind, workspace, webroot=root, server_root=folder, **options)
    if kind == "nginx":
        make_private_folder(folder / "tmp")
    config = write_atomically(folder / (config_name or CONFIG_FILE[kind]), text.encode())
    return Site(kind=kind, config=config.resolve(), webroot=root.resolve(), host=site.host, port=site.port)
