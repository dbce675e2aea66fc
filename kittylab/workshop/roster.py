"""Workshop mode: a client certificate, a p12 and a handout for every participant of a class roster.

The roster is a CSV file with a header row ``name,email`` and optionally ``ou`` and ``id`` (or
``file``: the file name the teacher chooses). It may come from a spreadsheet: UTF-8 with or
without a byte-order mark, ``,`` or ``;`` between cells. Every person gets a certificate whose CN
is their name exactly as written (whitespace tidied, in Unicode NFC) and a readable ASCII file
name, transliterated by `anyascii <https://pypi.org/project/anyascii/>`_ (``李雷`` -> ``li-lei``,
``Łukasz Wróbel`` -> ``lukasz-wrobel``), or a stable id when nothing readable is left. People are
told apart by their email (compared case-insensitively): two people with one name get distinct
file names (the second one's carries their email: ``maria-garcia-mgarcia``), a row listed twice
is reported as a duplicate. A bad row is reported with its line number and skipped.

Running the roster again issues only the people who never had a certificate (late arrivals);
a revoked participant stays revoked unless the teacher names them (``reissue``). Every run says
by name whom it issued. The certificates are issued through :meth:`Workspace.issue_many` (worker
processes, one per core); the roster is read as a stream and the workshop's own records live in
:mod:`kittylab.workshop.ledger`, so memory stays bounded whatever the roster's length, and a run
killed at any moment is completed by the next one (a p12 whose password was lost is exported
again with a new one).

Output (``<workspace>/roster-<csv name>/`` by default, readable by its owner only):
``summary.csv`` for the teacher (every participant, status, serial, p12 password),
``participants.sqlite3`` (the workshop's records) and ``handouts/NAME/`` per participant:
``NAME.html`` (the handout), ``NAME.p12`` and the CA's certificate, ready to hand out.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import os
import re
import secrets
import unicodedata
from urllib.parse import urlsplit
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from anyascii import anyascii
from cryptography import x509

from ..errors import KittylabError, check_choice
from ..pki.ca import utcnow
from ..pki.constraints import name_constraints_of, website_scope
from ..pki.extensions import extension_value
from ..pki.facts import Record
from ..pki.files import open_input, write_atomically
from ..pki.keys import KEY_KINDS
from ..pki.names import Subject, check_email
from ..pki.pkcs12 import load_p12
from ..render.handout import DEFAULT_URL, HandoutInfo, HandoutPreview, check_url, render_handout
from ..render.progress import progress_bar
from ..render.templates import macro
from ..workspace.batch import Request
from ..workspace.protocol import WorkspaceLock
from ..workspace.workspace import WRITER_THREADS, Workspace, check_name
from .ledger import (
    LEDGER_FILE,
    SUMMARY_FIELDS,
    SUMMARY_FILE,
    Ledger,
    Row,
    read_summary,
    spreadsheet_cell,
    write_summary,
)

__all__ = [
    "SUMMARY_FIELDS", "Participant", "Roster", "RosterResult", "RevokeResult", "P12Result", "read_roster",
    "iter_roster", "issue_roster", "revoke_roster", "export_roster_p12", "file_name", "read_summary",
    "spreadsheet_cell",
]

REQUIRED_COLUMNS = ("name", "email")
OPTIONAL_COLUMNS = ("ou", "id", "file")
#: Why a workshop's certificates are revoked at its end.
END_REASON = "cessation-of-operation"
#: The largest line (bytes) and cell (characters) a roster may hold, and the largest roster.
MAX_LINE = 1 << 20
MAX_CELL = 131072
MAX_ROSTER = 1 << 30
#: A workshop's certificates live as long as the workshop (issue 16): a week unless told.
WORKSHOP_DAYS = 7
#: The workshop's settings its ledger remembers, reused by a re-run unless given again.
SETTINGS = ("url", "title", "days")
#: Handout passwords: no I/l/1 or O/0 to mix up on paper; four groups of four (79 bits).
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def count(items: int | list, noun: str) -> str:
    """``1 bad row``, ``2 bad rows``."""
    number = items if isinstance(items, int) else len(items)
    return f"{number} {noun}{'' if number == 1 else 's'}"


def handout_password() -> str:
    """A p12 password to read off paper: ``k7mq-2xvd-h9tn-c4wp`` (79 bits, no look-alike characters)."""
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(4))



def _csv_problem(exc: csv.Error) -> str:
    """What the csv module's error means for a roster, in one line."""
    return f"a cell is longer than {MAX_CELL:,} characters" if "field larger" in str(exc) else str(exc)

