"""Workshop mode: a client certificate, a p12 and a handout for every participant of a class roster.

The roster is a CSV file with a header row ``name,email`` and optionally ``ou``. Every row is
checked first; a bad row is reported with its line number and skipped, the others go on. Key
generation and the p12's key derivation (the costly parts) run in worker processes, one per
core, each loading the CA once; the parent records the certificates in the store a chunk per
transaction and writes the files. A participant who already holds a current certificate is
skipped, so running the same roster again issues nothing twice.

Output (``<workspace>/roster-<csv name>/`` by default, readable by its owner only):
``summary.csv`` for the teacher (every participant, serial, p12 password) and
``handouts/NAME/`` per participant: ``NAME.html`` (the handout), ``NAME.p12`` and the CA's
certificate, ready to hand out.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import re
import unicodedata
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Iterable, Iterator

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import KittylabError
from ..pki.ca import LEAF_DAYS, CertificateAuthority, utcnow
from ..pki.facts import Record
from ..pki.files import read_input, write_atomically
from ..pki.keys import KEY_KINDS, key_to_pem
from ..pki.names import Subject, check_email
from ..pki.pkcs12 import generate_password
from ..render.handout import DEFAULT_URL, HandoutInfo, HandoutPreview, render_handout
from ..render.progress import progress_bar
from ..workspace.workspace import (
    WRITER_THREADS,
    Draft,
    Issued,
    Workspace,
    check_name,
    draft_issue,
)

REQUIRED_COLUMNS = ("name", "email")
OPTIONAL_COLUMNS = ("ou",)
SUMMARY_FIELDS = (
    "certificate", "name", "email", "ou", "status", "serial", "expires", "p12_password", "handout",
)
#: How many certificates the parent records per store transaction.
CHUNK = 64
#: Why a workshop's certificates are revoked at its end.
END_REASON = "cessation-of-operation"
#: A participant whose name holds a current certificate issued for them: skipped, not issued twice.
ALREADY_ISSUED = "already issued"


def count(items: list, noun: str) -> str:
    """``1 bad row``, ``2 bad rows``."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def slug(text: str) -> str:
    """A file-safe name from a person's name: ``Zoë O'Brien`` -> ``zoe-o-brien``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:64].rstrip("-")


@dataclass(frozen=True)
class Participant:
    """One valid roster row: the person, and the file name their certificate gets."""

    line: int
    name: str
    full_name: str
    email: str
    ou: str = ""


@dataclass
class Roster:
    """A parsed roster: the valid participants and the bad rows (line number, what to fix)."""

    path: Path
    participants: list[Participant]
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return self.path.stem

    def __repr__(self) -> str:
        return f"Roster {self.path.name}: {count(self.participants, 'participant')}, {count(self.errors, 'bad row')}"

    def _repr_html_(self) -> str:
        rows = [(str(p.line), p.full_name, p.email, p.ou, p.name, "") for p in self.participants]
        rows += [(str(line), "", "", "", "", message) for line, message in self.errors]
        rows.sort(key=lambda row: int(row[0]))
        bad = ' style="color:#b00020"'
        cells = "".join(
            f"<tr{bad if row[5] else ''}>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
        head = "".join(f"<th>{label}</th>" for label in ("line", "name", "email", "OU", "file name", "problem"))
        return f'<table class="kl-roster"><caption>{escape(repr(self))}</caption><tr>{head}</tr>{cells}</table>'


def read_roster(path: str | os.PathLike) -> Roster:
    """Parse and check a roster CSV; bad rows become ``errors``, a missing header is an error at once.

    Accepts UTF-8 with or without a byte-order mark, and ``;`` as separator (as some spreadsheet
    programs export). Names must be unique once made file-safe; emails must be well-formed.
    """
    path = Path(path)
    data = read_input(path, "roster")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise KittylabError(f"{path} is not UTF-8 text: save the roster as CSV UTF-8") from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    columns = [cell.strip().lower() for cell in header or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise KittylabError(
            f"{path} has no header row with {' and '.join(missing)}: its first line must be name,email (and optionally ou)"
        )
    position = {name: columns.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in columns}
    participants: list[Participant] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        try:
            participant = _participant(start, row, position)
            if participant.name in seen:
                raise KittylabError(
                    f"{participant.full_name!r} has the same name as line {seen[participant.name]}: names must be unique"
                )
        except KittylabError as exc:
            errors.append((start, str(exc)))
            continue
        seen[participant.name] = start
        participants.append(participant)
    return Roster(path, participants, errors)


def _participant(line: int, row: list[str], position: dict[str, int]) -> Participant:
    def cell(column: str) -> str:
        index = position.get(column)
        return row[index].strip() if index is not None and index < len(row) else ""

    full_name, email, ou = cell("name"), cell("email"), cell("ou")
    if not full_name:
        raise KittylabError("the name is empty")
    if not email:
        raise KittylabError(f"{full_name!r} has no email address")
    check_email(email)
    name = slug(full_name)
    if not name:
        raise KittylabError(f"{full_name!r} has no letters or digits to name files with: add a Latin spelling")
    check_name(name)
    Subject(cn=full_name, ou=ou)  # the CN and OU limits (length, control characters)
    return Participant(line=line, name=name, full_name=full_name, email=email, ou=ou)


# -- issuing -------------------------------------------------------------------------------------


@dataclass
class RosterResult:
    """What a roster run did: issued, skipped (already issued), bad rows, and where the files are."""

    issued: list[Issued]
    skipped: list[str]
    errors: list[tuple[int, str]]
    out: Path
    summary_csv: Path
    handouts: dict[str, Path]

    @property
    def names(self) -> list[str]:
        """The certificate names of everyone on the roster who holds one now (issued or skipped)."""
        return [issued.name for issued in self.issued] + self.skipped

    def includes(self, record: Record) -> bool:
        """True for a certificate of this workshop (the dashboard's filter: ``Dashboard(ws, filter=result.includes)``)."""
        return record.profile == "client" and record.name in self.names

    def preview(self, name: str) -> HandoutPreview:
        """A participant's handout for the notebook, password hidden."""
        if name not in self.handouts:
            raise KittylabError(f"no handout for {name!r}: choose one of {', '.join(sorted(self.handouts))}")
        row = self._summary_row(name)
        return HandoutPreview(self.handouts[name], row.get("name", name))

    def _summary_row(self, name: str) -> dict:
        """The summary CSV's row of a participant."""
        with self.summary_csv.open(newline="", encoding="utf-8") as handle:
            return next((row for row in csv.DictReader(handle) if row["certificate"] == name), {})

    def __str__(self) -> str:
        lines = [
            f"issued {len(self.issued)}, already issued {len(self.skipped)}, {count(self.errors, 'bad row')}",
            f"summary for the teacher: {self.summary_csv}",
            f"handouts: {self.out / 'handouts'}",
        ]
        lines += [f"line {line}: {message}" for line, message in self.errors]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Task:
    """One participant's work for a worker process (plain data, so it pickles)."""

    line: int
    name: str
    subject: Subject
    email: str
    key: str
    days: int
    password: str | None
    legacy_p12: bool
    kdf_rounds: int | None


def issue_roster(
    workspace: Workspace,
    roster: Roster | str | os.PathLike,
    *,
    key: str = "p256",
    p12: bool = True,
    legacy_p12: bool = False,
    days: int = LEAF_DAYS,
    out: str | os.PathLike | None = None,
    url: str = DEFAULT_URL,
    title: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    kdf_rounds: int | None = None,
) -> RosterResult:
    """Issue a client certificate (with a p12 and a generated password) and a handout per participant.

    ``workers`` processes share the work (default: one per core; 1 works in this process).
    ``kdf_rounds`` changes the p12's PBKDF2 rounds (default 20,000 modern, 2,048 legacy).
    """
    if key not in KEY_KINDS:
        raise KittylabError(f"unknown key type {key!r}: choose one of {', '.join(KEY_KINDS)}")
    roster = roster if isinstance(roster, Roster) else read_roster(roster)
    p12 = p12 or legacy_p12
    ca = workspace.ca
    ca.check_validity(utcnow(), days)
    out = Path(out) if out is not None else default_out(workspace, roster)
    errors = list(roster.errors)
    skipped: list[str] = []
    tasks: list[_Task] = []
    defaults = workspace.default_subject("x")
    for person in roster.participants:
        problem = _taken(workspace, person)
        if problem == ALREADY_ISSUED:
            skipped.append(person.name)
        elif problem:
            errors.append((person.line, problem))
        else:
            subject = defaults.replace(cn=person.full_name, ou=person.ou)
            password = generate_password() if p12 else None
            tasks.append(_Task(person.line, person.name, subject, person.email, key, days, password, legacy_p12, kdf_rounds))

    by_name = {person.name: person for person in roster.participants}
    issued: list[Issued] = []
    with (
        _Outputs(workspace, out, url=url, title=title or f"Workshop {roster.stem}", legacy_p12=legacy_p12) as writer,
        progress_bar(len(tasks), f"issuing {len(tasks)} certificates", enabled=progress and bool(tasks)) as bar,
    ):
        writer.keep_earlier(skipped, by_name)
        for chunk in _chunks(_drafts(ca, tasks, workers=workers), CHUNK):
            good = [(task, draft) for task, draft in chunk if isinstance(draft, Draft)]
            errors += [(task.line, draft) for task, draft in chunk if not isinstance(draft, Draft)]
            recorded = list(_record(workspace, good, errors))
            issued += [record for _, record in recorded]
            writer.add([(by_name[task.name], record, task.password) for task, record in recorded])
            writer.save()
            bar.update(len(chunk))
        writer.finish()
    errors.sort()
    return RosterResult(issued, skipped, errors, out, writer.summary_path, writer.handouts)


def _taken(workspace: Workspace, person: Participant) -> str | None:
    """None if the participant can be issued, :data:`ALREADY_ISSUED`, or why their name is taken."""
    if person.name == workspace.ca_name:
        return f"{person.full_name!r} would be named {person.name!r}, the CA's own name: rename the participant"
    current = workspace.store.current(person.name)
    if current is None:
        return None
    holder = Subject.from_name(current.certificate.subject)
    if current.profile == "client" and holder.cn == person.full_name:
        return ALREADY_ISSUED
    return f"the name {person.name!r} is taken by another certificate ({current.subject}): rename the participant"


def _record(workspace: Workspace, good: list[tuple[_Task, Draft]], errors: list) -> Iterator[tuple[_Task, Issued]]:
    """Record a chunk in one transaction; if that fails (a name taken meanwhile), one by one."""
    try:
        yield from zip([task for task, _ in good], workspace.record_drafts([draft for _, draft in good]))
        return
    except KittylabError:
        pass
    for task, draft in good:
        try:
            yield task, workspace.record_drafts([draft])[0]
        except KittylabError as exc:
            errors.append((task.line, str(exc)))


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- the workers ---------------------------------------------------------------------------------

_WORKER_CA: CertificateAuthority | None = None


def _load_ca(certificate_pem: bytes, key_pem: bytes) -> None:
    """Worker start-up: load the CA once.

    The key comes through a pipe from the parent, which validated it when it loaded it from the
    workspace; validating an RSA key again would cost each worker ~0.1-0.3 s (4096 bits).
    """
    global _WORKER_CA
    key = serialization.load_pem_private_key(key_pem, password=None, unsafe_skip_rsa_key_validation=True)
    _WORKER_CA = CertificateAuthority(x509.load_pem_x509_certificate(certificate_pem), key)


def _draft(ca: CertificateAuthority, task: _Task) -> Draft | str:
    """The costly part (key, signature, p12 key derivation); a problem comes back as its message."""
    try:
        draft = draft_issue(
            ca, task.name, profile="client", subject=task.subject, key=task.key, days=task.days,
            email=[task.email], p12=task.password is not None, p12_password=task.password,
            legacy_p12=task.legacy_p12, kdf_rounds=task.kdf_rounds,
        )
    except KittylabError as exc:
        return str(exc)
    # The CA made the key itself: nobody sent a request, so no NAME.csr (one file less per participant).
    draft.public.pop("csr", None)
    return draft


def _work(task: _Task) -> tuple[str, bytes, dict, dict] | str:
    """In a worker: draft one certificate, returned as plain bytes (cryptography objects do not pickle)."""
    draft = _draft(_WORKER_CA, task)
    if isinstance(draft, str):
        return draft
    return draft.name, draft.certificate.public_bytes(Encoding.PEM), draft.secrets, draft.public


def _drafts(ca: CertificateAuthority, tasks: list[_Task], *, workers: int | None) -> Iterator[tuple[_Task, Draft | str]]:
    """Each task with its draft (or error message), in order, made by ``workers`` processes."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if workers == 1:
        for task in tasks:
            yield task, _draft(ca, task)
        return
    # spawn: safe in a Jupyter kernel's threads and the same on Linux, macOS and Windows.
    context = multiprocessing.get_context("spawn")
    ca_files = (ca.certificate.public_bytes(Encoding.PEM), key_to_pem(ca.key))
    chunksize = max(1, min(16, len(tasks) // (workers * 8)))
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_load_ca, initargs=ca_files)
    try:
        for task, result in zip(tasks, pool.map(_work, tasks, chunksize=chunksize)):
            if isinstance(result, str):
                yield task, result
                continue
            name, certificate_pem, secrets, public = result
            certificate = x509.load_pem_x509_certificate(certificate_pem)
            yield task, Draft(name, "client", certificate, secrets=secrets, public=public)
    finally:
        # On an interrupt (or any error) the queued work is dropped, not finished first.
        pool.shutdown(wait=True, cancel_futures=True)


# -- the files for people --------------------------------------------------------------------------


class _Outputs:
    """The summary CSV and the handout folders; rows of earlier runs are kept (their passwords too)."""

    def __init__(self, workspace: Workspace, out: Path, *, url: str, title: str, legacy_p12: bool) -> None:
        self.workspace = workspace
        self.out = out
        self.summary_path = out / "summary.csv"
        self.url, self.title, self.legacy_p12 = url, title, legacy_p12
        self.handouts: dict[str, Path] = {}
        for folder in (out, out / "handouts"):
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise KittylabError(f"cannot create {folder}: {exc.strerror}") from None
        self.rows = self._earlier_rows()
        self.ca_name, self.ca_path = workspace.ca_name, workspace.ca_certificate_path
        self._pool = ThreadPoolExecutor(max_workers=WRITER_THREADS)
        self._pending: list[Future] = []

    def __enter__(self) -> "_Outputs":
        return self

    def __exit__(self, kind, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=kind is not None)

    def _earlier_rows(self) -> dict[str, dict]:
        return _read_summary(self.summary_path)

    def keep_earlier(self, names: list[str], people: dict[str, Participant]) -> None:
        """Participants issued by an earlier run keep their row (and password) and their handout."""
        for name in names:
            record = self.workspace.store.current(name)
            row = self.rows.get(name)
            if row is None or row.get("serial") != record.serial_hex:
                row = self._row(people[name], record, None)
                row["p12_password"] = ""
            row["status"] = ALREADY_ISSUED
            self.rows[name] = row
            handout = self._handout_path(name)
            if handout.exists():
                self.handouts[name] = handout

    def add(self, batch: list[tuple[Participant, Issued, str | None]]) -> None:
        """Queue a batch's handout folders (threads write them while the next batch is recorded)."""
        for person, issued, password in batch:
            self._pending.append(self._pool.submit(self._handout, person, issued, password))
            self.handouts[person.name] = self._handout_path(person.name)
            self.rows[person.name] = self._row(person, issued.record, password)

    def finish(self) -> None:
        """Wait for every handout (the first error, such as a full disk, is raised), then save the summary."""
        for future in self._pending:
            future.result()
        self.save()

    def _handout_path(self, name: str) -> Path:
        return self.out / "handouts" / name / f"{name}.html"

    def _handout(self, person: Participant, issued: Issued, password: str | None) -> Path:
        """``handouts/NAME/``: the page, the p12 (or key and certificate) and the CA's certificate."""
        folder = self.out / "handouts" / person.name
        folder.mkdir(mode=0o700, exist_ok=True)
        p12_file = issued.files["p12"].name if "p12" in issued.files else None
        for suffix in ("p12",) if p12_file else ("key", "crt"):
            _link_or_copy(issued.files[suffix], folder / issued.files[suffix].name)
        _link_or_copy(self.ca_path, folder / self.ca_path.name)
        info = HandoutInfo(
            full_name=person.full_name, email=person.email, title=self.title, url=self.url,
            ca_name=self.ca_name, p12_file=p12_file, p12_password=password, legacy_p12=self.legacy_p12,
        )
        return write_atomically(self._handout_path(person.name), render_handout(issued.record, info).encode(), secret=True)

    def _row(self, person: Participant, record: Record, password: str | None) -> dict:
        handout = self._handout_path(person.name)
        return {
            "certificate": person.name, "name": person.full_name, "email": person.email, "ou": person.ou,
            "status": "issued", "serial": record.serial_hex, "expires": record.not_after.strftime("%Y-%m-%d"),
            "p12_password": password or "", "handout": str(handout.relative_to(self.out)),
        }

    def save(self) -> None:
        _write_summary(self.summary_path, self.rows)


def default_out(workspace: Workspace, roster: Roster) -> Path:
    """Where a roster's handouts and summary go unless told: ``<workspace>/roster-<csv name>/``."""
    return workspace.home / f"roster-{roster.stem}"


def _read_summary(path: Path) -> dict[str, dict]:
    """The summary's rows by certificate name (none if there is no summary yet)."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["certificate"]: row for row in csv.DictReader(handle) if row.get("certificate")}


def _write_summary(path: Path, rows: dict[str, dict]) -> None:
    """Rewrite ``summary.csv`` (0600: it holds every password)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows.values():
        writer.writerow(row)
    write_atomically(path, text.getvalue().encode(), secret=True)


def _link_or_copy(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` as a hard link (no second write), else as an atomic copy.

    Files in the workspace are replaced, never changed in place, so the link keeps what it was.
    """
    try:
        try:
            os.link(source, target)
        except FileExistsError:  # a re-run: replace it atomically, unless it is this very file
            if os.path.samefile(source, target):
                return
            temporary = target.with_name(f".{target.name}.link")
            temporary.unlink(missing_ok=True)
            os.link(source, temporary)
            os.replace(temporary, target)
    except OSError:
        write_atomically(target, source.read_bytes(), secret=source.stat().st_mode & 0o077 == 0)


# -- ending a workshop ---------------------------------------------------------------------------


@dataclass
class RevokeResult:
    """What ``roster revoke`` did: revoked records, names that held no current certificate, bad rows."""

    revoked: list[Record]
    not_current: list[str]
    errors: list[tuple[int, str]]
    crl_path: Path

    def __str__(self) -> str:
        lines = [f"revoked {len(self.revoked)}, without a current certificate {len(self.not_current)},"
                 f" {count(self.errors, 'bad row')}",
                 f"published the CRL: {self.crl_path}"]
        lines += [f"line {line}: {message}" for line, message in self.errors]
        return "\n".join(lines)


def revoke_roster(
    workspace: Workspace,
    roster: Roster | str | os.PathLike,
    *,
    reason: str = END_REASON,
    out: str | os.PathLike | None = None,
) -> RevokeResult:
    """End a workshop: revoke every participant's current certificate in one transaction, publish one CRL.

    The summary CSV in ``out`` (default as for :func:`issue_roster`) then says ``revoked`` for them.
    """
    roster = roster if isinstance(roster, Roster) else read_roster(roster)
    targets, not_current = [], []
    errors = list(roster.errors)
    for person in roster.participants:
        problem = _taken(workspace, person)
        if problem == ALREADY_ISSUED:
            targets.append(person.name)
        elif problem is None:
            not_current.append(person.name)
        else:
            errors.append((person.line, problem))
    revoked = workspace.revoke_many(targets, reason=reason)  # publishes the CRL even when none is left
    summary = Path(out if out is not None else default_out(workspace, roster)) / "summary.csv"
    rows = _read_summary(summary)
    if any(record.name in rows for record in revoked):
        for record in revoked:
            if rows.get(record.name, {}).get("serial") == record.serial_hex:
                rows[record.name]["status"] = "revoked"
        _write_summary(summary, rows)
    return RevokeResult(revoked, not_current, errors, workspace.crl_path)
