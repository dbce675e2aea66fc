"""Helpers the tutorial notebooks call, so each notebook stays a few thin cells.

- :data:`STEPS`: the article's seventeen steps, each with the OpenSSL command it types.
- :func:`prepare`: a notebook can start in a fresh kernel, in any order, from an empty workspace:
  it recreates what the earlier steps would have made, and says so in one line.
- :func:`openssl_side_by_side`: run the OpenSSL command for real and show its answer beside
  kittylab's, so a learner sees the two agree.
- :func:`exercise`: small exercises whose check gives a hint, with the solution one click away.
- :func:`check_environment` and :func:`workspace_files` for the welcome and summary notebooks.

Nothing here prints a private key: command output is scrubbed of private key blocks.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import KittylabError
from ..pki import openssl
from ..pki.ca import CertificateAuthority
from ..pki.csr import load_csr, make_csr
from ..pki.facts import Record, alternative_names
from ..pki.keys import PrivateKey, generate_key, load_key
from ..pki.names import Subject
from ..pki.verify import Verification
from ..render.templates import macro
from ..workspace.workspace import Issued, Workspace, check_name, default_home

# -- the story's values, as the article uses them ----------------------------------------------

CA_NAME = "kitty-ca"
CA_SUBJECT = Subject(cn=CA_NAME, o="Kitty Inc", c="DE")
CA_KEY = "rsa4096"
SERVER_NAME = "picture-server"
SERVER_DNS = ("localhost",)
SERVER_IP = ("127.0.0.1",)
CLIENT_NAME = "eager-client"
CLIENT_EMAIL = "eager-client@kitty.test"
LEAF_KEY = "rsa2048"
#: The story's p12 password, fixed so that every run reproduces it. For a real client let
#: kittylab generate one (leave the password out) and hand it over on another channel.
P12_PASSWORD = "kitty-pass"
LEGACY_P12 = "eager-client-legacy.p12"
REVOKE_REASON = "key-compromise"

SCRUBBED = "[private key not shown]"
_PRIVATE_BLOCK = re.compile(
    r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)


@dataclass(frozen=True)
class Step:
    number: int
    who: str
    what: str
    #: The OpenSSL command (or server line) that does what kittylab does at this step.
    command: str
    #: The command as the article types it, where it makes something else than kittylab does.
    article: str = ""


#: How the story's CA signs a leaf in OpenSSL's words (steps 7 and 13).
_SIGNED_BY_CA = {"ca_cert": f"{CA_NAME}.crt", "ca_key": f"{CA_NAME}.key", "rsa": LEAF_KEY.startswith("rsa")}


def _story_steps() -> tuple[Step, ...]:
    ca, server, client = CA_NAME, SERVER_NAME, CLIENT_NAME
    server_sans = [f"DNS:{name}" for name in SERVER_DNS] + [f"IP:{ip}" for ip in SERVER_IP]
    server_subject = Subject(cn=server, o=CA_SUBJECT.o, c=CA_SUBJECT.c)
    client_subject = Subject(cn=client, o=CA_SUBJECT.o, c=CA_SUBJECT.c)
    return (
        Step(1, ca, "makes its private key", openssl.genkey(CA_KEY, f"{ca}.key")),
        Step(2, ca, "signs its own certificate", openssl.self_signed_ca(f"{ca}.key", f"{ca}.crt", CA_SUBJECT),
             openssl.article_self_signed_ca(f"{ca}.key", f"{ca}.crt", CA_SUBJECT)),
        Step(3, ca, "hands out its certificate, which everyone may see", openssl.show(f"{ca}.crt")),
        Step(4, server, "makes its private key", openssl.genkey(LEAF_KEY, f"{server}.key")),
        Step(5, server, "writes a certificate signing request (CSR)",
             openssl.csr(f"{server}.key", f"{server}.csr", server_subject, sans=server_sans)),
        Step(6, server, "sends the CSR to the CA", f"openssl req -in {server}.csr -noout -verify -subject"),
        Step(7, ca, "signs the request with the server profile",
             openssl.sign(f"{server}.csr", f"{server}.crt", profile="server", sans=server_sans, **_SIGNED_BY_CA),
             openssl.article_sign(f"{server}.csr", f"{server}.crt", profile="server")),
        Step(8, ca, "sends the certificate back", openssl.verify(f"{server}.crt", f"{ca}.crt", purpose="server")),
        Step(9, server, "configures the web server with its key and certificate", "ssl_certificate picture-server.crt;"),
        Step(10, server, "asks every client for a certificate signed by the CA", "ssl_verify_client on;"),
        *_client_steps(client_subject, [CLIENT_EMAIL]),
        Step(15, client, "connects and shows its certificate",
             f"curl --cert-type P12 --cert {client}.p12:{P12_PASSWORD} --cacert {ca}.crt https://localhost:8443/"),
        Step(16, server, "trusts the client because the CA signed it", "ssl_client_certificate kitty-ca.crt;"),
        Step(17, client, "sees the pictures", "curl ... -o pictures.html"),
    )


def _client_steps(subject: Subject, emails: list[str]) -> tuple[Step, ...]:
    """Steps 11-14 for a client called ``subject.cn``, with ``emails`` as its alternative names."""
    ca, client = CA_NAME, subject.cn
    sans = [f"email:{address}" for address in emails]
    return (
        Step(11, client, "makes its private key", openssl.genkey(LEAF_KEY, f"{client}.key")),
        Step(12, client, "writes a CSR", openssl.csr(f"{client}.key", f"{client}.csr", subject, sans=sans),
             openssl.csr(f"{client}.key", f"{client}.csr", subject)),
        Step(13, ca, "signs it with the client profile",
             openssl.sign(f"{client}.csr", f"{client}.crt", profile="client", sans=sans, **_SIGNED_BY_CA),
             openssl.article_sign(f"{client}.csr", f"{client}.crt", profile="client")),
        Step(14, client, "bundles key and certificate into a p12 for browsers",
             openssl.pkcs12(f"{client}.key", f"{client}.crt", f"{ca}.crt", f"{client}.p12", name=client)),
    )


#: The article's seventeen steps, in order.
STEPS: tuple[Step, ...] = _story_steps()


def steps_table() -> "Table":
    """The seventeen steps as a table, as the welcome notebook shows them."""
    return Table(
        ("Step", "Who", "What", "OpenSSL: the same as kittylab", "The article types (where it differs)"),
        [(str(s.number), s.who, s.what, s.command, s.article) for s in STEPS],
        code_columns=(3, 4),
    )


# -- preparing a notebook's workspace ----------------------------------------------------------


@dataclass(frozen=True)
class _Stage:
    """What a range of steps leaves in the workspace, how to tell it is there, how to remake it."""

    first: int
    last: int
    label: str
    present: Callable[[Workspace], bool]
    make: Callable[[Workspace], None]
    undo: Callable[[Workspace], str]

    @property
    def steps(self) -> str:
        return f"steps {self.first}-{self.last}" if self.last < REVOCATION else "the revocation"


#: ``prepare(REVOCATION)`` prepares the revocation notebook; ``prepare(SUMMARY)`` the summary.
REVOCATION = 18
SUMMARY = 19


def _has_current(name: str) -> Callable[[Workspace], bool]:
    def present(ws: Workspace) -> bool:
        return ws.has_ca and ws.current(name) is not None

    return present


def _client_revoked(ws: Workspace) -> bool:
    """True when the story's last word on eager-client is step 18's revocation (a later
    certificate for it, or one a re-run set aside as superseded, is not)."""
    latest = [r for r in ws.records() if r.name == CLIENT_NAME] if ws.has_ca else []
    return bool(latest) and latest[-1].reason == REVOKE_REASON


def _make_ca(ws: Workspace) -> None:
    ws.init_ca(CA_SUBJECT, key=CA_KEY)


def _make_server(ws: Workspace) -> None:
    ws.issue(SERVER_NAME, profile="server", key=LEAF_KEY, dns=SERVER_DNS, ip=SERVER_IP)


def _make_client(ws: Workspace) -> None:
    ws.issue(CLIENT_NAME, profile="client", key=LEAF_KEY, email=[CLIENT_EMAIL], p12=True, p12_password=P12_PASSWORD)


def _revoke_client(ws: Workspace) -> None:
    ws.revoke(CLIENT_NAME, reason=REVOKE_REASON)


#: The reason a re-run gives the certificate it sets aside so that its lesson can issue it again.
RERUN_REASON = "superseded"


def _retire(name: str) -> Callable[[Workspace], str]:
    """Undo a leaf's stage for a re-run: revoke its current certificate as superseded (the CA stays)."""

    def retire(ws: Workspace) -> str:
        imported = (f"; the {name}.p12 a browser imported from it no longer gets in: import the new one"
                    if name == CLIENT_NAME else "")
        if ws.current(name) is None:
            return f"{name}'s certificate from it stays revoked and this lesson issues a new one{imported}"
        ws.revoke(name, reason=RERUN_REASON)
        return (f"revoked {name}'s certificate from it ({RERUN_REASON}) so that this lesson issues a new one "
                f"from the same {CA_NAME}{imported}")

    return retire