def tidy(text: str) -> str:
    """A name or cell as a person meant it: Unicode NFC, runs of whitespace as one space, no edges."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def file_name(text: str) -> str:
    """A readable ASCII file name, transliterated: ``李雷`` -> ``li-lei``, ``Jürgen Weiß`` -> ``jurgen-weiss``.

    Scripts written without spaces between names (Chinese, Japanese, Korean) get a hyphen per
    syllable. Empty if nothing readable is left.
    """
    parts = []
    for char in text:
        latin = anyascii(char)
        if not char.isascii() and latin[:1].isupper() and not unicodedata.name(char, "").startswith("LATIN"):
            parts.append("-")
        parts.append(latin)
    return re.sub(r"[^a-z0-9]+", "-", "".join(parts).lower()).strip("-")[:40].rstrip("-")


def stable_id(email_key: str) -> str:
    """A file name for a person whose name leaves nothing readable: derived from their email, so it stays."""
    return "person-" + hashlib.sha256(email_key.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Participant:
    """One valid roster row: the person, and the file name their certificate wants (``chosen``: from the roster)."""

    line: int
    name: str
    full_name: str
    email: str
    ou: str = ""
    chosen: bool = False

    @property
    def key(self) -> str:
        """Who they are: their email, case-insensitively."""
        return self.email.casefold()

    def candidates(self) -> list[str]:
        """File names to try in order: the chosen one only; else the name, then with their email, then numbered."""
        if self.chosen:
            return [self.name]
        local, _, domain = self.email.partition("@")
        first = [self.name, f"{self.name}-{file_name(local)}", f"{self.name}-{file_name(local)}-{file_name(domain)}"]
        names = [name[:64].rstrip("-.") for name in first] + [f"{self.name}-{n}" for n in range(2, 100)]
        return list(dict.fromkeys(names))


# -- reading -------------------------------------------------------------------------------------


@dataclass
class _Source:
    """A roster file read as a stream: its delimiter, and rows as participants or (line, problem)."""

    path: Path
    delimiter: str = ","

    def lines(self) -> Iterator[str]:
        """The file's lines as text, each at most :data:`MAX_LINE` bytes, the whole at most :data:`MAX_ROSTER`."""
        handle = open_input(self.path, "roster")
        total = 0
        with handle:
            for number, data in enumerate(iter(lambda: handle.readline(MAX_LINE + 1), b""), 1):
                total += len(data)
                if len(data) > MAX_LINE and not data.endswith(b"\n"):
                    raise KittylabError(f"{self.path} line {number} is longer than {MAX_LINE:,} bytes: is it a roster?")
                if total > MAX_ROSTER:
                    raise KittylabError(f"{self.path} is larger than {MAX_ROSTER >> 20:,} MiB: split the roster")
                if b"\0" in data:
                    raise KittylabError(f"{self.path} line {number} holds NUL bytes: save the roster as CSV UTF-8")
                try:
                    text = data.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise KittylabError(
                        f"{self.path} line {number} is not UTF-8 text: save the roster as CSV UTF-8"
                    ) from None
                yield text

    def rows(self) -> Iterator[Participant | tuple[int, str]]:
        lines = self.lines()
        first = next(lines, "")
        self.delimiter = ";" if first.count(";") > first.count(",") else ","
        csv.field_size_limit(MAX_CELL)
        try:
            header = next(csv.reader([first], delimiter=self.delimiter), [])
        except csv.Error as exc:
            raise KittylabError(f"{self.path} line 1: {_csv_problem(exc)}") from None
        columns = [tidy(cell).lower() for cell in header]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise KittylabError(
                f"{self.path} has no header row with {' and '.join(missing)}: its first line must be name,email"
                " (and optionally ou, id)"
            )
        position = {name: columns.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in columns}
        counter = _LineCounter(lines)
        reader = csv.reader(counter, delimiter=self.delimiter)
        while True:
            start = counter.number + 1
            try:
                row = next(reader, None)
            except csv.Error as exc:
                raise KittylabError(f"{self.path} line {start}: {_csv_problem(exc)}") from None
            if row is None:
                return
            if not any(cell.strip() for cell in row):
                continue
            try:
                yield _participant(start, row, position)
            except KittylabError as exc:
                yield start, str(exc)


class _LineCounter:
    """Lines for the csv reader, counted (a quoted cell may span lines; line 1 is the header)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.number = 1

    def __iter__(self) -> "_LineCounter":
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        return line


def _participant(line: int, row: list[str], position: dict[str, int]) -> Participant:
    def cell(column: str) -> str:
        index = position.get(column)
        return tidy(row[index]) if index is not None and index < len(row) else ""

    full_name, email, ou = cell("name"), cell("email"), cell("ou")
    if not full_name:
        raise KittylabError("the name is empty")
    if not email:
        raise KittylabError(f"{full_name!r} has no email address")
    check_email(email)
    Subject(cn=full_name, ou=ou)  # the CN and OU limits (length, control and format characters)
    chosen = cell("id") or cell("file")
    if chosen:
        try:
            check_name(chosen)
        except KittylabError:
            raise KittylabError(f"the id {chosen!r} cannot name files: use 1-64 letters, digits, '.', '-' or '_'") from None
        return Participant(line=line, name=chosen, full_name=full_name, email=email, ou=ou, chosen=True)
    name = file_name(full_name) or stable_id(email.casefold())
    return Participant(line=line, name=name, full_name=full_name, email=email, ou=ou)


@dataclass
class Roster:
    """A parsed roster: the valid participants and the bad rows (line number, what to fix)."""

    path: Path
    participants: list[Participant]
    errors: list[tuple[int, str]] = field(default_factory=list)
    delimiter: str = ","

    @property
    def stem(self) -> str:
        return self.path.stem

    def __repr__(self) -> str:
        return f"Roster {self.path.name}: {count(self.participants, 'participant')}, {count(self.errors, 'bad row')}"

    def _repr_html_(self) -> str:
        rows = [(str(p.line), p.full_name, p.email, p.ou, p.name, "") for p in self.participants]
        rows += [(str(line), "", "", "", "", message) for line, message in self.errors]
        rows.sort(key=lambda row: int(row[0]))
        return macro("previews.html", "roster", caption=repr(self), rows=rows)


def iter_roster(path: str | os.PathLike) -> Iterator[Participant | tuple[int, str]]:
    """The roster's rows as a stream: a :class:`Participant` per good row, ``(line, problem)`` per bad one."""
    return _Source(Path(path)).rows()


