"""The deploy folder: only what a web server needs, apart from the CA folder that holds the CA keys.

For each server it holds the certificate with its chain (``NAME.fullchain.pem``) and its key
(``NAME.key``, 0600); for each set of clients a web server lets in, the CA certificates to check
them against (``clients-of-CA.pem``) and every CRL of that chain (``clients-of-CA.crl``). A web
server's configuration points there, so nginx or Apache can run on another host that gets only
this folder (rsync it in a deploy hook). :func:`refresh` rewrites what changed and says which
files did, for the hook.

Clients of a root (or of the default issuing CA) are checked against every current CA under that
root, each with its CRL: while an issuing CA is being replaced, holders of the old CA's
certificates and of the new one's both get in, and a revoked one of either is refused.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import KittylabError
from ..pki.files import write_atomically
from .protocol import make_private_folder
from .workspace import Workspace

DEFAULT_FOLDER = "deploy"


@dataclass(frozen=True)
class Trust:
    """What a web server checks clients against: a CA file, a CRL file and how deep a chain may be."""

    label: str
    cas: tuple[str, ...]
    depth: int


def folder(workspace: Workspace) -> Path:
    """The deploy folder: as set with :func:`configure`, else ``HOME/deploy``."""
    return Path(_settings(workspace).get("dir") or workspace.home / DEFAULT_FOLDER).resolve()


def _settings(workspace: Workspace) -> dict:
    return json.loads(workspace._store.get_meta("deploy", "{}") or "{}")


def configured(workspace: Workspace) -> bool:
    """True once a web configuration or ``kittylab deploy`` has used the deploy folder."""
    return workspace._store.get_meta("deploy") is not None


def trust_for(workspace: Workspace, client_ca: str | None = None, *, now: dt.datetime | None = None) -> Trust:
    """The CAs a web server lets clients in from. An intermediate named on its own: it and the CAs above it.
    A root, or nothing (the default issuing CA): every current CA under its root."""
    now = now or dt.datetime.now(dt.timezone.utc)
    lineage = workspace.lineage(client_ca)
    if client_ca is not None and len(lineage) > 1:
        return Trust(lineage[0].name, tuple(r.name for r in lineage), len(lineage) + 1)
    root = lineage[-1].name
    # A revoked CA stays in the set: its parent's CRL, beside it, refuses everything below it by name.
    current = {r.name: r for r in workspace.records() if r.profile == "ca" and r.superseded_by is None
               and r.not_after > now}
    below = [name for name in current if name != root and root in (r.name for r in workspace.lineage(name))]
    depth = max([len(workspace.lineage(name)) for name in below] + [1]) + 1
    return Trust(root, (root, *below), max(2, depth))


def _trust_paths(out: Path, label: str) -> tuple[Path, Path]:
    return out / f"clients-of-{label}.pem", out / f"clients-of-{label}.crl"


def _server_paths(out: Path, name: str) -> tuple[Path, Path]:
    return out / f"{name}.fullchain.pem", out / f"{name}.key"


def trust_files(workspace: Workspace, trust: Trust) -> dict[Path, bytes]:
    """``clients-of-LABEL.pem`` (every CA certificate of the set) and ``clients-of-LABEL.crl`` (their CRLs)."""
    pems = "".join(workspace.ca_record(name).pem for name in trust.cas).encode()
    crls = b"".join(workspace.path(name, "crl").read_bytes() for name in trust.cas if workspace.path(name, "crl").exists())
    return dict(zip(_trust_paths(folder(workspace), trust.label), (pems, crls)))


def _check_server(workspace: Workspace, name: str) -> None:
    if not workspace.path(name, "key").is_file() or not workspace.path(name, "crt").is_file():
        raise KittylabError(f"{workspace.path(name, 'crt')} or its key is missing: issue the server certificate first",
                            fix="issue-server", name=name)


def server_files(workspace: Workspace, name: str) -> dict[Path, bytes]:
    """``NAME.fullchain.pem`` and ``NAME.key`` of a server certificate."""
    _check_server(workspace, name)
    data = (workspace.fullchain_path(name).read_bytes(), workspace.path(name, "key").read_bytes())
    return dict(zip(_server_paths(folder(workspace), name), data))


@dataclass(frozen=True)
class ServerFiles:
    """The files a TLS server is built from: its certificate (with its chain) and key, the CA file and the CRL
    file its clients are checked against, and how deep a client's chain may be (None: not limited). The
    picture-server reads them in the workspace (:meth:`of`), a web server in the deploy folder (:func:`site_files`)."""

    cert: Path
    key: Path
    ca: Path
    crl: Path
    depth: int | None = None

    @classmethod
    def of(cls, workspace: Workspace, name: str, client_ca: str | None = None) -> "ServerFiles":
        """The server ``name``'s files in a workspace; clients are checked against ``client_ca``
        (default: the issuing CA). Below an intermediate CA the server sends its full chain and the
        CA and CRL files hold every level."""
        try:
            cert = workspace.fullchain_path(name)
        except KittylabError:
            cert = workspace.path(name, "crt")  # not issued: check() says what to do
        return cls(cert, workspace.path(name, "key"), workspace.chain_path(client_ca), workspace.crl_chain_path(client_ca))

    def check(self) -> None:
        for label, path in (("certificate", self.cert), ("key", self.key), ("CA certificate", self.ca),
                            ("CRL", self.crl)):
            if not path.is_file():
                hint, fix = {
                    "CRL": ("publish one", "crl"),
                    "CA certificate": ("create the CA first", "init"),
                }.get(label, ("issue it first", "issue-server"))
                raise KittylabError(f"the server's {label} {path} is missing: {hint}", fix=fix, name=self.cert.stem)

    def signature(self) -> tuple:
        """Changes whenever one of the files is replaced or rewritten."""
        stats = []
        for path in (self.cert, self.key, self.ca, self.crl):
            try:
                st = path.stat()
            except OSError:
                stats.append(None)
            else:
                stats.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(stats)


def site_files(workspace: Workspace, server: str, client_ca: str | None = None) -> ServerFiles:
    """Where :func:`deploy_site` puts the files of web server ``server`` and of the clients of ``client_ca``
    (see :func:`trust_for`). Only reads: one line when there is no CA or no server certificate."""
    trust = trust_for(workspace, client_ca)
    _check_server(workspace, server)
    out = folder(workspace)
    return ServerFiles(*_server_paths(out, server), *_trust_paths(out, trust.label), trust.depth)


def deploy_site(workspace: Workspace, server: str, client_ca: str | None = None) -> ServerFiles:
    """Put the files a web server's configuration reads into the deploy folder (:func:`site_files`) and remember
    them, so that every later change keeps them current; return where they are. A missing CA or server
    certificate is one line, and nothing is written."""
    files = site_files(workspace, server, client_ca)
    configure(workspace, server=server, client_ca=client_ca)
    return files


def configure(workspace: Workspace, *, directory: str | Path | None = None, server: str | None = None,
              client_ca: str | None = ..., hook: str | None = None) -> dict:
    """Remember the deploy folder, a server to deploy, a set of clients (``client_ca``; None: the default
    CA's root) and a hook command, and bring the folder up to date (the workspace's :attr:`deployed` names
    the files that changed), under the workspace's lock; return the settings."""
    with workspace._writing():  # read under the lock too: two writers never lose each other's server
        before = _settings(workspace)
        settings = json.loads(json.dumps(before))
        settings.setdefault("servers", [])
        settings.setdefault("trust", [])
        if directory is not None:
            settings["dir"] = str(Path(directory).absolute())
        if server is not None and server not in settings["servers"]:
            settings["servers"].append(server)
        if client_ca is not ... and (client_ca or "") not in settings["trust"]:
            settings["trust"].append(client_ca or "")
        if hook is not None:
            settings["hook"] = hook or None
        if settings != before or not configured(workspace):
            with workspace._store.transaction():
                workspace._store.set_meta("deploy", json.dumps(settings, sort_keys=True))
                workspace._audit("deploy", name=str(folder(workspace)), details=settings)
        workspace._redeploy()
    return settings