def _unrevoke_story(ws: Workspace) -> str:
    """Undo step 18 for a re-run of a lesson before it: a new eager-client (the revoked one stays revoked)."""
    _make_client(ws)
    return (f"it had revoked {CLIENT_NAME}: issued a new {CLIENT_NAME}.p12 from the same {CA_NAME} "
            "(a browser needs this one: the revoked one no longer gets in)")


_STAGES = (
    _Stage(1, 3, CA_NAME, lambda ws: ws.has_ca, _make_ca, lambda ws: _set_aside(ws, f"{ws.home.name}/")),
    _Stage(4, 8, SERVER_NAME, _has_current(SERVER_NAME), _make_server, _retire(SERVER_NAME)),
    _Stage(11, 14, CLIENT_NAME, lambda ws: _has_current(CLIENT_NAME)(ws) or _client_revoked(ws), _make_client,
           _retire(CLIENT_NAME)),
    _Stage(REVOCATION, REVOCATION, f"{CLIENT_NAME} revoked", _client_revoked, _revoke_client, _unrevoke_story),
)

#: How many earlier runs set aside in ``earlier-runs/`` are kept (each holds a CA's private key).
EARLIER_RUNS_KEPT = 1


def prepare(step: int, *, home: str | os.PathLike | None = None) -> Workspace:
    """Open the story's workspace as it is before ``step``, making what earlier steps would have made.

    A notebook calls this first, so it runs in a fresh kernel, in any order, from an empty
    workspace. If the workspace already went past ``step`` (the notebook runs a second time),
    the lesson reuses what it can: the CA stays (so what a browser imported stays trusted), the
    certificate this lesson issues is revoked as superseded so that it can issue it again, and a
    lesson before the revocation gets a new eager-client. Only a re-run of the CA's own lesson (steps 1-3) sets the whole earlier run
    aside in ``earlier-runs/`` (the latest :data:`EARLIER_RUNS_KEPT` runs are kept, older ones are
    deleted with their keys) and says what that means for a CA or p12 imported into a browser.
    Says what it did.
    """
    if not isinstance(step, int) or not 1 <= step <= SUMMARY:
        raise KittylabError(f"step {step!r} is not one of the story's steps (1-{SUMMARY})")
    ws = Workspace(home)
    folder = f"{ws.home.name}/"
    undone: list[str] = []
    later = [stage for stage in _STAGES if stage.first >= step and stage.present(ws)]
    if later and later[0].first in (step, REVOCATION):
        # this lesson makes that stage again (or needs the client step 18 revoked): undo that one only
        undone.append(later[0].undo(ws))
        ws = Workspace(ws.home) if later[0] is _STAGES[0] else ws
    kept, made = [], []
    for stage in _STAGES:
        if stage.last >= step:
            break
        if stage.present(ws):
            kept.append(stage)
        else:
            stage.make(ws)
            made.append(stage)
    print(_prepared_message(step, folder, kept, made, undone))
    return ws