def read_roster(path: str | os.PathLike) -> Roster:
    """Parse and check a roster CSV (for a look before issuing); bad rows and duplicates become ``errors``.

    The file names are those a first run into an empty workspace gives.
    """
    source = _Source(Path(path))
    participants, errors = [], []
    with Ledger(None) as ledger:
        ledger.start_run(delimiter=",")
        for item in source.rows():
            if isinstance(item, tuple):
                errors.append(item)
                continue
            decision = _Names(None, ledger).place(item)
            if isinstance(decision, str):
                errors.append((item.line, decision))
            else:
                _known(ledger, decision, legacy=False)
                participants.append(decision)
    return Roster(source.path, participants, errors, source.delimiter)


class _Names:
    """Gives each participant their file name: the one they had, else the first one free."""

    def __init__(self, workspace: Workspace | None, ledger: Ledger) -> None:
        self.workspace, self.ledger = workspace, ledger

    def place(self, person: Participant) -> Participant | str:
        """The participant with their file name (claimed in the ledger), or why the row is skipped."""
        known = self.ledger.by_email(person.key)
        if known is not None and known.run == self.ledger.run:
            if tidy(known.name) == person.full_name:
                return f"a duplicate of line {known.line} ({person.full_name}, {person.email}): listed once"
            return f"the email {person.email} is also on line {known.line} for {known.name!r}: one email per person"
        if known is not None:
            return _with_name(person, known.certificate)
        for candidate in person.candidates():
            if self._free(candidate, person):
                return _with_name(person, candidate)
        if person.chosen:
            return f"the id {person.name!r} is taken by another certificate: choose another id"
        return f"no free file name for {person.full_name!r}: give the row an id"

    def _free(self, name: str, person: Participant) -> bool:
        holder = self.ledger.by_certificate(name)
        if holder is not None:
            return holder.email_key == person.key
        if self.workspace is None:
            return True
        record = _record_of(self.workspace, name)
        return record is None or _is_theirs(record, person)


def _with_name(person: Participant, name: str) -> Participant:
    return Participant(person.line, name, person.full_name, person.email, person.ou, person.chosen)


def _record_of(workspace: Workspace, name: str) -> Record | None:
    """The current (else latest) certificate named ``name``, or None (a CA's name counts as taken)."""
    try:
        record = workspace.find(name)
    except KittylabError:
        return None
    return record if record.name == name else None


def _is_theirs(record: Record, person: Participant) -> bool:
    """True if ``record`` is a client certificate for this person (their email in it)."""
    if record.profile != "client":
        return False
    return person.key in _emails(record)


def _emails(record: Record) -> set[str]:
    names = extension_value(record.certificate, x509.SubjectAlternativeName)
    return {email.casefold() for email in names.get_values_for_type(x509.RFC822Name)} if names else set()


# -- issuing -------------------------------------------------------------------------------------

#: Said when ``url`` is left out: every handout would point each laptop at itself.
NO_URL_WARNING = (
    f"no address given for the handouts: they send everyone to {DEFAULT_URL}, which on a participant's laptop"
    " is the laptop itself; give the address of the workshop's server"
)


@dataclass
class RosterResult:
    """What a roster run did, by name: issued, already issued, kept revoked, completed; bad rows; the files."""

    out: Path
    run: int
    already: int = 0
    kept_revoked: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    #: What the teacher should know, by kind: ``url`` (no address given), ``modern-p12`` (legacy asked, some had modern).
    warnings: dict[str, str] = field(default_factory=dict)
    already_modern: int = 0
    #: People issued by another workshop of the workspace (name, its folder): left to it.
    elsewhere: list[tuple[str, Path]] = field(default_factory=list)
    #: The earlier workshop folder this run continued (its people are on this roster), if any.
    continued: Path | None = None
    #: The workshop's settings this run took from its ledger (not given again): url, title, days.
    reused: dict[str, str] = field(default_factory=dict)

    @property
    def summary_csv(self) -> Path:
        return self.out / SUMMARY_FILE

    @property
    def handouts(self) -> Path:
        return self.out / "handouts"

    def _ledger(self) -> Ledger:
        return Ledger(self.out)

    @property
    def issued(self) -> list[tuple[str, str]]:
        """(file name, name) of everyone this run issued a certificate to."""
        with self._ledger() as ledger:
            ledger.run = self.run
            return ledger.issued_by_run()

    @property
    def names(self) -> list[str]:
        """The file names of everyone of this workshop who holds (or held) a certificate."""
        with self._ledger() as ledger:
            return [row.certificate for row in ledger.rows("serial IS NOT NULL")]

    def includes(self, record: Record) -> bool:
        """True for a certificate of this workshop (the dashboard's filter: ``Dashboard(ws, filter=result.includes)``)."""
        return record.profile == "client" and record.name in set(self.names)

    def preview(self, name: str) -> HandoutPreview:
        """A participant's handout for the notebook, password hidden."""
        with self._ledger() as ledger:
            row = ledger.by_certificate(name)
        path = _handout_path(self.out, name)
        if row is None or not path.exists():
            raise KittylabError(f"no handout for {name!r} in {self.handouts}")
        return HandoutPreview(path, row.name)

    def elsewhere_lines(self) -> list[str]:
        """Who was left to an earlier workshop, folder by folder, said plainly."""
        by_folder: dict[Path, list[str]] = {}
        for name, folder in self.elsewhere:
            by_folder.setdefault(folder, []).append(name)
        return [f"already issued in the workshop folder {folder}, not issued again ({count(names, 'participant')};"
                f" their p12 files, passwords and handouts are there): " + ", ".join(names)
                for folder, names in by_folder.items()]

    def __str__(self) -> str:
        issued = self.issued
        lines = [f"continuing the workshop in {self.continued}: it holds people of this roster"] if self.continued else []
        lines.append(f"issued {len(issued)}" + (": " + ", ".join(f"{name} ({file})" for file, name in issued) if issued else ""))
        if self.reused:
            lines.append("this workshop's settings kept: " + ", ".join(f"{k} {v}" for k, v in self.reused.items()))
        lines.append(f"already issued {self.already}")
        if self.kept_revoked:
            lines.append(f"revoked, kept revoked {len(self.kept_revoked)} (naming them to reissue issues again): "
                         + ", ".join(self.kept_revoked))
        if self.completed:
            lines.append(f"completed after an interrupted run {len(self.completed)}: " + ", ".join(self.completed))
        lines += self.elsewhere_lines()
        lines += [f"summary for the teacher: {self.summary_csv}", f"handouts: {self.handouts}"]
        lines += [f"line {line}: {message}" for line, message in sorted(self.duplicates + self.errors)]
        lines += [f"warning: {warning}" for warning in self.warnings.values()]
        return "\n".join(lines)