def hook(workspace: Workspace) -> str | None:
    """The remembered deploy hook command, if any."""
    return _settings(workspace).get("hook")


def suspend(workspace: Workspace) -> dict:
    """After a restore: forget the deploy folder and hook, which name the original workspace's (production's);
    return what was forgotten (``dir``, ``hook``), also kept as the ``deploy_suspended`` setting
    (:func:`suspended`: the command line words it as the command that turns them on again).

    Called inside the caller's write lock and store transaction. The servers and client sets stay:
    they deploy into the restored workspace's own ``HOME/deploy`` until :func:`configure` names another folder.
    """
    settings = _settings(workspace)
    forgotten = {key: settings.pop(key) for key in ("dir", "hook") if settings.get(key)}
    if configured(workspace):
        workspace._store.set_meta("deploy", json.dumps(settings, sort_keys=True))
    if forgotten:
        workspace._store.set_meta("deploy_suspended", json.dumps(forgotten, sort_keys=True))
    return forgotten


def suspended(workspace: Workspace) -> dict:
    """The deploy folder and hook a restore left out (:func:`suspend`), if any."""
    return json.loads(workspace._store.get_meta("deploy_suspended", "{}") or "{}")


def pending(workspace: Workspace) -> list[str]:
    """The deploy files whose hook run failed (:func:`remember_hook_run`): the next run names them again."""
    return json.loads(workspace._store.get_meta("deploy_pending", "[]") or "[]")


def remember_hook_run(workspace: Workspace, changed: list[str], *, ok: bool) -> None:
    """After the deploy hook ran for ``changed``: forget them when it succeeded, keep them for the next run when not
    (so ``kittylab deploy`` runs a failed hook again instead of saying the folder is up to date)."""
    files = [] if ok else sorted(set(pending(workspace)) | set(changed))
    if files == pending(workspace):
        return
    with workspace._writing(), workspace._store.transaction():
        workspace._store.set_meta("deploy_pending", json.dumps(files))


def refresh(workspace: Workspace) -> list[Path]:
    """Rewrite the deploy folder's files that differ from the workspace; return the ones that changed."""
    if not configured(workspace):
        return []
    settings = _settings(workspace)
    wanted: dict[Path, bytes] = {}
    for server in settings.get("servers", []):
        try:
            wanted.update(server_files(workspace, server))
        except KittylabError:
            continue  # its key went to its owner: the change that called this still stands; deploy says so
    for client_ca in settings.get("trust", []):
        wanted.update(trust_files(workspace, trust_for(workspace, client_ca or None)))
    make_private_folder(folder(workspace))
    changed = []
    for path, data in wanted.items():
        try:
            if path.read_bytes() == data:
                continue
        except OSError:
            pass
        write_atomically(path, data, secret=path.suffix == ".key")
        changed.append(path)
    return changed