def _prepared_message(step: int, folder: str, kept: list[_Stage], made: list[_Stage], undone: list[str]) -> str:
    parts = []
    if undone:
        parts.append("an earlier run went past this point: " + "; ".join(undone))
    if kept:
        parts.append("kept " + ", ".join(f"{s.label} ({s.steps})" for s in kept))
    if made:
        parts.append(
            "recreated what earlier notebooks would have made: " + ", ".join(f"{s.label} ({s.steps})" for s in made)
        )
    if not kept and not made and not undone:
        parts.append("starting from an empty workspace")
    where = f"Step {step}" if step < REVOCATION else ("Revocation" if step == REVOCATION else "Summary")
    return f"{where}, in {folder}: " + "; ".join(parts) + "."


def _set_aside(ws: Workspace, folder: str) -> str:
    """Set the story's workspace aside (:meth:`Workspace.set_aside`: its files move into
    ``earlier-runs/run-TIME/`` under its lock, older runs beyond :data:`EARLIER_RUNS_KEPT` are deleted)
    and say so, with what it means for a browser. The workspaces of other lessons inside it
    (:func:`lesson_home`) stay where they are; ``run-TIME/`` opens as the whole earlier workspace.
    """
    old_ca = f"{CA_NAME} (SHA-256 {ws.ca_record().fingerprint[:23]}...)"
    run, older = ws.set_aside(keep=EARLIER_RUNS_KEPT)
    deleted = f"; deleted {older} older earlier run(s) with their private keys" if older else ""
    return (f"moved it to {folder}{run.relative_to(ws.home)}/ (the latest earlier run is kept there{deleted})."
            f" This lesson makes a NEW {CA_NAME} with a new fingerprint: a {CA_NAME}.crt or {CLIENT_NAME}.p12 you"
            f" imported into a browser comes from the old {old_ca} and is no longer trusted; remove it and import"
            " the new ones (notebook 05 says how)")


def lesson_home(name: str) -> Path:
    """The workspace folder of a lesson beyond the story (two CAs, OCSP, the workshop...): inside
    the tutorial's workspace folder, so the kitty-ca of notebooks 01-07 is never replaced."""
    return default_home() / name


# -- the learner's own values (notebook 04): every step follows the form ---------------------


def own_name(form: Any) -> str:
    """The name the form's CN gives every file of steps 11-14: ``NAME.key``, ``.csr``, ``.crt``, ``.p12``."""
    cn = form.subject.cn
    try:
        return check_name(cn)
    except KittylabError:
        raise KittylabError(
            f"the CN {cn!r} cannot name files: use 1-64 letters, digits, '.', '-' or '_' (no spaces)"
        ) from None


def own_commands(form: Any) -> Table:
    """The OpenSSL commands of steps 11-14 for the form's values: what the article's learner would
    type for their own CN and email address (the lesson's text shows the story's)."""
    own_name(form)
    steps = _client_steps(form.subject, form.emails)
    return Table(("Step", "Who", "What", "OpenSSL, for the form's values"),
                 [(str(s.number), s.who, s.what, s.command) for s in steps], code_columns=(3,))  # fmt: skip


def own_key(workspace: Workspace, form: Any, kind: str = LEAF_KEY) -> PrivateKey:
    """Step 11 for the form's CN: make ``NAME.key``; run again, it keeps the key already there
    (a new key would no longer match a request or certificate made for the old one)."""
    path = workspace.path(own_name(form), "key")
    if path.exists():
        print(f"kept {path.name}, made when this cell first ran (delete the file to make a new key)")
        return load_key(path)
    key = generate_key(kind)
    workspace.keep_own(own_name(form), key)
    return key


def _made_before(workspace: Workspace, form: Any, suffix: str, rerun: str) -> tuple[str, Path]:
    """The form's name and its ``NAME.suffix``, which an earlier step made: refused (``rerun`` says
    what to run) when it is not there, as when the learner changed the CN since."""
    name = own_name(form)
    path = workspace.path(name, suffix)
    if not path.exists():
        raise KittylabError(f"there is no {name}.{suffix} yet: the CN is now {name}, so run {rerun}")
    return name, path


def own_csr(workspace: Workspace, form: Any) -> Any:
    """Step 12 for the form's values: ``NAME.csr`` with the form's subject, signed with
    ``NAME.key``, asking for the form's email addresses as alternative names."""
    name, key_path = _made_before(workspace, form, "key", "step 11's cell again to make its key")
    csr = make_csr(load_key(key_path), form.subject, email=form.emails)
    workspace.keep_own(name, csr)
    return csr


def sign_own(workspace: Workspace, form: Any, *, profile: str = "client") -> Issued | Record:
    """Step 13: the CA signs ``NAME.csr`` as ``NAME.crt``. Run again for the same request, it
    shows the certificate already made instead of refusing to sign twice."""
    name, csr_path = _made_before(workspace, form, "csr", "the cells of steps 11 and 12 again")
    request = load_csr(csr_path)
    current = workspace.current(name)
    if current is not None:
        certificate = current.certificate
        if (certificate.public_key() == request.public_key() and certificate.subject == request.subject
                and sorted(openssl.sans_of(certificate)) == sorted(openssl.sans_of(request))):
            print(f"{name}.csr is signed already: here is its certificate, {name}.crt")
            return current
        raise KittylabError(
            f"{name} already has a certificate, made from another request: revoke it first"
            f' (ws.revoke("{name}")) or give the form another CN'
        )
    return workspace.sign_csr(request, profile=profile, name=name)