def default_out(workspace: Workspace, stem: str) -> Path:
    """Where a roster's handouts and summary go unless told: ``<workspace>/roster-<csv name>/``."""
    return workspace.home / f"roster-{stem}"


@contextlib.contextmanager
def _workshop_lock(out: Path) -> Iterator[None]:
    """One run at a time per workshop folder: two ``roster`` commands at once wait for each other."""
    lock = WorkspaceLock(out)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _prepare(out: Path) -> None:
    for folder in (out, out / "handouts"):
        if folder.is_symlink():
            raise KittylabError(f"{folder} is a symbolic link: kittylab writes handouts only into real folders")
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KittylabError(f"cannot create {folder}: {exc.strerror}") from None


def _rows_of(roster: "Roster | str | os.PathLike") -> tuple[Path, Iterator[Participant | tuple[int, str]], _Source | None]:
    if isinstance(roster, Roster):
        return roster.path, iter([*roster.participants, *roster.errors]), None
    source = _Source(Path(roster))
    rows = source.rows()
    first = next(rows, None)  # reads (and checks) the header before anything is written
    return source.path, itertools.chain([first] if first is not None else [], rows), source


def _count_rows(path: Path) -> int | None:
    """About how many participants a roster holds (its lines but the header), for the progress bar."""
    try:
        with open(path, "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None
    return max(0, lines - 1)


class _Matcher:
    """Who the teacher named (to reissue, revoke...): by name, email or file name; remembers who matched."""

    def __init__(self, names: Iterable[str]) -> None:
        self.wanted = {tidy(name).casefold(): name for name in names if tidy(name)}
        self.used: set[str] = set()

    def __call__(self, person: Participant) -> bool:
        keys = {person.key, person.full_name.casefold(), person.name.casefold(), file_name(person.full_name)}
        hits = keys & self.wanted.keys()
        self.used |= hits
        return bool(hits)

    def unmatched(self) -> list[str]:
        return [given for key, given in self.wanted.items() if key not in self.used]


def issue_roster(
    workspace: Workspace,
    roster: Roster | str | os.PathLike,
    *,
    key: str = "p256",
    p12: bool = True,
    legacy_p12: bool = False,
    days: int | None = None,
    out: str | os.PathLike | None = None,
    url: str | None = None,
    title: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    kdf_rounds: int | None = None,
    reissue: Iterable[str] = (),
) -> RosterResult:
    """Issue a client certificate (with a p12 and a generated password) and a handout per new participant.

    People who hold a certificate already are not issued again (a run cut short is completed);
    revoked people stay revoked unless named in ``reissue`` (name, email or file name). ``url``
    is the address on the handouts (an ``https://`` URL; left out: a warning, and the handouts say
    it is a placeholder). ``url``, ``title`` and ``days`` are remembered by the workshop: a re-run
    that leaves them out keeps them (``result.reused``). ``days`` defaults to
    :data:`WORKSHOP_DAYS`. Without ``out``, a roster that names people of an earlier workshop of
    the workspace continues that workshop (``result.continued``). ``workers`` processes share the
    work (default: one per core). ``kdf_rounds`` changes the p12's PBKDF2 rounds.
    """
    check_choice(key, KEY_KINDS, "key type")
    p12 = p12 or legacy_p12
    url = check_url(url) if url is not None else None
    workspace.ca.check_validity(utcnow(), days or WORKSHOP_DAYS)  # before anything is written (again below: a kept days)
    path, rows, source = _rows_of(roster)
    # What a killed run left in the workspace (a committed certificate's staged p12) takes its place
    # first, so that what this run finds on disk is what the store says.
    workspace.restore_missing_files()
    continued = None
    if out is None:
        out = default_out(workspace, path.stem)
        if not (out / LEDGER_FILE).exists():
            continued = _earlier_workshop(workspace, roster, out)
            out = continued or out
    out = Path(out)
    _prepare(out)
    _register(workspace, out)
    again = _Matcher(reissue)
    defaults = workspace.default_subject("x")
    total = len(roster.participants) + len(roster.errors) if isinstance(roster, Roster) else _count_rows(path)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_workshop_lock(out))
        ledger = stack.enter_context(Ledger(out, write=True))
        given = {"url": url, "title": title, "days": str(days) if days is not None else None}
        reused = {name: ledger.get(name) for name in SETTINGS if given[name] is None and ledger.get(name)}
        if reused.get("url") == DEFAULT_URL:  # what older runs kept when no address was given
            del reused["url"]
        settings = {**given, **reused}
        url, title = settings["url"], settings["title"] or f"Workshop {path.stem}"
        days = int(settings["days"] or WORKSHOP_DAYS)
        workspace.ca.check_validity(utcnow(), days)
        warnings = {} if url else {"url": NO_URL_WARNING}
        warnings.update(_workshop_warnings(workspace, url))
        handouts = stack.enter_context(_Handouts(workspace, out, url=url, title=title))
        bar = stack.enter_context(progress_bar(total, "issuing certificates", enabled=progress))
        result = RosterResult(out, ledger.start_run(delimiter=(source or roster).delimiter), warnings=warnings,
                              continued=continued, reused=reused)
        names = _Names(workspace, ledger)
        waiting: dict[str, tuple[Participant, str | None]] = {}

        for name, value in (("url", url), ("title", title), ("days", str(days))):
            if value:
                ledger.set(name, value)

        def requests() -> Iterator[Request]:
            for item in rows:
                if isinstance(item, tuple):
                    result.errors.append(item)
                    bar.update(1)
                    continue
                person = names.place(item)
                if isinstance(person, str):
                    (result.duplicates if person.startswith("a duplicate") else result.errors).append((item.line, person))
                    bar.update(1)
                    continue
                record = _record_of(workspace, person.name)
                wanted = again(person)
                if record is None or (record.revoked_at is not None and wanted):
                    password = handout_password() if p12 else None
                    ledger.claim(email_key=person.key, certificate=person.name, name=person.full_name,
                                 email=person.email, ou=person.ou, line=person.line, password=password,
                                 legacy=legacy_p12)
                    waiting[person.name] = (person, password)
                    yield Request(person.name, defaults.replace(cn=person.full_name, ou=person.ou),
                                  email=(person.email,), key=key, days=days, p12_password=password,
                                  legacy_p12=legacy_p12, kdf_rounds=kdf_rounds)
                    continue
                elsewhere = _workshop_of(workspace, person, out) if ledger.by_email(person.key) is None else None
                if elsewhere is not None:  # e.g. a roster of the Mac users, issued with the whole class
                    result.elsewhere.append((person.full_name, elsewhere))
                    bar.update(1)
                    continue
                _known(ledger, person, legacy=legacy_p12)
                if record.revoked_at is not None:
                    result.kept_revoked.append(person.full_name)
                else:
                    if wanted:
                        result.errors.append((person.line, f"{person.full_name} holds a current certificate:"
                                                           " revoke it first to issue a new one"))
                    result.already += 1
                    row = ledger.by_email(person.key)
                    result.already_modern += bool(legacy_p12 and row.password and not row.legacy)
                    if _complete(workspace, ledger, handouts, person, record, p12=p12):
                        result.completed.append(person.full_name)
                bar.update(1)

        for request, outcome in workspace.issue_many(requests(), workers=workers):
            person, password = waiting.pop(request.name)
            if isinstance(outcome, str):
                result.errors.append((person.line, outcome))
            else:
                ledger.issued(person.name, serial=outcome.record.serial_hex, issued=_day(outcome.record.not_before),
                              expires=_day(outcome.record.not_after), password=password, legacy=legacy_p12, new=True)
                handouts.add(person, outcome.record, password, legacy=legacy_p12)
                if handouts.queued >= CHUNK_HANDOUTS:
                    ledger.handed_out(handouts.flush())
            bar.update(1)
        ledger.handed_out(handouts.flush())
        result.errors += [(0, f"nobody on the roster to reissue by the name, email or file name {name!r}")
                          for name in again.unmatched()]
        if result.elsewhere and legacy_p12:
            result.warnings["elsewhere"] = (
                f"{count(result.elsewhere, 'participant')} got their certificate in another workshop: export"
                " legacy p12 files for them there (their handouts and summary are updated)"
            )
        if result.already_modern:
            result.warnings["modern-p12"] = (
                f"{count(result.already_modern, 'participant')} already had a modern p12: export legacy ones for them"
            )
        write_summary(ledger, _status_in(workspace))
    result.errors.sort()
    return result


#: Handouts written (by threads) before the ledger records them as handed out.
CHUNK_HANDOUTS = 64


def _day(moment) -> str:
    return moment.strftime("%Y-%m-%d")


def _earlier_workshop(workspace: Workspace, roster: "Roster | str | os.PathLike", own: Path) -> Path | None:
    """The first other workshop folder of the workspace whose records hold someone on ``roster`` (by email)."""
    folders = [folder for folder in _ledgers(workspace, None, None) if folder != own]
    if not folders:
        return None
    with contextlib.ExitStack() as stack:
        ledgers = [stack.enter_context(Ledger(folder)) for folder in folders]
        rows = roster.participants if isinstance(roster, Roster) else iter_roster(roster)
        for item in rows:
            if isinstance(item, Participant):
                for ledger in ledgers:
                    if ledger.by_email(item.key) is not None:
                        return ledger.out
    return None


def _workshop_warnings(workspace: Workspace, url: str | None) -> dict[str, str]:
    """What the teacher should know about the server's name and the CA's reach before handing out."""
    warnings = {}
    if url:
        host = urlsplit(url).hostname or ""
        servers = workspace.current_of("server")
        if servers and not any(_names_host(record, host) for record in servers):
            warnings["host"] = (
                f"no server certificate in {workspace.home} names {host} ("
                + "; ".join(f"{r.name}: {', '.join(_host_names(r)) or 'no host'}" for r in servers)
                + "): browsers will refuse the workshop's server"
            )
    constraints = name_constraints_of(workspace.ca_record().certificate)
    if constraints is None:
        warnings["constraints"] = (
            f"the issuing CA {workspace.ca_name} has no name constraints: a participant who trusts it trusts it for"
            " every website; for a workshop, make a CA limited to the workshop's host"
        )
    elif not website_scope(constraints):
        warnings["constraints"] = (
            f"the name constraints of the issuing CA {workspace.ca_name} leave DNS names or IP addresses open: a"
            " participant who trusts it trusts it for such websites; for a workshop, make a CA limited to the"
            " workshop's host (permitting only its DNS name also excludes every IP address)"
        )
    return warnings