def legacy_p12(workspace: Workspace, name: str, *, password: str) -> Path:
    """``NAME-legacy.p12`` beside ``NAME.p12``: the same key, certificate and chain in the legacy
    flavour (3DES, SHA-1 MAC) that Apple keychains and older Windows and Android need."""
    return workspace.export_p12(name, password=password, legacy=True, out=workspace.home / f"{name}-legacy.p12")[0]


# -- showing things ----------------------------------------------------------------------------


@dataclass
class Table:
    """A small table that renders as HTML in a notebook and as aligned text everywhere else."""

    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    code_columns: tuple[int, ...] = ()

    def __repr__(self) -> str:
        widths = [max(len(str(row[i])) for row in (self.header, *self.rows)) for i in range(len(self.header))]
        lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (self.header, *self.rows)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return macro("tutorial.html", "table", header=self.header, rows=self.rows, code_columns=self.code_columns)


def scrub_private_keys(text: str) -> str:
    """Replace any PEM private key block in ``text``, so no output can show key material."""
    return _PRIVATE_BLOCK.sub(SCRUBBED, text)


def _verdict(value: Any) -> tuple[bool | None, str]:
    """kittylab's answer as (accepted, text): a Verification, a bool, or an exception."""
    if isinstance(value, Verification):
        return value.ok, str(value)
    if isinstance(value, BaseException):
        return False, f"refused: {value}"
    if isinstance(value, bool):
        return value, "accepted" if value else "refused"
    return None, str(value)


@dataclass
class OpenSSLRun:
    """An OpenSSL command that really ran in the workspace, with kittylab's answer beside it."""

    command: str
    returncode: int | None
    output: str
    kittylab: Any = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def agrees(self) -> bool | None:
        """True if OpenSSL and kittylab came to the same answer; None if there is nothing to compare."""
        accepted, _ = _verdict(self.kittylab)
        if self.kittylab is None or accepted is None or self.returncode is None:
            return None
        return accepted == self.ok

    def _summary(self) -> str:
        if self.returncode is None:
            return "OpenSSL did not run"
        if self.agrees is None:
            return f"OpenSSL: exit code {self.returncode}"
        openssl_says = "accepted" if self.ok else f"refused (exit code {self.returncode})"
        accepted, _ = _verdict(self.kittylab)
        kittylab_says = "accepted" if accepted else "refused"
        together = "they agree" if self.agrees else "they DISAGREE"
        return f"OpenSSL: {openssl_says} · kittylab: {kittylab_says} · {together}"

    def __repr__(self) -> str:
        lines = [f"$ {self.command}", self.output.rstrip()]
        if self.kittylab is not None:
            lines += ["", "kittylab:", _verdict(self.kittylab)[1]]
        lines.append(self._summary())
        return "\n".join(line for line in lines if line is not None)

    def _repr_html_(self) -> str:
        return macro(
            "tutorial.html",
            "side_by_side",
            command=self.command,
            output=self.output.rstrip(),
            kittylab=_verdict(self.kittylab)[1] if self.kittylab is not None else None,
            verdict_class={True: "kl-agree", False: "kl-disagree", None: "kl-ran"}[self.agrees],
            summary=self._summary(),
        )


def openssl_side_by_side(command: str, *, workspace: Workspace, kittylab: Any = None) -> OpenSSLRun:
    """Run an ``openssl`` command in the workspace folder and show its answer beside kittylab's.

    ``kittylab`` is what kittylab said about the same thing: a :class:`Verification`, a bool,
    or an exception it raised. The command runs without a shell; its output has any private
    key scrubbed. If ``openssl`` is not installed the result says so instead of failing.
    """
    argv = shlex.split(command)
    if not argv or argv[0] != "openssl":
        raise KittylabError(f"not an openssl command: {command!r}")
    binary = shutil.which("openssl")
    if binary is None:
        return OpenSSLRun(command, None, "openssl is not installed here (apt-get install openssl)", kittylab)
    completed = subprocess.run(
        [binary, *argv[1:]],
        cwd=workspace.home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LC_ALL": "C"},
    )
    return OpenSSLRun(command, completed.returncode, scrub_private_keys(completed.stdout + completed.stderr), kittylab)