def _host_names(record: Record) -> list[str]:
    try:
        names = record.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*names.get_values_for_type(x509.DNSName), *map(str, names.get_values_for_type(x509.IPAddress))]


def _names_host(record: Record, host: str) -> bool:
    """True if the server certificate's alternative names cover ``host`` (one wildcard label allowed)."""
    host = host.lower().rstrip(".")
    for name in _host_names(record):
        name = name.lower().rstrip(".")
        if name == host or (name.startswith("*.") and host.partition(".")[2] == name[2:]):
            return True
    return False


def _workshop_of(workspace: Workspace, person: Participant, out: Path) -> Path | None:
    """Another workshop folder of the workspace whose records hold this person, if any."""
    for folder in _ledgers(workspace, None, None):
        if folder.resolve() != out.resolve():
            with Ledger(folder) as other:
                if other.by_email(person.key) is not None:
                    return folder
    return None


def _known(ledger: Ledger, person: Participant, *, legacy: bool) -> None:
    """A participant who had a certificate before: listed by this run (recorded anew if the ledger lost them)."""
    if ledger.by_email(person.key) is None:
        ledger.claim(email_key=person.key, certificate=person.name, name=person.full_name, email=person.email,
                     ou=person.ou, line=person.line, password=None, legacy=legacy)
    else:
        ledger.seen(person.key, line=person.line)


def _complete(workspace: Workspace, ledger: Ledger, handouts: "_Handouts", person: Participant, record: Record,
              *, p12: bool) -> bool:
    """Finish a participant a killed run left incomplete; True if there was something to finish.

    Complete means: the ledger knows their current certificate, the password of their p12 (which
    is on disk) and their handout. A p12 whose password was lost is exported again with a new one.
    """
    row = ledger.by_email(person.key)
    p12_file = workspace.path(person.name, "p12")
    if row.serial == record.serial_hex and row.handout and (row.password is None or p12_file.exists()):
        return False
    password = row.password
    if row.serial != record.serial_hex or (password and not p12_file.exists()):
        if not _opens(p12_file, password, record):
            password = None
            if (p12 or row.password) and workspace.path(person.name, "key").exists():
                password = handout_password()
                workspace.export_p12(person.name, password=password, legacy=row.legacy)
        ledger.issued(person.name, serial=record.serial_hex, issued=_day(record.not_before),
                      expires=_day(record.not_after), password=password, legacy=row.legacy, new=False)
    handouts.add(person, record, password, legacy=row.legacy)
    ledger.handed_out(handouts.flush())
    return True


def _opens(p12_file: Path, password: str | None, record: Record) -> bool:
    """True if the p12 on disk opens with ``password`` and holds ``record``'s certificate."""
    if not password or not p12_file.exists():
        return False
    try:
        contents = load_p12(p12_file, password=password)
    except KittylabError:
        return False
    return contents.certificate is not None and contents.certificate.serial_number == record.serial


def _status_in(workspace: Workspace):
    """A row's status in summary.csv, with a revocation's date and reason. The status is the participant's
    state, in the words of this teacher-facing file (kept as they are): ``not issued`` (no certificate
    yet) or ``issued`` (theirs stands, whatever its dates say); where their certificate was withdrawn,
    its own status as facts names it (:meth:`Record.status`): ``revoked`` or ``superseded``."""

    def status(row: Row) -> tuple[str, str, str]:
        record = workspace.by_serial(int(row.serial, 16)) if row.serial else None
        if record is None:
            return "not issued", "", ""
        said = record.status()
        if said == "revoked":
            return said, _day(record.revoked_at), record.reason or "unspecified"
        return said if said == "superseded" else "issued", "", ""

    return status


# -- the files for people --------------------------------------------------------------------------


def _handout_path(out: Path, name: str) -> Path:
    return out / "handouts" / name / f"{name}.html"


class _Handouts:
    """Writes handout folders in threads (their fsyncs overlap) while the next certificates are made."""

    def __init__(self, workspace: Workspace, out: Path, *, url: str | None, title: str) -> None:
        self.out, self.url, self.title = out, url, title
        self.ca_name, self.ca_path = workspace.ca_name, workspace.ca_certificate_path
        ca = workspace.ca_record()
        self.ca_fingerprint = ca.fingerprint
        constraints = name_constraints_of(ca.certificate)
        self.ca_permitted = website_scope(constraints)
        self.workspace = workspace
        self._pool = ThreadPoolExecutor(max_workers=WRITER_THREADS)
        self._pending: list[tuple[str, Future]] = []

    def __enter__(self) -> "_Handouts":
        return self

    def __exit__(self, kind, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=kind is not None)

    @property
    def queued(self) -> int:
        return len(self._pending)

    def add(self, person: Participant, record: Record, password: str | None, *, legacy: bool) -> None:
        self._pending.append((person.name, self._pool.submit(self._write, person, record, password, legacy)))

    def flush(self) -> list[str]:
        """Wait for the queued handouts (the first error, such as a full disk, is raised); their names."""
        done = [name for name, future in self._pending if future.result() or True]
        self._pending = []
        return done

    def _write(self, person: Participant, record: Record, password: str | None, legacy: bool) -> Path:
        """``handouts/NAME/``: the page, the p12 (or key and certificate) and the CA's certificate."""
        folder = self.out / "handouts" / person.name
        if folder.is_symlink():
            raise KittylabError(f"{folder} is a symbolic link: kittylab writes handouts only into real folders")
        folder.mkdir(mode=0o700, exist_ok=True)
        p12_file = self.workspace.path(person.name, "p12") if password else None
        for source in (p12_file,) if p12_file else (self.workspace.path(person.name, "key"), self.workspace.path(person.name, "crt")):
            if source.exists():
                _link_or_copy(source, folder / source.name)
        _link_or_copy(self.ca_path, folder / self.ca_path.name)
        info = HandoutInfo(
            full_name=person.full_name, email=person.email, title=self.title, url=self.url or DEFAULT_URL,
            ca_name=self.ca_name, p12_file=p12_file.name if p12_file else None, p12_password=password,
            legacy_p12=legacy, ca_fingerprint=self.ca_fingerprint, url_placeholder=not self.url,
            ca_permitted=self.ca_permitted,
        )
        return write_atomically(_handout_path(self.out, person.name), render_handout(record, info).encode(), secret=True)


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


# -- after the first run: revoking some or all, other p12 files ---------------------------------------


def _ledgers(workspace: Workspace, out: str | os.PathLike | None, stem: str | None) -> list[Path]:
    """The workshop folders to look in: ``out``; else the roster's own, then every workshop of the workspace.

    Those are its ``roster-*`` folders and the folders elsewhere (``--out``) that it keeps a list of.
    """
    if out is not None:
        return [Path(out)]
    found = {path.parent for path in workspace.home.glob(f"roster-*/{LEDGER_FILE}")}
    found |= {folder for folder in workspace.workshops() if (folder / LEDGER_FILE).exists()}
    found = sorted(found)
    own = default_out(workspace, stem) if stem else None
    return sorted(found, key=lambda folder: folder != own)


def _register(workspace: Workspace, out: Path) -> None:
    """Remember a workshop folder outside ``<workspace>/roster-*`` (those are found by their names)."""
    folder = out.resolve()
    if not (folder.parent == workspace.home.resolve() and folder.name.startswith("roster-")):
        workspace.add_workshop(folder)


@dataclass
class _Target:
    folder: Path
    row: Row


def _targets(workspace: Workspace, roster, who: Iterable[str], out) -> tuple[list[_Target], list[tuple[int, str]]]:
    """The participants a roster (by email, else name or file name) and ``who`` name, found in the workshops' records."""
    stem = None
    wanted: list[tuple[int, str, str]] = []  # (line, who, email key or "")
    errors: list[tuple[int, str]] = []
    if roster is not None:
        path, rows, _ = _rows_of(roster)
        stem = path.stem
        for item in rows:
            if isinstance(item, tuple):
                errors.append(item)
            else:
                wanted.append((item.line, item.full_name, item.key))
    wanted += [(0, tidy(name), "") for name in who]
    folders = _ledgers(workspace, out, stem)
    targets: dict[str, _Target] = {}
    for line, name, key in wanted:
        matches: dict[str, _Target] = {}
        for folder in folders:
            with Ledger(folder) as ledger:
                rows = ([ledger.by_email(key)] if key else []) or ledger.find(
                    name, key=name.casefold(), file_name=file_name(name))
                for row in rows:
                    if row is not None:
                        matches.setdefault(row.email_key, _Target(folder, row))
        if not matches:
            places = ", ".join(str(folder) for folder in folders) or f"no workshop of {workspace.home} yet"
            errors.append((line, f"nobody named {name!r} in {places}"))
        elif len(matches) > 1:
            errors.append((line, f"{name!r} matches {len(matches)} participants"
                                 f" ({', '.join(t.row.email for t in matches.values())}): give the email instead"))
        else:
            target = next(iter(matches.values()))
            targets.setdefault(target.row.email_key, target)
    return list(targets.values()), errors


class _ChosenResult:
    """What the commands on chosen participants share: their :meth:`report`, then the lines for the
    summaries rewritten and for the rows or names that were not found."""

    errors: list[tuple[int, str]]
    summaries: list[Path]

    def __str__(self) -> str:
        return "\n".join(self.report() + [f"summary updated: {path}" for path in self.summaries] + [
            f"line {line}: {message}" if line else message for line, message in self.errors])


@dataclass
class RevokeResult(_ChosenResult):
    """What ``roster revoke`` did: revoked records, those without a current certificate (how), bad rows."""

    revoked: list[Record]
    not_current: list[str]
    errors: list[tuple[int, str]]
    crl_path: Path
    reason: str
    summaries: list[Path] = field(default_factory=list)

    def report(self) -> list[str]:
        """What was revoked (with the reason) or already was, and whether a CRL was published."""
        lines = []
        if self.revoked:
            names = ", ".join(Subject.from_name(record.certificate.subject).cn for record in self.revoked)
            lines.append(f"revoked {count(self.revoked, 'certificate')} (reason {self.reason}): {names}")
        if self.not_current:
            lines.append(f"left as they were {len(self.not_current)}: " + ", ".join(self.not_current))
        lines.append(f"published the CRL: {self.crl_path}" if self.revoked else "nothing changed: no CRL published")
        return lines