def workspace_files(workspace: Workspace) -> Table:
    """The workspace's files with their permissions: secrets are readable by their owner only."""
    rows = []
    for path in sorted(workspace.home.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            mode = path.stat().st_mode & 0o777
            rows.append((path.name, f"{mode:04o}", _what_file(path.name, mode)))
    return Table(("File", "Mode", "What it is"), rows)


_FILE_KINDS = {
    "key": "private key: stays with its owner",
    "csr": "certificate signing request: public, sent to the CA",
    "crt": "certificate: public",
    "crl": "certificate revocation list: public, for servers",
    "p12": "key and certificate for browsers: secret, password-protected",
    "sqlite3": "kittylab's record of everything the CA issued",
}


def _what_file(name: str, mode: int) -> str:
    kind = _FILE_KINDS.get(name.rsplit(".", 1)[-1], "")
    return kind + (" (0600: only you can read it)" if mode == 0o600 and kind else "")


def lines_with(word: str, path: str | os.PathLike) -> str:
    """The directives of a configuration file that start with ``word`` (``ssl_``, ``SSL``), stripped."""
    return "\n".join(line.strip() for line in Path(path).read_text().splitlines() if line.strip().startswith(word))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now, for a web server a notebook (or a test) starts: nginx, Apache
    and JupyterLab need a number up front."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


# -- a learner's machine: kittylab stands in for programs that are not installed ----------------

#: How to install what a lesson would rather run, on the systems learners use.
INSTALL_HINTS = {
    "nginx": "apt-get install nginx, brew install nginx, or conda install -c conda-forge nginx",
    "apache": "apt-get install apache2, or brew install httpd",
    "easy-rsa": "apt-get install easy-rsa, or brew install easy-rsa",
}


def _stand_in_line(missing: str, instead: str) -> str:
    """One line, always starting "stand-in: ", so the tutorial's tests can tell it apart."""
    return f"stand-in: {missing} is not installed here, so {instead} ran instead (to try {missing}: {INSTALL_HINTS[missing]})"


@dataclass
class Knock:
    """What a web server answered a client that showed no certificate: which ``server`` answered,
    what it sent (``sent``: nginx's HTTP 400 page and its title, or a TLS alert) and what that means."""

    server: str
    answer: str
    stand_in: str | None = None
    sent: str = ""

    def __repr__(self) -> str:
        lines = [f"{self.server} answered: {self.sent}"] if self.sent else []
        return "\n".join(lines + [self.answer] + ([self.stand_in] if self.stand_in else []))


def knock_without_certificate(workspace: Workspace, site: Any) -> Knock:
    """Start ``site``'s web server (nginx or Apache, as written by ``write_site``) and connect to it
    without a client certificate: it answers, but only to refuse; the answer names the server and
    what it sent (nginx: an HTTP 400 page, whose title it quotes).

    Where that web server is not installed (a learner's laptop), kittylab's own picture-server
    serves the same key, certificate, CA and CRL and refuses the same way; the answer says so in
    a line starting "stand-in:" and says how to install the real one.
    """
    from ..net.client import Refused, fetch
    from ..net.server import PictureServer
    from .sites import RunningSite, web_server_binary

    def knock(server: str, url: str, stand_in: str | None = None) -> Knock:
        try:
            response = fetch(url, ca=workspace.ca_certificate_path, images=False)
        except Refused as refusal:
            return Knock(server, str(refusal), stand_in, refusal.answer)
        return Knock(server, "the server let a client without a certificate in", stand_in, f"HTTP {response.status}")

    try:
        web_server_binary(site.kind)
    except KittylabError:
        with PictureServer(workspace) as server:
            return knock("picture-server", server.url, _stand_in_line(site.kind, "kittylab's picture-server"))
    with RunningSite(site) as web:
        return knock(site.kind, web.url)


@dataclass
class OldCA:
    """A CA made the old way, as it would arrive for migration: an ``index.txt`` database, the CA's
    certificate and key, the certificates it issued and its CRL."""

    folder: Path
    tool: str
    index: Path
    ca_certificate: Path
    crl: Path
    stand_in: str | None = None

    def __repr__(self) -> str:
        lines = [
            f"{OLD_CA_CN}, in {self.folder.name}/",
            f"issued {OLD_CLIENT} (client) and {OLD_SERVER} (server), revoked {OLD_CLIENT} (keyCompromise), published a CRL",
        ]
        return "\n".join(lines + ([self.stand_in] if self.stand_in else []))


OLD_CA_CN = "Kitty Easy CA"
OLD_CLIENT = "alice"
OLD_SERVER = "www"


def build_old_ca(folder: str | os.PathLike) -> OldCA:
    """Make a small P-256 CA in ``folder`` as many CAs run today: with easy-rsa (a ``pki/`` folder)
    where it is installed, else with ``openssl ca`` itself, which easy-rsa runs underneath, in
    easy-rsa's layout (``pki/index.txt``, ``pki/ca.crt``, ``pki/private/ca.key``, ``pki/issued/``).
    Either way it issues a client and a server certificate, revokes the client (keyCompromise)
    and publishes a CRL.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    easyrsa = find_easyrsa()
    if easyrsa:
        return _old_ca_with_easyrsa(easyrsa, folder)
    old = _old_ca_with_openssl_ca(folder)
    old.stand_in = _stand_in_line("easy-rsa", "openssl ca (in easy-rsa's layout)")
    return old


def find_easyrsa() -> str | None:
    """easy-rsa's script: on the PATH, or where Debian's package puts it (not on the PATH)."""
    found = shutil.which("easyrsa")
    debian = "/usr/share/easy-rsa/easyrsa"
    return found or (debian if os.access(debian, os.X_OK) else None)


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        last = (scrub_private_keys(done.stderr).strip().splitlines() or ["no message"])[-1]
        raise KittylabError(f"{Path(argv[0]).name} {argv[1]} failed: {last}")


def _old_ca_with_easyrsa(easyrsa: str, folder: Path) -> OldCA:
    pki = folder / "pki"
    env = dict(os.environ, EASYRSA_BATCH="1", EASYRSA_PKI=str(pki), EASYRSA_ALGO="ec", EASYRSA_CURVE="prime256v1")
    for step in (["init-pki"], [f"--req-cn={OLD_CA_CN}", "build-ca", "nopass"],
                 ["build-client-full", OLD_CLIENT, "nopass"], ["build-server-full", OLD_SERVER, "nopass"],
                 ["revoke", OLD_CLIENT, "keyCompromise"], ["gen-crl"]):  # fmt: skip
        _run([easyrsa, *step], cwd=folder, env=env)
    return OldCA(folder, "easy-rsa", pki / "index.txt", pki / "ca.crt", pki / "crl.pem")


_OPENSSL_CA_CONFIG = """\
# openssl ca's configuration for a small CA in easy-rsa's layout, as kittylab's migration lesson makes it.
[ca]
default_ca = old_ca

[old_ca]
dir              = .
database         = $dir/index.txt
new_certs_dir    = $dir/certs_by_serial
certificate      = $dir/ca.crt
private_key      = $dir/private/ca.key
crlnumber        = $dir/crlnumber
serial           = $dir/serial
default_md       = sha256
default_days     = 825
default_crl_days = 180
policy           = policy_any
unique_subject   = no
copy_extensions  = none

[policy_any]
commonName = supplied

[req]
distinguished_name = req_dn
prompt             = no

[req_dn]
CN = unused

[ca_cert]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[client]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[server]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:www
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
"""


def _old_ca_with_openssl_ca(folder: Path) -> OldCA:
    pki = folder / "pki"
    binary = shutil.which("openssl")
    if binary is None:
        raise KittylabError("neither easy-rsa nor the openssl command is installed: install one (conda install -c conda-forge openssl)")
    for sub in ("private", "certs_by_serial", "issued", "reqs"):
        (pki / sub).mkdir(mode=0o700 if sub == "private" else 0o755, parents=True, exist_ok=True)
    (pki / "index.txt").write_text("")
    (pki / "crlnumber").write_text("01\n")
    (pki / "serial").write_text("01\n")  # required by the configuration; -rand_serial picks the serials
    (pki / "openssl.cnf").write_text(_OPENSSL_CA_CONFIG)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    config = ["-config", "openssl.cnf"]
    _run([binary, "req", "-x509", *ec, *config, "-extensions", "ca_cert", "-days", "3650",
          "-keyout", "private/ca.key", "-out", "ca.crt", "-subj", f"/CN={OLD_CA_CN}"], cwd=pki)  # fmt: skip
    for name, profile in ((OLD_CLIENT, "client"), (OLD_SERVER, "server")):
        _run([binary, "req", "-new", *ec, *config, "-keyout", f"private/{name}.key", "-out", f"reqs/{name}.req",
              "-subj", f"/CN={name}"], cwd=pki)  # fmt: skip
        _run([binary, "ca", "-batch", "-notext", "-rand_serial", *config, "-extensions", profile,
              "-in", f"reqs/{name}.req", "-out", f"issued/{name}.crt"], cwd=pki)  # fmt: skip
    _run([binary, "ca", *config, "-revoke", f"issued/{OLD_CLIENT}.crt", "-crl_reason", "keyCompromise"], cwd=pki)
    _run([binary, "ca", *config, "-gencrl", "-out", "crl.pem"], cwd=pki)
    return OldCA(folder, "openssl ca", pki / "index.txt", pki / "ca.crt", pki / "crl.pem")


# -- exercises ---------------------------------------------------------------------------------


@dataclass
class Result:
    """What a check said: right or a hint, with the solution one click away."""

    right: bool
    message: str
    solution: str

    def __repr__(self) -> str:
        return ("✓ " if self.right else "✗ ") + self.message

    def _repr_html_(self) -> str:
        return macro("tutorial.html", "exercise_result", right=self.right, message=self.message, solution=self.solution)


_UNFINISHED = "Not finished yet (replace the ... in the call)"


@dataclass
class Exercise:
    """An exercise: the learner completes a call; :meth:`check` runs it and says right, or gives a hint.

    The call is passed as a ``lambda`` so that an unfinished call (``...`` still in it) or a
    wrong one gives a hint instead of an error. The first wrong answer gets :attr:`hint`; every
    further one gets :attr:`more`, a more specific hint, until the answer is right.
    """

    name: str
    task: str
    hint: str
    #: The call as the notebook hands it out, with ``...`` to replace.
    blank: str
    solution: str
    is_right: Callable[[Any], bool] = field(repr=False)
    praise: str = "Right."
    #: The second hint: nearer to the answer than the first.
    more: str = ""
    _misses: int = field(default=0, repr=False, compare=False)

    def check(self, attempt: Callable[[], Any]) -> Result:
        if not callable(attempt):
            return self._hint("Pass the call as a lambda: exercise(...).check(lambda: ...)")
        if _holds_ellipsis(getattr(attempt, "__code__", None)):  # a ... is left: do not even run the call
            return self._hint(_UNFINISHED)
        try:
            answer = attempt()
        except (KittylabError, ValueError, TypeError, AttributeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            unfinished = "ellipsis" in first.lower() or "..." in first
            return self._hint(_UNFINISHED if unfinished else f"that call failed ({first})")
        if _unfinished(answer):
            return self._hint(_UNFINISHED)
        try:
            right = bool(self.is_right(answer))
        except Exception:  # an answer of an unexpected type is simply not right
            right = False
        if right:
            self._misses = 0
            return Result(True, self.praise, self.solution)
        return self._hint("not quite")

    def _hint(self, what: str) -> Result:
        """``what`` went wrong, then the hint (the more specific one after the first miss); the solution rides along."""
        self._misses += 1
        hint = self.more if self._misses > 1 and self.more else self.hint
        return Result(False, f"{what}. Hint: {hint}", self.solution)


def _holds_ellipsis(code: Any) -> bool:
    """The lambda's code still holds a literal ``...`` (in the call, or in an f-string's or a set's braces)."""
    if not isinstance(code, types.CodeType):
        return False
    return any(const is Ellipsis or _holds_ellipsis(const) for const in code.co_consts)


def _unfinished(answer: Any) -> bool:
    """The learner left a ``...`` in the call: the answer is, or holds, Ellipsis."""
    if answer is Ellipsis:
        return True
    if isinstance(answer, str):
        return "Ellipsis" in answer or "..." in answer
    if isinstance(answer, (list, tuple, set, frozenset)):
        return any(_unfinished(item) for item in answer)
    return False


def _is_ca_subject(subject: Any) -> bool:
    return isinstance(subject, Subject) and (subject.cn, subject.o, subject.c) == (CA_SUBJECT.cn, CA_SUBJECT.o, CA_SUBJECT.c)


def _verified_as_client(result: Any) -> bool:
    return isinstance(result, Verification) and result.ok and any(c.name == "purpose client" for c in result.checks)


def _checks_the_crl(command: Any) -> bool:
    words = shlex.split(command) if isinstance(command, str) else []
    return "-crl_check" in words and f"{CA_NAME}.crl" in words and f"{CLIENT_NAME}.crt" in words


def _word_exercise(name: str, task: str, hint: str, word: str, praise: str, *, more: str) -> Exercise:
    """An exercise answered with one word (a string): right if it is ``word``, spaces around it aside."""
    return Exercise(name, task, hint, '"..."', f'"{word}"', lambda answer: str(answer).strip() == word, praise, more=more)


EXERCISES = {
    "ca-subject": Exercise(
        "ca-subject",
        "Write kitty-ca's subject the way OpenSSL's -subj option writes it, and parse it.",
        "OpenSSL writes a subject as /C=../O=../CN=..; kitty-ca is in Germany (DE) and belongs to Kitty Inc.",
        "Subject.parse(...)",
        'Subject.parse("/C=DE/O=Kitty Inc/CN=kitty-ca")',
        _is_ca_subject,
        "Right: the same subject the form made, in OpenSSL's spelling.",
        more='Subject.parse("/C=DE/O=Kitty Inc/CN=kitty-ca"): country first, the common name last.',
    ),
    "server-names": Exercise(
        "server-names",
        "Make a CSR for picture-server that also names pictures.kitty.test.",
        "the host names a server answers to go in dns=[...], a list; keep localhost in it too.",
        'make_csr(server_key, "/CN=picture-server", dns=...)',
        'make_csr(server_key, "/CN=picture-server", dns=["localhost", "pictures.kitty.test"])',
        lambda csr: {"DNS:localhost", "DNS:pictures.kitty.test"} <= set(alternative_names(csr)),
        "Right: a browser accepts the certificate for every name in its subject alternative names.",
        more='dns=["localhost", "pictures.kitty.test"]: both names, in one list.',
    ),
    "client-purpose": Exercise(
        "client-purpose",
        "Check eager-client's certificate for the purpose it was made for.",
        'ws.verify(...) takes purpose="client" or purpose="server"; eager-client logs in to a server.',
        "ws.verify(client.certificate, purpose=...)",
        'ws.verify(client.certificate, purpose="client")',
        _verified_as_client,
        "Right: signed by kitty-ca, in date, allowed for TLS client authentication, not revoked.",
        more='purpose="client": the client profile gave it clientAuth, and only that.',
    ),
    "crl-check": Exercise(
        "crl-check",
        "Write the openssl verify command that also checks kitty-ca's CRL.",
        "openssl.verify(cert, ca, crl=...) adds -crl_check -CRLfile; the CRL file is kitty-ca.crl.",
        'openssl.verify("eager-client.crt", "kitty-ca.crt", crl=...)',
        'openssl.verify("eager-client.crt", "kitty-ca.crt", crl="kitty-ca.crl")',
        _checks_the_crl,
        "Right: with -crl_check OpenSSL also looks the serial up in the CRL.",
        more='crl="kitty-ca.crl": the file name, as a string.',
    ),
    "key-steps": Exercise(
        "key-steps",
        "Which steps make a private key? Give their numbers as a set.",
        "read the What column of the table: which steps say 'makes its private key'?",
        "{...}",
        "{1, 4, 11}",
        lambda answer: set(answer) == {1, 4, 11},
        "Right: each of the three makes its own key, and no key ever travels.",
        more="three characters, three keys: kitty-ca's (step 1), picture-server's (step 4) and eager-client's (step 11).",
    ),
    "client-ca-directive": Exercise(
        "client-ca-directive",
        "Which nginx directive names the CA whose client certificates nginx accepts (and names in its request)?",
        "it is one of step 10's three nginx lines, the one whose value is a certificate file.",
        '"..."',
        '"ssl_client_certificate"',
        lambda answer: str(answer).strip().rstrip(";") == "ssl_client_certificate",
        "Right: nginx trusts it for clients and sends its name in the CertificateRequest.",
        more="it starts with ssl_client_ and its value is kitty-ca.crt (not ssl_verify_client, which says whether to ask).",
    ),
    "curl-command": Exercise(
        "curl-command",
        "Write the curl command with which eager-client fetches the pictures.",
        "curl_command needs the p12 file that holds eager-client's key and certificate.",
        'curl_command(server.url, p12=..., ca="kitty-ca.crt")',
        'curl_command(server.url, p12="eager-client.p12", ca="kitty-ca.crt")',
        lambda answer: "--cert-type P12" in answer and "eager-client.p12" in answer,
        "Right: curl shows the certificate inside the TLS handshake, then asks for the page.",
        more='p12="eager-client.p12", the file step 14 made.',
    ),
    "private-file": _word_exercise(
        "private-file",
        "Which one file of the workspace must never leave kitty-ca's machine?",
        "it is a private key, and the one everything else depends on.",
        "kitty-ca.key",
        "Right: whoever holds kitty-ca.key can make certificates picture-server accepts.",
        more="not picture-server.key or eager-client.key (each only speaks for its owner): the CA's, kitty-ca.key.",
    ),
    "permitted-name": Exercise(
        "permitted-name",
        "Issue a server certificate that kitty-issuing's name constraints allow.",
        "the constraints permit localhost and the names under example.test.",
        'ws.issue("shop", profile="server", key="p256", dns=...)',
        'ws.issue("shop", profile="server", key="p256", dns=["shop.example.test"])',
        lambda issued: any(
            name == "DNS:example.test" or name.endswith(".example.test")
            for name in openssl.sans_of(issued.certificate)
        ),
        "Right: inside the permitted subtree, so every TLS client accepts it.",
        more='dns=["shop.example.test"]: any name that ends in .example.test.',
    ),
    "ocsp-command": Exercise(
        "ocsp-command",
        "Ask the responder about picture-server's certificate with openssl ocsp.",
        "-cert names the certificate whose status you ask for; -issuer names the CA that signed it.",
        'f"openssl ocsp -issuer kitty-ca.crt -cert {...} -url {responder.url} -CAfile kitty-ca.crt"',
        'f"openssl ocsp -issuer kitty-ca.crt -cert picture-server.crt -url {responder.url} -CAfile kitty-ca.crt"',
        lambda command: "-cert picture-server.crt" in command and "-issuer kitty-ca.crt" in command,
        "Right: run it with openssl_side_by_side(..., workspace=ws): the answer is good.",
        more="-cert picture-server.crt, the file kittylab wrote for it.",
    ),
    "checkend": Exercise(
        "checkend",
        "Ask OpenSSL whether eager-client.crt ends within a week.",
        "-checkend counts seconds, not days.",
        '"openssl x509 -checkend ... -noout -in eager-client.crt"',
        '"openssl x509 -checkend 604800 -noout -in eager-client.crt"',
        lambda command: shlex.split(command)[shlex.split(command).index("-checkend") + 1] == "604800",
        "Right: exit code 1 means it ends within that time, 0 that it does not.",
        more="a week is 7 x 86,400 seconds: 604800.",
    ),
    "revoked-letter": _word_exercise(
        "revoked-letter",
        "Which letter does index.txt write first on the line of a revoked certificate?",
        "look at the first column of the index printed above.",
        "R",
        "Right: V valid, R revoked (with the time and reason in the third column), E expired.",
        more="V means valid; the revoked line is alice's.",
    ),
    "fingerprint": Exercise(
        "fingerprint",
        "Compute the SHA-256 fingerprint of kitty-ca's certificate, which participants compare before trusting it.",
        "fingerprint() takes a hash algorithm object from cryptography's hashes module.",
        'ws.ca.certificate.fingerprint(...).hex(":")',
        'ws.ca.certificate.fingerprint(hashes.SHA256()).hex(":")',
        lambda answer: isinstance(answer, str) and len(answer.split(":")) == 32,
        "Right: 32 bytes; the handout prints the same, and a participant compares it before trusting kitty-ca.",
        more="hashes.SHA256() (hashes.SHA1() gives 20 bytes: too weak to compare today).",
    ),
    "stolen-laptop": _word_exercise(
        "stolen-laptop",
        "my-laptop was stolen with its key on it. Which revocation reason does the dashboard's Reason list need?",
        "the key may now be in someone else's hands: the reasons are the keys of kittylab.pki.crl.REASONS.",
        "key-compromise",
        "Right: key-compromise tells every relying party that anything signed with that key is suspect.",
        more="not affiliation-changed nor cessation-of-operation: the key itself is compromised.",
    ),
}


def exercise(name: str) -> Exercise:
    """The exercise called ``name`` (see :data:`EXERCISES`)."""
    try:
        return EXERCISES[name]
    except KeyError:
        raise KittylabError(f"no exercise {name!r}: choose one of {', '.join(EXERCISES)}") from None


# -- the welcome notebook's check --------------------------------------------------------------


def check_environment(*, workspace: str | os.PathLike | None = None) -> Table:
    """Check what the tutorial needs: Python, cryptography, widgets, the openssl command, a writable workspace."""
    rows = [("✓", "Python", f"version {sys.version_info.major}.{sys.version_info.minor}")]
    rows.append(_check("kittylab", lambda: f"version {importlib.metadata.version('kittylab')}"))
    rows.append(_check("cryptography makes keys and certificates", _try_cryptography))
    rows.append(_check("ipywidgets (the forms)", lambda: f"version {__import__('ipywidgets').__version__}"))
    rows.append(_check("openssl command line", _openssl_version))
    rows.append(_check("workspace folder is writable", lambda: _try_folder(workspace)))
    return Table(("", "What", "Detail"), rows)


def _check(what: str, probe: Callable[[], str]) -> tuple[str, str, str]:
    try:
        return ("✓", what, probe())
    except Exception as exc:  # the check reports any failure instead of stopping the notebook
        return ("✗", what, f"{type(exc).__name__}: {exc}")


def _try_cryptography() -> str:
    import cryptography

    key = generate_key("p256")
    ca = CertificateAuthority.create(Subject(cn="environment-check"), key=key, days=1)
    leaf = ca.sign(make_csr(generate_key("p256"), Subject(cn="check"), dns=["localhost"]), profile="server", days=1)
    assert leaf.issuer == ca.certificate.subject
    return f"version {cryptography.__version__}"


def _openssl_version() -> str:
    """Which ``openssl`` the side-by-side cells run, and its version; LibreSSL (macOS's
    ``/usr/bin/openssl``) is refused by name, since it lacks options the tutorial shows."""
    binary = shutil.which("openssl")
    if binary is None:
        raise KittylabError("not found: install it (conda install -c conda-forge openssl, apt-get install openssl)")
    out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30, check=True).stdout
    family, version = (out.split() + ["", ""])[:2]
    found = f"{family} version {version} at {binary}"
    if family != "OpenSSL" or not version.startswith("3."):
        raise KittylabError(
            f"{found}: the tutorial needs OpenSSL 3 (conda install -c conda-forge openssl, brew install openssl@3, "
            "then put it first on the PATH)"
        )
    return found


def _try_folder(home: str | os.PathLike | None) -> str:
    """Can the workspace be written? Asked of the folder, or of the nearest one above that exists
    (the workspace itself is made by the first step, not by this check)."""
    folder = Path(home) if home is not None else default_home()
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise KittylabError(f"cannot write in {existing}: {exc.strerror}") from None
    return f"{folder.name}/"


__all__ = [
    "EXERCISES",
    "REVOCATION",
    "STEPS",
    "SUMMARY",
    "Exercise",
    "OpenSSLRun",
    "Step",
    "Table",
    "check_environment",
    "exercise",
    "free_port",
    "build_old_ca",
    "knock_without_certificate",
    "lesson_home",
    "legacy_p12",
    "lines_with",
    "openssl_side_by_side",
    "own_commands",
    "own_csr",
    "own_key",
    "own_name",
    "prepare",
    "scrub_private_keys",
    "sign_own",
    "steps_table",
    "workspace_files",
]