def revoke_roster(
    workspace: Workspace,
    roster: Roster | str | os.PathLike | None = None,
    *,
    who: Iterable[str] = (),
    reason: str | None = None,
    out: str | os.PathLike | None = None,
) -> RevokeResult:
    """Revoke participants (a roster's rows, or ``who``: names, emails or file names) in one transaction.

    The workshop's summary is found by itself (the roster's own folder, else any ``roster-*`` in the
    workspace, or ``out``) and says ``revoked`` for them. ``reason`` defaults to
    cessation-of-operation when everyone left of the workshop is revoked (its end), else to
    unspecified (a lost laptop is a key-compromise: say so). Nothing is published when nothing changed.
    """
    targets, errors = _targets(workspace, roster, who, out)
    current, not_current = [], []
    for target in targets:
        record = _record_of(workspace, target.row.certificate)
        if record is not None and record.revoked_at is None and record.superseded_by is None:
            current.append((target, record))
        else:
            not_current.append(f"{target.row.name} ({'already ' if record else ''}{_no_current(record)})")
    reason = reason or (END_REASON if _everyone(workspace, current) else "unspecified")
    revoked = workspace.revoke_many([record.name for _, record in current], reason=reason) if current else []
    summaries = []
    # Every named participant's workshop, not only those revoked now: a run killed after the revocation's
    # commit left its summary behind, and the next run (which revokes nothing) brings it up to date.
    for folder in dict.fromkeys(target.folder for target in targets):
        with _workshop_lock(folder), Ledger(folder) as ledger:
            summaries.append(write_summary(ledger, _status_in(workspace)))
    return RevokeResult(revoked, not_current, sorted(errors), workspace.crl_path, reason, summaries)


def _no_current(record: Record | None) -> str:
    """Why a participant holds no current certificate: ``revoked on 2026-11-30, reason key-compromise``."""
    if record is None:
        return "never issued"
    if record.revoked_at is not None:
        return f"revoked on {_day(record.revoked_at)}, reason {record.reason or 'unspecified'}"
    return "superseded by a newer certificate"


def _everyone(workspace: Workspace, current: list[tuple[_Target, Record]]) -> bool:
    """True if ``current`` holds every participant of their workshops who has a current certificate: its end."""
    chosen = {target.row.certificate for target, _ in current}
    for folder in {target.folder for target, _ in current}:
        with Ledger(folder) as ledger:
            for row in ledger.rows("serial IS NOT NULL"):
                record = _record_of(workspace, row.certificate)
                if row.certificate not in chosen and record is not None and record.revoked_at is None:
                    return False
    return True


@dataclass
class P12Result(_ChosenResult):
    """What ``roster export-p12`` did: new p12 files (legacy or modern) with new passwords, by name."""

    exported: list[str]
    legacy: bool
    errors: list[tuple[int, str]]
    summaries: list[Path] = field(default_factory=list)

    def report(self) -> list[str]:
        """Who got a new p12, and how many named participants did not (why: in ``errors``)."""
        flavour = "legacy (3DES, SHA-1 MAC)" if self.legacy else "modern (AES-256)"
        lines = [f"new {flavour} p12 files with new passwords, handouts rewritten {len(self.exported)}"
                 + (": " + ", ".join(self.exported) if self.exported else "")]
        if self.errors:
            lines.append(f"not exported {len(self.errors)} (why: below)"
                         + ("; the others are done" if self.exported else ""))
        return lines


def export_roster_p12(
    workspace: Workspace,
    roster: Roster | str | os.PathLike | None = None,
    *,
    who: Iterable[str] = (),
    legacy: bool = True,
    out: str | os.PathLike | None = None,
    url: str | None = None,
    title: str | None = None,
) -> P12Result:
    """Give chosen participants (a roster's rows, or ``who``) a new p12, legacy by default, with a new password.

    Their handout (in their workshop's folder) and the summary are rewritten with it: the way to
    legacy files for the Mac users after the first run.
    """
    targets, errors = _targets(workspace, roster, who, out)
    exported, summaries = [], []
    by_folder: dict[Path, list[_Target]] = {}
    for target in targets:
        by_folder.setdefault(target.folder, []).append(target)
    for folder, group in by_folder.items():
        handout_url, handout_title = url or _handout_setting(folder, "url"), title or _handout_setting(folder, "title")
        handout_url = None if handout_url == DEFAULT_URL else handout_url
        with (_workshop_lock(folder), Ledger(folder, write=True) as ledger,
              _Handouts(workspace, folder, url=handout_url, title=handout_title or "Workshop") as handouts):
            for target in group:
                row = target.row
                record = _record_of(workspace, row.certificate)
                if record is None or record.revoked_at is not None or record.superseded_by is not None:
                    errors.append((0, f"{row.name} <{row.email}> is not exported: {_no_current(record)}"))
                    continue
                if not workspace.path(row.certificate, "key").exists():
                    errors.append((0, f"{row.name} is not exported: the workspace does not hold their key"))
                    continue
                password = handout_password()
                workspace.export_p12(row.certificate, password=password, legacy=legacy)
                ledger.issued(row.certificate, serial=record.serial_hex, issued=_day(record.not_before),
                              expires=_day(record.not_after), password=password, legacy=legacy, new=False)
                person = Participant(row.line, row.certificate, row.name, row.email, row.ou)
                handouts.add(person, record, password, legacy=legacy)
                exported.append(row.name)
            ledger.handed_out(handouts.flush())
            summaries.append(write_summary(ledger, _status_in(workspace)))
    return P12Result(exported, legacy, sorted(errors), summaries)


def _handout_setting(folder: Path, what: str) -> str | None:
    """The address or title an earlier handout of this workshop carried (kept when one is rewritten)."""
    with Ledger(folder) as ledger:
        return ledger.get(what)
