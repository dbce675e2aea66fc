"""The workspace: one folder holding the CA, everything it issued, and the store that records it.

Files are named as in the article (``kitty-ca.key``, ``picture-server.crt``,
``eager-client.p12``, ...). Every change follows one write protocol (:mod:`.protocol`) so that
a crash or a second process at any moment loses nothing:

1. the workspace's lock is taken; the first time, what an earlier crash left is finished
   (staged files of committed certificates take their place, others are deleted) and every
   published file (certificates, CRLs, chain files) is repaired from the store;
2. the files a new certificate brings (key, CSR, p12) are written under staged names;
3. the store records the change in one transaction (a CRL is written inside it: a crash leaves
   it listing too much, never too little);
4. the staged files take their place, then the files published from the store (``.crt``,
   chain files) are written.

Opening a workspace only reads: it creates no folder and no store, and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from dataclasses import replace as replace_field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ..errors import KittylabError
from ..pki.ca import (
    CA_DAYS,
    INTERMEDIATE_DAYS,
    LEAF_DAYS,
    CertificateAuthority,
    Revocation,
    check_issuance,
    load_certificate,
    utcnow,
)
from ..pki.constraints import name_constraints_of
from ..pki.crl import check_reason, crl_expiry_warning, entry_reason, load_crl
from ..pki.csr import check_csr_signature, load_csr, make_csr, save_csr
from ..pki.extensions import extension_value
from ..pki.facts import EXPIRING_DAYS, Record, is_ca, parse_serial, profile_of, when
from ..pki.files import write_atomically
from ..pki.grant import Grant, review
from ..pki.keys import PrivateKey, check_new_passphrase, generate_key, key_kind, key_to_pem, load_key, save_key
from ..pki.names import AltNames, Subject, subject_of
from ..pki.pkcs12 import export_p12, generate_password
from ..pki.profiles import PROFILES, AccessUrls, Profile, get_profile
from ..pki.verify import Verification, verify_certificate
from .protocol import (
    LOCK_FILE,
    STAGING,
    WorkspaceLock,
    fsync_folder,
    make_private_folder,
    parse_staged,
    permission_problem,
    refuse_symlink,
    staged_name,
)
from .store import AuditEntry, Store, StoreDamaged

if TYPE_CHECKING:
    from .batch import Request

DEFAULT_HOME = "kitty-workspace"
#: DER copies of each CA's CRL and certificate, named as their URLs (``NAME.crl``, ``NAME.crt``):
#: what ``kittylab publish`` serves, for any web server or CDN to serve as static files.
PUBLISHED = "published"
#: Every certificate ever issued, ``SERIAL-NAME.pem`` (as OpenSSL's newcerts/): superseded and revoked ones
#: too, so that a lost store is rebuilt with every certificate still valid (and so still revocable).
ISSUED = "issued"
STORE_FILE = "kittylab.sqlite3"
#: Where :meth:`Workspace.set_aside` moves a workspace's files, one ``run-TIME`` folder each.
EARLIER_RUNS = "earlier-runs"
#: The workshop folders kept outside the workspace (a roster's ``out``), one absolute path a line, so
#: that a later roster finds the people they hold.
WORKSHOPS_FILE = "workshops.txt"
CRL_DAYS = 30
#: A CA that signs CAs (an offline root) publishes rarely: its CRL's default validity.
ROOT_CRL_DAYS = 365
#: Threads that write a batch's files at once (their fsyncs overlap).
WRITER_THREADS = 8
#: Yields the passphrases to try for the CA named by its argument (the first that opens the key wins).
PassphraseSource = Callable[[str], Iterable[str]]
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # \Z: $ would let "name\n" through


#: What the audit log names as the command of this process's changes (the command line sets its own).
_COMMAND = ["python: the kittylab API"]


def set_audit_command(command: str) -> None:
    """Name the command this process runs, as the audit log records it (``kittylab revoke lena ...``)."""
    _COMMAND[0] = command


def _actor() -> tuple[str, str, str]:
    """(user, host, command) for the audit log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return user, socket.gethostname(), _COMMAND[0]


def check_name(name: str) -> str:
    """Return ``name`` if it can name files inside the workspace, else a one-line error."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name or name.endswith("."):
        raise KittylabError(
            f"bad name {name!r}: use 1-64 letters, digits, '.', '-' or '_' (it names files inside the workspace)"
        )
    return name


def default_home() -> Path:
    """``$KITTYLAB_HOME`` if set, else ``./kitty-workspace``."""
    return Path(os.environ.get("KITTYLAB_HOME") or DEFAULT_HOME)


@dataclass
class Issued:
    """What an issuance made: the store's record, the certificate, and the files written."""

    record: Record
    certificate: x509.Certificate
    files: dict[str, Path]
    key: PrivateKey | None = field(default=None, repr=False)
    p12_password: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.record.name


@dataclass
class Draft:
    """A certificate signed but not yet recorded, with the files it brings (key, CSR, p12).

    Made by :func:`draft_issue` (anywhere, e.g. in a worker process), recorded by
    :meth:`Workspace.record_drafts`.
    """

    name: str
    profile: str
    certificate: x509.Certificate
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)
    public: dict[str, bytes] = field(default_factory=dict)
    key: PrivateKey | None = field(default=None, repr=False)
    p12_password: str | None = field(default=None, repr=False)
    #: The signing CA's name in the workspace (None: the default issuing CA).
    issuer: str | None = None
    #: The serial of the certificate this one renews (it becomes superseded).
    supersedes: int | None = None


def draft_issue(
    ca: CertificateAuthority,
    name: str,
    *,
    profile: str,
    subject: Subject,
    key: PrivateKey | str = "rsa2048",
    days: int = LEAF_DAYS,
    names: AltNames = AltNames(),
    p12: bool = False,
    p12_password: str | None = None,
    legacy_p12: bool = False,
    kdf_rounds: int | None = None,
    now: dt.datetime | None = None,
) -> Draft:
    """Make a key, a CSR and the CA's certificate for it (and a p12), touching neither disk nor store.

    The p12 gets ``p12_password``, or a generated one returned in ``Draft.p12_password``.
    """
    private_key = generate_key(key) if isinstance(key, str) else key
    csr = make_csr(private_key, subject, **asdict(names))
    certificate = ca.sign(csr, profile=profile, days=days, now=now)
    secrets = {"key": key_to_pem(private_key)}
    generated = None
    if p12:
        generated = None if p12_password else generate_password()
        secrets["p12"] = export_p12(
            private_key,
            certificate,
            password=p12_password or generated,
            chain=ca.chain,
            name=name,
            legacy=legacy_p12,
            kdf_rounds=kdf_rounds,
        )
    public = {"csr": csr.public_bytes(serialization.Encoding.PEM)}
    return Draft(name, get_profile(profile).name, certificate, secrets=secrets, public=public, key=private_key,
                 p12_password=generated)


def _write_files(jobs: list[tuple[Path, bytes, bool]]) -> None:
    """Write (path, data, secret) jobs atomically; a batch in parallel threads.

    Each write waits on its own fsync; in parallel the file system commits them together
    (about three times the throughput on ext4), which is what makes a class roster fast.
    """
    if len(jobs) <= 1:
        for path, data, secret in jobs:
            write_atomically(path, data, secret=secret)
        return
    with ThreadPoolExecutor(max_workers=min(WRITER_THREADS, len(jobs))) as pool:
        list(pool.map(lambda job: write_atomically(job[0], job[1], secret=job[2]), jobs))


def _key_stays_with_its_owner(name: str) -> str:
    """Why there is no p12 of ``name`` when its key is not in the workspace (it signed ``name``'s request)."""
    return (f"kittylab does not hold {name}'s private key (it signed a request): the key stays with its owner,"
            " who alone can bundle key and certificate")


class Workspace(AbstractContextManager["Workspace"]):
    """A folder with a CA, its store and its files; the one object the notebooks and the CLI use.

    ``Workspace("kitty-workspace")`` opens the folder for reading: nothing is created or written
    until something changes (:meth:`init_ca` creates the folder). A CA's key is loaded once,
    when first needed. Each CA key has its own passphrase: ``passphrases(name)`` yields the
    candidates for CA ``name`` (lazily, so a prompt comes last and only when needed);
    ``ca_passphrase`` is tried for any CA key after them.
    """

    def __init__(
        self,
        home: str | os.PathLike | None = None,
        *,
        ca_passphrase: str | None = None,
        passphrases: PassphraseSource | None = None,
    ) -> None:
        self.home = Path(home) if home is not None else default_home()
        if self.home.exists() and not self.home.is_dir():
            raise KittylabError(f"the workspace {self.home} is not a folder")
        self._store = Store(self.home / STORE_FILE)
        self._lock = WorkspaceLock(self.home)
        self._ca_passphrase = ca_passphrase
        self._passphrases = passphrases
        #: The deploy folder's files the last change rewrote (for a deploy hook).
        self.deployed: list[Path] = []
        self._known_passphrases: dict[str, str] = {}
        self._cas: dict[str, CertificateAuthority] = {}
        #: True once :meth:`close` ran: nothing more can be read or written through this object.
        self.closed = False
        self._repaired = False
        self._fixed: list[str] = []

    def close(self) -> None:
        self._store.close()
        self.closed = True

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r})"

    # -- paths -----------------------------------------------------------------------------

    def path(self, name: str, suffix: str) -> Path:
        """The file ``NAME.SUFFIX`` inside the workspace (the name is checked so it cannot escape)."""
        return self.home / f"{check_name(name)}.{suffix}"

    @property
    def ca_name(self) -> str:
        name = self._store.get_meta("ca")
        if name is None:
            self._refuse_orphaned_files()
            raise KittylabError(f"no CA in {self.home}: create one first", fix="init")
        return name

    def _refuse_orphaned_files(self) -> None:
        """Refuse to go on where a lost store left a CA's files: a new CA would orphan everything they issued."""
        found = self._ca_files_without_store()
        if found:
            raise KittylabError(self._orphaned_files_message(found), fix="repair")

    def _ca_files_without_store(self) -> list[str]:
        """Certificates, CRLs and keys in a workspace whose store knows no CA: what a lost store leaves.

        The files are looked at first, the store after: a CA's files appear only once its record is
        committed, so another process's init finishing meanwhile is never taken for a lost store."""
        if not self.home.is_dir():
            return []
        found = sorted(p.name for p in self.home.iterdir() if p.suffix in (".key", ".crt", ".crl")
                       and not p.name.startswith("."))
        return found if found and self._store.get_meta("ca") is None else []

    def _orphaned_files_message(self, found: list[str]) -> str:
        shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        return (
            f"{self.home} holds a CA's files ({shown}) but its certificate store {STORE_FILE} is missing or empty:"
            " a new CA would orphan everything they issued. Rebuild the store from them (repair the workspace)"
        )

    @property
    def exists(self) -> bool:
        """True once a workspace was made here (its store holds records); opening never makes one."""
        return self._store.exists

    def _records_lost(self) -> bool:
        """True if the store names a CA but holds no certificate of it (its certificates were deleted)."""
        ca = self._store.get_meta("ca")
        return ca is not None and self._store.latest(ca) is None

    def check_exists(self) -> None:
        """A one-line error unless a workspace was made here; CA files left without their store say how to recover."""
        if self._records_lost():
            raise KittylabError(
                f"the certificate store {self._store.path} names the CA {self._store.get_meta('ca')} but holds none of"
                " its certificates (its records were deleted): rebuild it from the workspace's files (repair the"
                " workspace)", fix="repair")
        if self.exists:
            return
        self._refuse_orphaned_files()
        raise KittylabError(f"no workspace at {self.home}", fix="no-workspace")

    @property
    def has_ca(self) -> bool:
        return self._store.get_meta("ca") is not None

    @property
    def ca_certificate_path(self) -> Path:
        return self.path(self.ca_name, "crt")

    @property
    def crl_path(self) -> Path:
        return self.path(self.ca_name, "crl")

    def ca_names(self) -> list[str]:
        """Every CA of the workspace (roots and intermediates, revoked ones too), oldest first."""
        return list(dict.fromkeys(r.name for r in self._store.records() if r.profile == "ca"))

    def ca_record(self, name: str | None = None) -> Record:
        """The store's record of the CA ``name`` (default: the default issuing CA)."""
        name = name or self.ca_name
        record = self._store.current(name) or self._store.latest(name)
        if record is None or record.profile != "ca":
            known = ", ".join(self.ca_names()) or "none yet"
            raise KittylabError(f"no CA named {name!r} in {self.home} (its CAs: {known})")
        return record

    def lineage(self, ca: str | None = None) -> list[Record]:
        """The records of CA ``ca`` and of the CAs above it, the root last."""
        records = [self.ca_record(ca)]
        while records[-1].issuer != records[-1].name and len(records) < 16:
            records.append(self.ca_record(records[-1].issuer))
        return records

    def chain(self, ca: str | None = None) -> list[x509.Certificate]:
        """The certificates of CA ``ca`` and the CAs above it, root last: what goes beside a leaf."""
        return [record.certificate for record in self.lineage(ca)]

    def chain_path(self, ca: str | None = None) -> Path:
        """A PEM file of :meth:`chain`, for nginx's ``ssl_client_certificate`` or a server's chain.

        For a root this is its certificate file; an intermediate has ``NAME.chain.pem``.
        """
        records = self.lineage(ca)
        return self.path(records[0].name, "crt" if len(records) == 1 else "chain.pem")

    def crl_chain_path(self, ca: str | None = None) -> Path:
        """The CRLs of a CA and of the CAs above it in one file: nginx's ``ssl_crl`` checks the whole chain."""
        records = self.lineage(ca)
        return self.path(records[0].name, "crl" if len(records) == 1 else "chain.crl")

    def _chain_files(self) -> list[tuple[Path, bytes, bool]]:
        """Every intermediate's ``NAME.chain.pem`` and ``NAME.chain.crl``, from the store and the CRL files."""
        files = []
        for name in self.ca_names():
            records = self.lineage(name)
            if len(records) == 1:
                continue
            files.append((self.path(name, "chain.pem"), "".join(r.pem for r in records).encode(), False))
            crls = [self.path(r.name, "crl") for r in records]
            files.append((self.path(name, "chain.crl"), b"".join(c.read_bytes() for c in crls if c.exists()), False))
        return files

    def _write_chain_files(self) -> None:
        """Rewrite the chain files that differ from what the store and the CRLs say."""
        _write_files([job for job in self._chain_files() if not _holds(job[0], job[1])])

    # -- the write protocol ----------------------------------------------------------------

    @contextmanager
    def _writing(self, *, create: bool = False, recover: bool = True) -> Iterator[None]:
        """Hold the workspace's lock for a change; the first time, finish what a crash left.

        Only ``create`` (making a CA) makes the folder; any other change needs one that exists.
        """
        if not self._lock.held:
            if create:
                make_private_folder(self.home)
            elif not self.home.is_dir():
                raise KittylabError(f"no workspace at {self.home}", fix="no-workspace")
        first = self._lock.acquire()
        try:
            if first and recover:
                self._fixed = self._recover()
            yield
        finally:
            self._lock.release()

    def _recover(self, *, full: bool = False) -> list[str]:
        """Finish what a crash left (staged files) and repair published files; return what was fixed.

        Published files are checked all at once the first time this object writes (and when a
        crash left staged files); later changes only write their own.
        """
        fixed = self._settle_staged()
        if self._store.exists and (full or fixed or not self._repaired):
            fixed += self._repair_published()
            self._repaired = True
        return fixed

    def _settle_staged(self) -> list[str]:
        """Staged files of a committed current certificate take their place; any other is deleted."""
        staging = self.home / STAGING
        refuse_symlink(staging)
        if not staging.is_dir():
            return []
        fixed = []
        for path in sorted(staging.iterdir()):
            parsed = parse_staged(path.name)
            current = self._store.current(parsed[0]) if parsed and _is_name(parsed[0]) else None
            if current is not None and current.serial == parsed[2]:
                self._promote([(path, self.path(parsed[0], parsed[1]))], keep=current.profile == "ca")
                fixed.append(f"moved the staged {parsed[0]}.{parsed[1]} into place")
            else:
                path.unlink()
        return fixed

    def _stage(self, drafts: list[Draft]) -> list[tuple[Path, Path]]:
        """Write drafts' files (key, CSR, p12) under staged names, durably; return (staged, final) pairs."""
        staging = self.home / STAGING
        refuse_symlink(staging)
        if not staging.is_dir():
            try:
                os.mkdir(staging, 0o700)
            except OSError as exc:
                raise KittylabError(f"cannot write in {self.home}: {exc.strerror}") from None
        jobs, moves = [], []
        for draft in drafts:
            for suffix, data in (*draft.secrets.items(), *draft.public.items()):
                staged = staging / staged_name(draft.name, suffix, draft.certificate.serial_number)
                jobs.append((staged, data, suffix in ("key", "p12")))
                moves.append((staged, self.path(draft.name, suffix)))
        try:
            _write_files(jobs)
        except BaseException:
            _unlink(path for path, _ in moves)
            raise
        if jobs:
            fsync_folder(staging)  # the staged names survive a power loss before the commit does
        return moves

    def _promote(self, moves: list[tuple[Path, Path]], *, keep: bool = False) -> None:
        """Move staged files into place; ``keep``: never replace an existing file (a CA's key)."""
        for staged, final in moves:
            if keep:
                try:
                    os.link(staged, final)
                except FileExistsError:
                    raise KittylabError(f"{final} already exists: kittylab never replaces a CA's key"
                                        f" (the new one waits in {staged})") from None
                os.unlink(staged)
            else:
                os.replace(staged, final)
        if moves:
            fsync_folder(self.home)

    def _repair_published(self) -> list[str]:
        """Rewrite every published file that differs from the store: certificates, CRLs, chain files."""
        fixed = []
        records = self._store.records()
        jobs = [job for record in records if record.revoked_at is None and record.superseded_by is None
                for job in self._certificate_files(record)]
        jobs += [self._issued_file(record) for record in records if record.revoked_at or record.superseded_by]
        jobs = [job for job in jobs if not _holds(job[0], job[1])]
        _write_files(jobs)
        fixed += [f"restored {path.name}" for path, _, _ in jobs]
        stale = [name for name in self.ca_names() if not self._crl_is_exact(name)]
        if stale:
            with self._store.transaction():
                for name in stale:
                    try:
                        self._sign_crl(name)
                        fixed.append(f"published {name}'s CRL again (it did not match the store)")
                    except KittylabError as exc:  # an offline CA, an encrypted key without its passphrase
                        fixed.append(f"could not publish {name}'s CRL again: {exc}")
        chain = [job for job in self._chain_files() if not _holds(job[0], job[1])]
        _write_files(chain)
        return fixed + [f"restored {path.name}" for path, _, _ in chain]

    def _crl_is_exact(self, name: str) -> bool:
        """True if ``NAME.crl`` is signed by the CA and lists exactly the store's revoked serials."""
        record = self._store.current(name) or self._store.latest(name)
        try:
            crl = load_crl(self.path(name, "crl"))
        except KittylabError:
            return False
        if record is None or not crl.is_signature_valid(record.certificate.public_key()):
            return False
        if not _holds(self.published_path(name, "crl"), crl.public_bytes(serialization.Encoding.DER)):
            return False
        return {entry.serial_number for entry in crl} == {r.serial for r in self._revocations(name)}

    def _revocations(self, name: str) -> list[Revocation]:
        """What CA ``name``'s CRL lists: the store's revoked certificates, and serials known only from an old CRL."""
        revoked = [Revocation(r.serial, r.revoked_at, r.reason or "unspecified") for r in self._store.revoked(name)]
        extra = json.loads(self._store.get_meta(f"crl_only:{name}", "[]"))
        return revoked + [Revocation(int(serial, 16), dt.datetime.fromisoformat(when), reason)
                          for serial, when, reason in extra]

    def repair(self) -> list[str]:
        """Bring the workspace back in order after a crash or a lost store; return a line per thing done.

        A damaged store is moved aside (``kittylab.sqlite3.damaged-TIME``). A missing or empty one
        is rebuilt from the workspace's own files: every ``NAME.crt`` becomes a record (its issuer
        found by signature), every CA's CRL marks what it revoked (a serial it lists without a
        certificate file stays on the CRL), the CRL numbers go on from the CRLs', and the newest CA
        becomes the default issuing CA. Then what every change does first: staged files are
        settled, and every published file is repaired from the store.
        """
        done = []
        with self._writing(recover=False):
            try:
                self._store.check()
            except StoreDamaged as exc:
                self._store.close()
                aside = self.home / f"{STORE_FILE}.damaged-{utcnow():%Y%m%dT%H%M%S}"
                for suffix in ("", "-journal", "-wal", "-shm"):
                    source = self.home / (STORE_FILE + suffix)
                    if source.exists():
                        os.replace(source, aside.with_name(aside.name + suffix))
                self._store = Store(self.home / STORE_FILE)
                done.append(f"moved the damaged store aside to {aside.name} ({exc.reason})")
            if not self._store.exists or self._store.get_meta("ca") is None or self._records_lost():
                done += self._rebuild_store()
            self._repaired = False
            done += self._recover(full=True)
            self.deployed = []
            self._redeploy()  # a crash after a commit may have left the deploy folder behind
            done += [f"deployed {path.name} again" for path in self.deployed]
        return done or ["nothing to repair: the store and the files agree"]

    def _rebuild_store(self) -> list[str]:
        """Records from the certificate files (``NAME.crt`` and every one kept in ``issued/``), revocations
        and CRL numbers from the CRLs. Of a name's certificates the one in ``NAME.crt`` (else the newest)
        is current, each older one superseded by the next."""
        found: dict[int, tuple[str, x509.Certificate]] = {}  # serial -> (name, certificate)
        current: dict[str, int] = {}
        written: dict[int, int] = {}  # serial -> when its file was written (renewals within a second)
        skipped = []
        kept = sorted((self.home / ISSUED).glob("*.pem")) if (self.home / ISSUED).is_dir() else []
        files = [(path, path.stem.partition("-")[2], False) for path in kept]
        files += [(path, path.stem, True) for path in sorted(self.home.glob("*.crt"))]
        for path, name, in_place in files:
            if path.name.startswith(".") or not _is_name(name) or path.is_symlink():
                continue
            try:
                certificate = load_certificate(path)
            except KittylabError:
                skipped.append(path.name)
                continue
            found[certificate.serial_number] = (name, certificate)
            written.setdefault(certificate.serial_number, path.stat().st_mtime_ns)
            if in_place:
                current[name] = certificate.serial_number
        cas = {name: found[serial][1] for name, serial in current.items() if is_ca(found[serial][1])}
        cas.update({name: cert for name, cert in found.values() if is_ca(cert) and name not in cas})
        if not cas:
            raise KittylabError(f"no CA certificate (a NAME.crt with CA:TRUE) in {self.home}: nothing to rebuild from")

        def issuer(cert: x509.Certificate) -> str | None:
            for name, ca in cas.items():
                if ca.subject == cert.issuer:
                    try:
                        cert.verify_directly_issued_by(ca)
                        return name
                    except (ValueError, TypeError, InvalidSignature):
                        continue
            return None

        issuers = {serial: issuer(cert) for serial, (_, cert) in found.items()}
        skipped += [f"{found[serial][0]} (serial {serial:X})" for serial, by in issuers.items() if by is None]
        depth = {}
        for name, cert in cas.items():
            chain, cursor = [name], issuers[cert.serial_number]
            while cursor is not None and cursor not in chain:
                chain.append(cursor)
                cursor = issuers[cas[cursor].serial_number]
            depth[name] = len(chain) if cursor is not None else 99
        usable = [serial for serial, by in issuers.items() if by is not None and depth[by] < 99
                  and (not is_ca(found[serial][1]) or depth.get(found[serial][0], 99) < 99)]
        # CAs first (roots before what they sign), each name's certificates oldest first, its current one last.
        usable.sort(key=lambda serial: (not is_ca(found[serial][1]), depth.get(found[serial][0], 0),
                                        current.get(found[serial][0]) == serial, found[serial][1].not_valid_before_utc,
                                        written[serial]))
        known_only, revoked = {}, 0
        successor, last = {}, {}  # each older certificate of a name is superseded by the next one
        for serial in usable:
            name = found[serial][0]
            if name in last:
                successor[last[name]] = serial
            last[name] = serial
        with self._store.transaction():
            for serial in usable:
                name, certificate = found[serial]
                self._store.add(name, profile_of(certificate), issuers[serial], certificate)
                if serial in successor:
                    self._store.mark_superseded(serial, by=successor[serial])
            for name in cas:
                try:
                    crl = load_crl(self.path(name, "crl"))
                except KittylabError:
                    continue
                if not crl.is_signature_valid(cas[name].public_key()):
                    skipped.append(f"{name}.crl")
                    continue
                extra = []
                for entry in crl:
                    when = entry.revocation_date_utc
                    reason = entry_reason(entry) or "unspecified"
                    record = self._store.by_serial(entry.serial_number)
                    if record is not None and record.issuer == name:
                        self._store.mark_revoked(entry.serial_number, when=when, reason=reason)
                    else:
                        extra.append([f"{entry.serial_number:x}", when.isoformat(), reason])
                    revoked += 1
                if extra:
                    self._store.set_meta(f"crl_only:{name}", json.dumps(extra))
                    known_only[name] = len(extra)
                number = extension_value(crl, x509.CRLNumber)
                if number is not None:
                    self._store.set_crl_number(name, number.crl_number)
            newest = max(cas, key=lambda name: (cas[name].not_valid_before_utc, depth[name]))
            self._store.set_meta("ca", newest)
        leaves = len([serial for serial in usable if not is_ca(found[serial][1])])
        done = [f"rebuilt the store from {len(cas)} CA certificates, {leaves} certificates and their CRLs"
                f" ({revoked} revoked); the default issuing CA is {newest}"]
        done += [f"{count} serials {name}'s CRL lists without a certificate file stay revoked"
                 for name, count in known_only.items()]
        keys = [name for name in cas if self.path(name, "key").exists()]
        for name in keys:
            try:
                if self._unlock(name, self.path(name, "key")).public_key() != cas[name].public_key():
                    done.append(f"warning: {name}.key does not belong to {name}.crt")
            except KittylabError:
                pass  # an encrypted key: checked when it first signs
        if skipped:
            done.append(f"skipped (not a certificate of these CAs, or a bad signature): {', '.join(skipped)}")
        return done

    def _shared_paths(self) -> list[Path]:
        """What every CA's signing relies on besides its own files: the store (whoever can write it can
        un-revoke a certificate, and the next CRL is signed without it), the lock, and the folders
        published, deployed and staged files go through."""
        from .deploy import folder  # the deploy folder is set in the store

        return [self.home / STORE_FILE, self.home / LOCK_FILE, self.home / PUBLISHED, self.home / STAGING,
                folder(self)]

    def permission_warning(self) -> str | None:
        """One line if others can write the workspace, its store or a CA's files (they could swap a CRL)."""
        if not self.home.is_dir():
            return None
        files = self._shared_paths()
        for name in self.ca_names():
            files += [self.path(name, suffix) for suffix in ("key", "crt", "crl", "chain.pem", "chain.crl")]
        return permission_problem(self.home, [path for path in files if path.exists()])

    # -- the CA ----------------------------------------------------------------------------

    def init_ca(
        self,
        subject: Subject | str = "kitty-ca",
        *,
        key: PrivateKey | str = "rsa4096",
        days: int | None = None,
        passphrase: str | None = None,
        intermediate_of: str | None = None,
        path_length: int | None = None,
        name_constraints: x509.NameConstraints | None = None,
        another_root: bool = False,
        urls: AccessUrls | None = None,
        replaces: str | None = None,
    ) -> CertificateAuthority:
        """Steps 1-3: make the CA's key and self-signed certificate, and publish an empty CRL.

        The files are named after the CA's common name (``kitty-ca.key``, ``kitty-ca.crt``).
        A workspace may hold more CAs: ``intermediate_of="kitty-root"`` makes an issuing CA
        signed by that CA (path length 0 unless given), ``another_root`` an independent root
        (the "two CAs" setup). The CA made last becomes the default issuing CA. ``days``
        defaults to 7300 for a root, 3650 for an intermediate (or until its parent ends, if sooner);
        an intermediate named by a bare CN takes its parent's O, C, ST and L.
        ``urls`` (where its CRL, OCSP responder and certificate are published) go into everything
        the new CA issues; an intermediate inherits what it does not set (:meth:`AccessUrls.below`).
        ``replaces`` names the CA this one takes over from (a rotation): what it does not set, it
        inherits from it (name constraints, path length, URLs renamed after it); the old CA keeps
        its key and publishes its CRL until its last certificate expires (``renew --ca`` moves a
        certificate over before then).
        """
        check_new_passphrase(passphrase)
        if replaces is not None:
            old = self.ca_record(replaces).certificate
            name_constraints = name_constraints if name_constraints is not None else name_constraints_of(old)
            if path_length is None:
                path_length = old.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        if intermediate_of and isinstance(subject, str) and not subject.startswith("/"):
            subject = self.default_subject(subject, ca=intermediate_of)  # a bare CN: O, C... as its parent
        subject = subject_of(subject)
        name = check_name(subject.cn)
        self._check_new_ca(name, added=intermediate_of is not None or another_root)
        parent = self.ca_for(intermediate_of) if intermediate_of is not None else None
        if days is None:  # an intermediate's default ends with its parent at the latest
            days = CA_DAYS if parent is None else min(INTERMEDIATE_DAYS, (parent.certificate.not_valid_after_utc - utcnow()).days)
        urls = urls or AccessUrls()
        if parent is not None or replaces is not None:
            inherited = (self.ca_urls(replaces).below(replaces, name) if replaces is not None
                         else parent.urls.below(parent.name, name))
            urls = AccessUrls(urls.crl or inherited.crl, urls.ocsp or inherited.ocsp, urls.ca_issuers or inherited.ca_issuers)
        ca = CertificateAuthority.create(
            subject, key=key, days=days, path_length=path_length, name_constraints=name_constraints, issuer=parent
        )
        draft = Draft(name, "ca", ca.certificate, secrets={"key": key_to_pem(ca.key, passphrase=passphrase)})
        with self._writing(create=True):
            # Again under the lock: of two processes making a CA at once, the second changes nothing.
            self._check_new_ca(name, added=intermediate_of is not None or another_root)
            staged = self._stage([draft])
            try:
                with self._store.transaction():
                    record = self._store.add(name, "ca", intermediate_of or name, ca.certificate)
                    self._store.set_meta("ca", name)
                    self._audit("init", record, details={"issuer": intermediate_of or name,
                                                         "encrypted_key": bool(passphrase)})
                    if urls:
                        self._store.set_meta(f"urls:{name}", json.dumps(urls.as_dict()))
            except BaseException:
                _unlink(path for path, _ in staged)
                raise
            self._promote(staged, keep=True)
            ca.urls = urls
            self._write_certificate(record)
            if passphrase:
                self._known_passphrases[name] = passphrase
            self._cas[name] = ca
            if intermediate_of is not None and self._store.get_meta(f"crl_days:{intermediate_of}") is None:
                self.publish_crl(ca=intermediate_of)  # it now signs CAs: its CRL takes the long default
            self.publish_crl(ca=name)
        return ca

    def _check_new_ca(self, name: str, *, added: bool) -> None:
        """Refuse a CA that would replace one, or orphan the files of a CA whose store was lost.

        Also called before the lock (to refuse before a key is made), where another init may finish
        meanwhile: its files are looked for first, since they appear only after its record is committed,
        so the store read after them says which CA they are."""
        existing = [path for path in (self.path(name, "key"), self.path(name, "crt")) if path.exists() or path.is_symlink()]
        if self.has_ca and not added:
            raise KittylabError(
                f"{self.home} already has a CA ({self.ca_name}): use another workspace,"
                " or make an intermediate or another root",
                fix="another-ca",
            )
        self._refuse_orphaned_files()
        if self._store.latest(name) is not None:
            raise KittylabError(f"{name!r} is already used in {self.home}: give the CA another name")
        if existing:
            raise KittylabError(
                f"{existing[0]} already exists and the store knows no CA {name}: kittylab never replaces a CA's"
                " key or certificate; move it away, or rebuild the store from the workspace's files",
                fix="repair",
            )

    @property
    def ca(self) -> CertificateAuthority:
        """The workspace's (default issuing) CA, its key loaded once and kept."""
        return self.ca_for(None)

    def ca_for(self, name: str | None) -> CertificateAuthority:
        """The CA ``name`` (default: the default issuing CA) with its key, loaded once and kept
        while its key file stays: a CA whose key file was moved away (offline) signs nothing more,
        in this process too."""
        name = name or self.ca_name
        if self.ca_record(name).revoked_at is not None:
            raise KittylabError(f"the CA {name} was revoked: make a new one", fix="new-intermediate")
        key_path = self.path(name, "key")
        if not key_path.exists():
            self._cas.pop(name, None)
            raise KittylabError(
                f"the key of the CA {name} is not in {self.home} (an offline CA):"
                f" put {key_path.name} back to sign with it"
            )
        problem = permission_problem(self.home, [p for p in (key_path, self.path(name, "crt"), self.path(name, "crl"),
                                                             *self._shared_paths()) if p.exists()])
        if problem:
            raise KittylabError(f"refusing to sign: {problem}")
        if name not in self._cas:
            records = self.lineage(name)
            key = self._unlock(name, key_path)
            self._cas[name] = CertificateAuthority(
                records[0].certificate, key, parents=[r.certificate for r in records[1:]], urls=self.ca_urls(name)
            )
        return self._cas[name]

    def ca_urls(self, name: str | None = None) -> AccessUrls:
        """Where CA ``name`` publishes its CRL, OCSP answers and certificate (``init --crl-url ...``)."""
        return AccessUrls(**json.loads(self._store.get_meta(f"urls:{self.ca_record(name).name}", "{}")))

    def ca_key_is_encrypted(self, name: str | None = None) -> bool:
        """True if CA ``name``'s key file (default: the issuing CA's) is protected by a passphrase."""
        return b"ENCRYPTED" in self.path(name or self.ca_name, "key").read_bytes()

    def _passphrase_candidates(self, name: str) -> Iterator[str]:
        """The passphrases to try for CA ``name``'s key, most specific first (a prompt, if any, last)."""
        if name in self._known_passphrases:
            yield self._known_passphrases[name]
        if self._passphrases is not None:
            yield from self._passphrases(name)
        if self._ca_passphrase:
            yield self._ca_passphrase

    def _unlock(self, name: str, key_path: Path) -> PrivateKey:
        """Load CA ``name``'s key, trying its passphrases in turn: each CA key has its own."""
        data = key_path.read_bytes()
        if b"ENCRYPTED" not in data:
            return load_key(data)
        tried: set[str] = set()
        for candidate in self._passphrase_candidates(name):  # lazily: a prompt comes only after the given ones fail
            if candidate in tried:
                continue
            tried.add(candidate)
            try:
                key = load_key(data, passphrase=candidate)
            except KittylabError:
                continue
            self._known_passphrases[name] = candidate
            return key
        if tried:
            raise KittylabError(f"wrong passphrase for the key of the CA {name} ({key_path.name})")
        raise KittylabError(f"the key of the CA {name} ({key_path.name}) is encrypted: give its passphrase")

    def change_passphrase(self, name: str, new: str | None) -> Path:
        """Encrypt CA ``name``'s key with the passphrase ``new`` (None: store it unencrypted)."""
        check_new_passphrase(new)
        ca = self.ca_for(check_name(name))
        with self._writing(), self._store.transaction():
            path = write_atomically(self.path(name, "key"), key_to_pem(ca.key, passphrase=new), secret=True)
            self._audit("passphrase", self.ca_record(name), details={"encrypted_key": bool(new)})
        self._known_passphrases.pop(name, None)
        if new:
            self._known_passphrases[name] = new
        return path

    # -- issuing ---------------------------------------------------------------------------

    def issue(
        self,
        name: str,
        *,
        profile: str,
        subject: Subject | str | None = None,
        key: PrivateKey | str = "rsa2048",
        days: int = LEAF_DAYS,
        p12: bool = False,
        p12_password: str | None = None,
        legacy_p12: bool = False,
        now: dt.datetime | None = None,
        ca: str | None = None,
        **names: Iterable[str],
    ) -> Issued:
        """Make a key, a CSR and a certificate for ``name`` in one go (steps 4-8 or 11-14).

        ``names``: ``dns``, ``ip``, ``email`` and ``uri`` (the fields of :class:`~kittylab.pki.names.AltNames`).
        The subject defaults to ``CN=name`` with the CA's O, C, ST and L. With ``p12`` a
        PKCS#12 file is written too, with ``p12_password`` or a generated one (returned once).
        ``ca`` names the signing CA (default: the default issuing CA).
        """
        self._check_leaf_name(name)
        subject = subject_of(subject) if subject is not None else self.default_subject(name, ca=ca)
        draft = draft_issue(
            self.ca_for(ca), name, profile=self.profile(profile), subject=subject, key=key, days=days,
            names=AltNames(**names), p12=p12, p12_password=p12_password, legacy_p12=legacy_p12, now=now,
        )
        draft.issuer = ca
        issued = self.record_drafts([draft])[0]
        issued.key = draft.key
        issued.p12_password = draft.p12_password
        return issued

    def issue_many(self, requests: Iterable["Request"], *, workers: int | None = None) -> Iterator[tuple["Request", Issued | str]]:
        """Issue a batch (a class roster) on every core: each :class:`~kittylab.workspace.batch.Request`
        with its :class:`Issued` or why not, in order, recorded a chunk per transaction as they come."""
        from .batch import issue_many

        return issue_many(self, requests, workers=workers)

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest | bytes | str | os.PathLike,
        *,
        profile: str,
        name: str | None = None,
        days: int = LEAF_DAYS,
        now: dt.datetime | None = None,
        ca: str | None = None,
        **names: Iterable[str] | bool,
    ) -> Issued:
        """Step 7-8: the CA signs a CSR that someone sent it (``openssl ca -in NAME.csr``).

        The certificate is recorded under ``name`` (default: the CSR's CN) as ``NAME.crt``.
        :meth:`review_csr` shows first what it will grant. ``names`` as
        :func:`kittylab.pki.grant.review` takes them: ``dns``, ``ip``, ``email`` and ``uri`` add
        names, ``drop`` (``email:ceo@acme.example``) and ``replace`` leave requested ones out.
        """
        request = csr if isinstance(csr, x509.CertificateSigningRequest) else load_csr(csr)
        name = self._check_leaf_name(name if name is not None else Subject.from_name(request.subject).cn, fix="name")
        signer = self.ca_for(ca)
        certificate = signer.sign(request, profile=self.profile(profile), days=days, now=now, **names)
        return self.record_drafts([Draft(name, profile, certificate, issuer=ca)], action="sign")[0]

    def review_csr(
        self,
        csr: x509.CertificateSigningRequest | bytes | str | os.PathLike,
        *,
        profile: str,
        name: str | None = None,
        days: int = LEAF_DAYS,
        ca: str | None = None,
        **names: Iterable[str] | bool,
    ) -> Grant:
        """What :meth:`sign_csr` would grant for ``csr``, without signing (no CA key needed), refused as
        :meth:`sign_csr` would refuse it: the CSR's signature, the record's name, the CA's name
        constraints and validity for ``days``.

        ``names``: ``dns``, ``ip``, ``email``, ``uri``, ``drop`` and ``replace``, as :meth:`sign_csr` takes them.
        """
        request = check_csr_signature(csr) if isinstance(csr, x509.CertificateSigningRequest) else load_csr(csr)
        grant = review(request, self.profile(profile), **names)
        name = self._check_leaf_name(name if name is not None else grant.subject.cn, fix="name")
        if self._store.current(name) is not None:
            raise _name_taken(name)
        check_issuance(self.chain(ca), grant.subject, grant.names, start=utcnow(), days=days)
        return grant

    def profile(self, name: str) -> Profile:
        """The profile ``name`` as this workspace limits it (:meth:`limit_profile`)."""
        base = get_profile(name)
        kinds = self._store.get_meta(f"profile_san_kinds:{base.name}")
        return base if kinds is None else replace_field(base, san_kinds=tuple(filter(None, kinds.split(","))))

    def limit_profile(self, name: str, san_kinds: Iterable[str] | None) -> Profile:
        """Let certificates of profile ``name`` carry only these kinds of names (``email``, ``dns``,
        ``ip``, ``uri``; None lifts the limit): a CSR asking for others is refused by name."""
        base = get_profile(name)
        kinds = None if san_kinds is None else tuple(dict.fromkeys(san_kinds))
        wrong = [k for k in kinds or () if k not in base.san_kinds]
        if wrong:
            raise KittylabError(f"a {base.name} certificate never carries {', '.join(wrong)} names: choose among"
                                f" {', '.join(base.san_kinds)}")
        with self._writing(), self._store.transaction():
            self._store.set_meta(f"profile_san_kinds:{base.name}", ",".join(kinds if kinds is not None else base.san_kinds))
            self._audit("profile", name=base.name, details={"san_types": list(kinds or base.san_kinds)})
        return self.profile(base.name)

    def _check_leaf_name(self, name: str, *, fix: str | None = None) -> str:
        """Return ``name`` if it can name a leaf certificate's files: a good file name that no CA uses."""
        check_name(name)
        if name in self.ca_names():
            raise KittylabError(f"{name!r} is a CA's name: give the certificate another name", fix=fix)
        return name

    def default_subject(self, name: str, *, ca: str | None = None) -> Subject:
        """``CN=name`` with the organization and place of the CA, as the article's subjects share them."""
        if not self.has_ca:
            return Subject(cn=name)
        issuer = Subject.from_name(self.ca_record(ca).certificate.subject)
        return Subject(cn=name, o=issuer.o, c=issuer.c, st=issuer.st, l=issuer.l)

    def keep_own(self, name: str, item: PrivateKey | x509.CertificateSigningRequest) -> Path:
        """Keep a party's own key (``NAME.key``, mode 0600) or request (``NAME.csr``) here, as a client does
        in steps 11-12 before the CA signs; under the lock, each file written whole or not at all."""
        is_request = isinstance(item, x509.CertificateSigningRequest)
        path = self.path(name, "csr" if is_request else "key")
        with self._writing():
            (save_csr if is_request else save_key)(item, path)
        return path

    def export_p12(self, name: str, *, password: str | None = None, legacy: bool = False,
                   out: str | os.PathLike | None = None) -> tuple[Path, str | None]:
        """Step 14: bundle ``NAME.key`` and the current certificate into ``NAME.p12`` (or the file ``out``).

        Returns the path and the generated password (None when ``password`` was given). The key is read
        under the lock, after what a crash left is settled (a staged key of a committed renewal in place).
        """
        with self._writing():
            record = self.find(name)
            key_path = self.path(record.name, "key")
            if not key_path.exists():
                raise KittylabError(f"{key_path} is missing: {_key_stays_with_its_owner(record.name)}")
            why = self.why_no_p12(record)  # a p12 of a CA, or of a certificate servers refuse, helps nobody
            if why is not None:
                raise KittylabError(why)
            generated = None if password else generate_password()
            data = export_p12(
                load_key(key_path),
                record.certificate,
                password=password or generated,
                chain=self.chain(record.issuer),
                name=record.name,
                legacy=legacy,
            )
            return write_atomically(Path(out) if out is not None else self.path(record.name, "p12"), data,
                                    secret=True), generated

    def renew(
        self,
        name: str,
        *,
        new_key: bool = False,
        days: int | None = None,
        p12: bool = False,
        p12_password: str | None = None,
        now: dt.datetime | None = None,
        ca: str | None = None,
    ) -> Issued:
        """A new certificate for ``name`` with the same names; the old one is superseded. From the same CA,
        or from ``ca`` (a rotation: the new issuing CA takes the certificate over).

        Keys do not age, certificates do: by default the new certificate is for the same key
        (``NAME.key``; when the key stays with its owner, as after ``sign``, its public key certified again);
        ``new_key`` makes a fresh key of the same kind (and removes ``NAME.p12``, which holds the old key,
        unless ``p12`` makes a new one). ``days`` defaults to the old validity.
        A CA is renewed with its own key (its parent signs again, a root signs itself): what it
        issued stays valid under the new certificate. It reads ``NAME.key`` under the lock, after what a
        crash left is settled.
        """
        with self._writing():
            return self._renew(name, new_key=new_key, days=days, p12=p12, p12_password=p12_password, now=now, ca=ca)

    def _renew(self, name: str, *, new_key: bool, days: int | None, p12: bool, p12_password: str | None,
               now: dt.datetime | None, ca: str | None) -> Issued:
        old = self._store.current(check_name(name))
        if old is None:
            raise KittylabError(f"{name!r} has no current certificate to renew (unknown or revoked): issue a new one")
        days = days or max(1, (old.not_after - old.not_before).days)
        if old.profile == "ca":
            if ca is not None:
                raise KittylabError(f"{name} is a CA: its parent renews it; make a new CA to replace it")
            return self._renew_ca(old, new_key=new_key, days=days, now=now)
        issuer = self.ca_record(ca).name if ca is not None else old.issuer
        if old.profile not in PROFILES:
            raise KittylabError(f"{name} is a {old.profile} certificate: kittylab renews server and client certificates")
        certificate = old.certificate
        key_path = self.path(name, "key")
        if new_key or key_path.exists():
            private_key = generate_key(key_kind(certificate.public_key())) if new_key else load_key(key_path)
            if private_key.public_key() != certificate.public_key() and not new_key:
                raise KittylabError(f"{key_path.name} does not belong to {name}'s certificate: renew with a new key")
            draft = draft_issue(
                self.ca_for(issuer), name, profile=old.profile, subject=Subject.from_name(certificate.subject),
                key=private_key, days=days, p12=p12, p12_password=p12_password, now=now,
                names=AltNames.of(_granted_names(certificate)),
            )
            if not new_key:
                del draft.secrets["key"]
        elif p12:
            raise KittylabError(f"{key_path.name} is not in the workspace (the key stays with its owner): a p12 needs"
                                " it; renew without a p12 (the owner bundles it), or renew with a new key", fix="renew-no-p12")
        else:
            # The key stays with its owner: certify the same public key again, with the names it was granted.
            signed = self.ca_for(issuer).certify(certificate.public_key(), Subject.from_name(certificate.subject),
                                                 _granted_names(certificate), profile=old.profile, days=days, now=now)
            draft = Draft(name, old.profile, signed)
        draft.issuer, draft.supersedes = issuer, old.serial
        issued = self.record_drafts([draft])[0]
        if new_key and not p12:
            with self._writing():  # NAME.p12 holds the old key, which belongs to no current certificate now
                _unlink([self.path(name, "p12")])
        issued.key = draft.key
        issued.p12_password = draft.p12_password
        return issued

    def _renew_ca(self, old: Record, *, new_key: bool, days: int, now: dt.datetime | None) -> Issued:
        if new_key:
            raise KittylabError(
                f"a new key for {old.name} would orphan everything it issued: make a new CA instead", fix="init"
            )
        certificate = old.certificate
        renewed = CertificateAuthority.create(
            certificate.subject,
            key=self.ca_for(old.name).key,
            days=days,
            path_length=certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length,
            name_constraints=name_constraints_of(certificate),
            issuer=None if old.issuer == old.name else self.ca_for(old.issuer),
            now=now,
        )
        with self._writing():
            issued = self.record_drafts([Draft(old.name, "ca", renewed.certificate, issuer=old.issuer,
                                               supersedes=old.serial)])[0]
            self._cas.pop(old.name, None)
            # Servers below it send it in their full chain: rewrite those with the new certificate.
            self._repair_published()
        return issued

    def expiring(
        self, within: dt.timedelta = dt.timedelta(days=EXPIRING_DAYS), *, now: dt.datetime | None = None
    ) -> list[Record]:
        """Current certificates (CAs too) that expire within ``within``, or already have: what to renew, soonest first."""
        now = now or utcnow()
        due = [
            record
            for record in self._store.records()
            if record.revoked_at is None and record.superseded_by is None and record.not_after - now <= within
        ]
        return sorted(due, key=lambda record: record.not_after)

    def record_drafts(self, drafts: list[Draft], *, action: str = "issue") -> list[Issued]:
        """Record signed certificates in one transaction and write their files (a batch is one commit).

        Every name is checked first, so a name that already holds a current certificate fails the
        whole batch before any file is written; then, per certificate, the key (0600) and the CSR,
        the store's record, and after the commit the ``.crt`` and ``.p12`` files.
        """
        issued: list[Issued] = []
        names = [draft.name for draft in drafts]
        if len(set(names)) < len(names):
            raise KittylabError("a batch names the same certificate twice: give each its own name")
        with self._writing():
            for draft in drafts:
                check_name(draft.name)
                current = self._store.current(draft.name)
                if current is not None and draft.supersedes is not None and current.serial != draft.supersedes:
                    raise KittylabError(f"{draft.name} was renewed meanwhile (by another process): it is current again")
                if current is not None and current.serial != draft.supersedes:
                    raise _name_taken(draft.name)
            # New keys, CSRs and p12 files wait under staged names until the store has committed:
            # a crash or a full disk never leaves a key that belongs to no current certificate.
            staged = self._stage(drafts)
            try:
                with self._store.transaction():
                    for draft in drafts:
                        files = {suffix: self.path(draft.name, suffix) for suffix in (*draft.secrets, *draft.public)}
                        if draft.supersedes is not None:
                            self._store.mark_superseded(draft.supersedes, by=draft.certificate.serial_number)
                        record = self._store.add(draft.name, draft.profile, draft.issuer or self.ca_name,
                                                draft.certificate)
                        self._audit("renew" if draft.supersedes is not None else action, record,
                                    details={"issuer": record.issuer, "profile": record.profile,
                                             "not_after": record.not_after.isoformat()})
                        issued.append(Issued(record=record, certificate=draft.certificate, files=files))
            except BaseException:
                _unlink(path for path, _ in staged)
                raise
            self._promote(staged)
            # The files that hold the certificate (.crt) only after the commit: a crash never
            # leaves a signed certificate on disk that the store does not know (and cannot revoke).
            _write_files([file for item in issued for file in self._certificate_files(item.record)])
            self._redeploy()
        for item in issued:
            item.files["crt"] = self.path(item.name, "crt")
        return issued

    def record_import(
        self,
        ca: Draft,
        leaves: list[Draft],
        *,
        revoked: dict[int, tuple[dt.datetime, str | None]],
        source: str,
        crl_number: int | None = None,
        passphrase: str | None = None,
    ) -> list[Record]:
        """Record an imported CA and the certificates it issued in one transaction, then write their files.

        ``leaves`` in the order to record them (revoked ones first, so that none blocks a current
        name), each with its key among its secrets where the import found it; ``revoked`` maps
        serials to (time, reason). Keys wait under staged names until the store commits, and the
        CA's never replaces a file. The CA's CRL numbering goes on from ``crl_number`` (the next one
        its old database would have used); a fresh CRL is published. ``passphrase`` (the CA key's)
        is remembered, as this object has just used it. Returns the leaves' records, in order.
        """
        with self._writing(create=True):
            staged = self._stage([ca, *leaves])
            ca_files = len(ca.secrets) + len(ca.public)
            records = []
            try:
                with self._store.transaction():
                    self._store.add(ca.name, "ca", ca.name, ca.certificate)
                    for leaf in leaves:
                        serial = leaf.certificate.serial_number
                        previous = self._store.current(leaf.name)
                        if previous is not None and serial not in revoked:
                            self._store.mark_superseded(previous.serial, by=serial)
                        self._store.add(leaf.name, leaf.profile, ca.name, leaf.certificate)
                        if serial in revoked:
                            when, reason = revoked[serial]
                            self._store.mark_revoked(serial, when=when, reason=reason)
                        records.append(self._store.by_serial(serial))
                    if crl_number:
                        self._store.set_crl_number(ca.name, crl_number - 1)
                    if not self.has_ca:
                        self._store.set_meta("ca", ca.name)
                    self._audit("import", self._store.current(ca.name), details={
                        "source": source, "certificates": len(records),
                        "keys": sum("key" in leaf.secrets for leaf in leaves)})
            except BaseException:
                _unlink(path for path, _ in staged)
                raise
            self._promote(staged[:ca_files], keep=True)
            self._promote(staged[ca_files:])
            if passphrase:
                self._known_passphrases[ca.name] = passphrase
            self.publish_crl(ca=ca.name)
            self.restore_missing_files()  # the current certificates' files; and of the names all revoked:
            current = {leaf.name for leaf in leaves if leaf.certificate.serial_number not in revoked}
            for leaf in leaves:
                if leaf.name not in current:
                    write_atomically(self.path(leaf.name, "crt"), self._store.latest(leaf.name).pem.encode())
        return records

    def _write_certificate(self, record: Record) -> Path:
        _write_files(self._certificate_files(record))
        return self.path(record.name, "crt")

    def _certificate_files(self, record: Record) -> list[tuple[Path, bytes, bool]]:
        """``NAME.crt``; below an intermediate also ``NAME.fullchain.pem`` (with the intermediates);
        for a CA also ``published/NAME.crt`` (DER)."""
        files = [(self.path(record.name, "crt"), record.pem.encode(), False), self._issued_file(record)]
        if record.profile == "ca":
            der = record.certificate.public_bytes(serialization.Encoding.DER)
            files.append((self.published_path(record.name, "crt", create=True), der, False))
        intermediates = self.lineage(record.issuer)[:-1] if record.profile != "ca" else []
        if intermediates:
            chain = record.pem + "".join(r.pem for r in intermediates)
            files.append((self.path(record.name, "fullchain.pem"), chain.encode(), False))
        return files

    def _issued_file(self, record: Record) -> tuple[Path, bytes, bool]:
        """``issued/SERIAL-NAME.pem``: the certificate kept for good, whatever becomes of ``NAME.crt``."""
        make_private_folder(self.home / ISSUED)
        return self.home / ISSUED / f"{record.serial_hex}-{check_name(record.name)}.pem", record.pem.encode(), False

    def published_path(self, name: str, suffix: str, *, create: bool = False) -> Path:
        """``published/NAME.crl`` or ``published/NAME.crt`` (DER), the folder made first if ``create``."""
        folder = self.home / PUBLISHED
        if create:
            make_private_folder(folder)
        return folder / f"{check_name(name)}.{suffix}"

    def fullchain_path(self, name: str) -> Path:
        """What a server sends as its certificate: ``NAME.fullchain.pem`` below an intermediate, else ``NAME.crt``.

        Clients trust the root only; the server must send the intermediates it was issued under.
        """
        record = self.find(name)
        below_intermediate = record.profile != "ca" and len(self.lineage(record.issuer)) > 1
        return self.path(record.name, "fullchain.pem" if below_intermediate else "crt")

    def workshops(self) -> list[Path]:
        """The workshop folders outside the workspace that :meth:`add_workshop` remembered, oldest first."""
        try:
            text = (self.home / WORKSHOPS_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [Path(line) for line in text.splitlines() if line.strip()]

    def add_workshop(self, folder: str | os.PathLike) -> None:
        """Remember a workshop folder (``HOME/workshops.txt``), under the workspace's lock as every change."""
        folder = Path(folder).resolve()
        with self._writing():
            known = self.workshops()
            if folder not in known:
                write_atomically(self.home / WORKSHOPS_FILE, "".join(f"{path}\n" for path in [*known, folder]).encode())

    def restore_missing_files(self) -> list[str]:
        """Finish what a crash left and rewrite every published file that differs from the store.

        What each command that changes something does first; returns a line per file fixed.
        """
        if self._lock.held:
            return self._recover(full=True)
        self._repaired = False
        with self._writing():
            return self._fixed

    def set_aside(self, *, keep: int = 1) -> tuple[Path, int]:
        """Move this workspace's files into ``earlier-runs/run-TIME/`` inside it and delete the runs there
        beyond the latest ``keep`` (each with its keys); return the new run's folder and how many were deleted.

        For starting over (a lesson run again). All of it under the workspace's lock, so a change in
        progress finishes first and none is cut. Everything moves together (store, keys, CRLs, staged
        and deployed files), so the run's folder is the same whole workspace (``Workspace(folder)``
        opens it); the lock file stays, so a writer that was waiting for it finds an empty workspace,
        as does every later one. Folders holding a workspace of their own stay too. This object is
        closed: open the folder again to start over.
        """
        if keep < 1:
            raise KittylabError(f"keep {keep} earlier runs: at least the one set aside now is kept")
        runs = self.home / EARLIER_RUNS
        run = runs / dt.datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")
        with self._writing(recover=False):
            self.close()
            make_private_folder(run)
            for entry in self.home.iterdir():
                if entry.name not in (EARLIER_RUNS, LOCK_FILE) and not (entry / STORE_FILE).exists():
                    entry.rename(run / entry.name)
            fsync_folder(self.home)
            older = sorted(runs.glob("run-*"))[:-keep]  # `make reset-lesson` sets lesson workspaces aside there too
            for folder in older:
                shutil.rmtree(folder)
        return run, len(older)

    # -- looking up ------------------------------------------------------------------------

    def records(self, *, include_ca: bool = True) -> list[Record]:
        """Every certificate in the store, oldest first."""
        return [r for r in self._store.records() if include_ca or r.profile != "ca"]

    def find(self, name_or_serial: str | int) -> Record:
        """The current (else latest) certificate of a name, or the certificate with a serial."""
        if isinstance(name_or_serial, int):
            record = self._store.by_serial(name_or_serial)
        elif not str(name_or_serial).isascii():  # names and serials are ASCII (SQLite cannot bind surrogates)
            record = None
        else:
            record = self._store.current(name_or_serial) or self._store.latest(name_or_serial)
            serial = parse_serial(name_or_serial) if record is None else None
            if serial is not None:
                record = self._store.by_serial(serial)
        if record is None:
            raise KittylabError(f"no certificate named or numbered {name_or_serial!r} in {self.home}")
        return record

    def current(self, name: str) -> Record | None:
        """The certificate ``name`` holds now (neither revoked nor superseded), or None."""
        return self._store.current(name)

    def latest(self, name: str) -> Record | None:
        """The newest certificate ever recorded under ``name`` (current, revoked or superseded), or None."""
        return self._store.latest(name)

    def current_of(self, profile: str, *, limit: int = -1) -> list[Record]:
        """The current certificates of a profile (``server``, ``client``...), oldest first, at most ``limit``."""
        return self._store.current_of(profile, limit=limit)

    def by_serial(self, serial: int) -> Record | None:
        """The certificate with this serial, or None if the workspace never issued it."""
        return self._store.by_serial(serial)

    def signing_cas(self) -> list[str]:
        """The CAs that may sign now (not revoked), oldest first: what a form offers to choose from."""
        return [name for name in self.ca_names() if self.ca_record(name).revoked_at is None]

    def why_no_p12(self, record: Record) -> str | None:
        """Why ``record`` cannot go into a p12 (a CA, revoked, superseded, expired, its key not here), or None
        when it can: a current leaf in date whose key kittylab holds (a CSR's key stays with its owner)."""
        if record.profile == "ca":
            return f"{record.name} is a CA: its key stays in the workspace"
        if record.revoked_at is not None:
            return (f"{record.name}'s certificate is revoked ({record.reason or 'unspecified'}), so servers refuse it:"
                    " issue a new one")
        current = self.current(record.name)
        if current is None:
            return f"this certificate of {record.name} is superseded and {record.name} has no current one: issue a new one"
        if current.serial != record.serial:
            return f"this certificate of {record.name} is superseded: export its current one"
        if record.not_after <= utcnow():
            return f"{record.name}'s certificate expired on {when(record.not_after)}, so servers refuse it: renew it"
        if not self.path(record.name, "key").exists():
            return _key_stays_with_its_owner(record.name)
        return None

    # -- revocation ------------------------------------------------------------------------

    def revoke(self, name_or_serial: str | int, *, reason: str = "unspecified") -> Record:
        """Revoke a certificate and publish a new CRL at once (servers must reload it).

        A name revokes every certificate of that name still valid: the current one (returned) and
        those it superseded (a renewal leaves them valid until they end); :meth:`revoke_many` returns them all.
        """
        return self.revoke_many([name_or_serial], reason=reason)[0]

    def _to_revoke(self, target: str | int, now: dt.datetime) -> list[Record]:
        """A serial's certificate; for a name, every unexpired, unrevoked certificate of it (current first),
        or its latest when none is left (already revoked)."""
        record = self.find(target)
        if isinstance(target, int) or record.name != target:
            return [record]
        valid = [r for r in self._store.named(record.name) if r.revoked_at is None and r.not_after > now]
        valid.sort(key=lambda r: r.superseded_by is not None)  # the current one first
        return valid or [record]

    def revoke_many(self, targets: Iterable[str | int], *, reason: str = "unspecified") -> list[Record]:
        """Revoke several certificates in one transaction, then publish one CRL listing them all.

        A target that is a name stands for every certificate of that name still valid (current and
        superseded). All or nothing: if one target is unknown, the CA itself or already revoked,
        none is revoked.
        """
        check_reason(reason)
        when = utcnow()
        targets = list(targets)
        with self._writing():
            records = list({r.serial: r for target in targets for r in self._to_revoke(target, when)}.values())
            for record in records:
                if record.profile == "ca" and record.issuer == record.name:
                    raise KittylabError(f"{record.name} is the CA itself: a CA cannot revoke its own certificate")
            done = [record for record in records if record.revoked_at is not None]
            if done:
                # Its CRL may have missed it (a crash after the commit): publishing again costs nothing.
                for issuer in dict.fromkeys(record.issuer for record in done):
                    self.publish_crl(ca=issuer)
                record = done[0]
                raise KittylabError(
                    f"{record.name} (serial {record.serial_hex}) was already revoked on {record.revoked_at:%Y-%m-%d}"
                    f" (its CRL {self.path(record.issuer, 'crl').name} is published again)"
                )
            with self._store.transaction():
                for record in records:
                    self._store.mark_revoked(record.serial, when=when, reason=reason)
                    self._audit("revoke", record, reason=reason)
                # In the same transaction: a crash never leaves a committed revocation off a CRL.
                for issuer in dict.fromkeys(record.issuer for record in records):
                    self._sign_crl(issuer)
                self._write_chain_files()
            self._redeploy()
        return [self.find(record.serial) for record in records]

    def publish_crl(
        self, *, next_update_days: float | None = None, ca: str | None = None
    ) -> x509.CertificateRevocationList:
        """Sign a new CRL of everything revoked and write it to ``CA.crl`` (PEM).

        ``next_update_days`` (remembered per CA once given; see :meth:`crl_validity` for the
        default) sets when it expires: after that, nginx and Apache refuse every client until a
        new CRL is published. ``ca`` names
        the CA whose CRL it is (default: the default issuing CA); each CA has its own.
        """
        with self._writing():
            with self._store.transaction():
                crl = self._sign_crl(ca or self.ca_name, next_update_days=next_update_days)
                self._audit("crl", name=ca or self.ca_name, details={
                    "number": crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number,
                    "revoked": len(crl), "next_update": crl.next_update_utc.isoformat()})
                self._write_chain_files()
            self._redeploy()
        return crl

    def _redeploy(self) -> None:
        """Bring the deploy folder (if one is used) up to date; :attr:`deployed` names the files that changed."""
        from .deploy import refresh  # the deploy folder is built from the workspace

        self.deployed = sorted(set(self.deployed) | set(refresh(self)))

    def _audit(self, action: str, record: Record | None = None, *, name: str | None = None, reason: str | None = None,
               details: dict | None = None) -> None:
        """Append to the audit log; called inside the change's own store transaction."""
        self._store.log(_actor(), action, name=record.name if record else name,
                       serial=record.serial_hex if record else None, subject=record.subject if record else None,
                       reason=reason, details=details)

    def audit_log(self) -> list[AuditEntry]:
        """Every change to this workspace, oldest first: time, user, host, command, what and to which certificate."""
        return self._store.audit()

    def crl_validity(self, name: str | None = None) -> tuple[float, str]:
        """How long CA ``name``'s next CRL is valid when no validity is given, and why (to be stated).

        Remembered per CA from the last validity given; else 365 days for a CA that signs CAs
        (an offline root publishes rarely), 30 for an issuing CA.
        """
        name = name or self.ca_name
        remembered = self._store.get_meta(f"crl_days:{name}")
        if remembered is not None:
            return float(remembered), f"remembered from an earlier choice of {float(remembered):g} days for {name}"
        if any(r.profile == "ca" and r.issuer == name and r.name != name for r in self._store.records()):
            return float(ROOT_CRL_DAYS), f"the default for a CA that signs CAs, {ROOT_CRL_DAYS} days"
        return float(CRL_DAYS), f"the default for an issuing CA, {CRL_DAYS} days"

    def crl_answerable(self, *, now: dt.datetime | None = None) -> list[str]:
        """The CAs whose CRLs still matter: valid and current, and the default CA or one that still
        has a valid certificate below it. A CA replaced by a new one keeps publishing until its last
        certificate expires."""
        now = now or utcnow()
        records = self._store.records()
        live = [r for r in records if r.revoked_at is None and r.superseded_by is None and r.not_after > now]
        default = self._store.get_meta("ca")
        return [r.name for r in live if r.profile == "ca" and (
            r.name == default or any(c.issuer == r.name and c.name != r.name for c in live))]

    def _sign_crl(self, name: str, *, next_update_days: float | None = None) -> x509.CertificateRevocationList:
        """Inside a store transaction: sign CA ``name``'s CRL of everything revoked and write it."""
        # Remembered per CA once given: an offline root publishes for months, its issuing CA for weeks.
        days = next_update_days if next_update_days is not None else self.crl_validity(name)[0]
        number = self._store.next_crl_number(name)
        crl = self.ca_for(name).build_crl(self._revocations(name), number=number, next_update_days=days)
        write_atomically(self.path(name, "crl"), crl.public_bytes(serialization.Encoding.PEM))
        write_atomically(self.published_path(name, "crl", create=True), crl.public_bytes(serialization.Encoding.DER))
        self._store.set_crl_number(name, number)
        if next_update_days is not None:
            self._store.set_meta(f"crl_days:{name}", repr(days))
        return crl

    def current_crl(self, ca: str | None = None) -> x509.CertificateRevocationList | None:
        """The CRL file of CA ``ca`` (default: the default issuing CA) as published, or None."""
        path = self.path(ca or self.ca_name, "crl")
        try:
            return load_crl(path) if path.exists() else None
        except KittylabError:
            return None

    def crl_warning(self, *, now: dt.datetime | None = None) -> str | None:
        """A warning if a CA's CRL is missing, expired, or expires within a week."""
        names = self.ca_names() if self.has_ca else [None]
        for name in names:
            crl = self.current_crl(name)
            warning = crl_expiry_warning(crl.next_update_utc if crl is not None else None, now=now)
            if warning:
                return warning if len(names) == 1 else f"{name}: {warning}"
        return None

    # -- checking --------------------------------------------------------------------------

    def verify(
        self,
        certificate: x509.Certificate | bytes | str | os.PathLike,
        *,
        purpose: str | None = None,
        now: dt.datetime | None = None,
    ) -> Verification:
        """Check a certificate against this workspace's CAs: the RFC 5280 path (cryptography's
        verifier), usage for ``purpose``, and every level's CRL."""
        cert = certificate if isinstance(certificate, x509.Certificate) else load_certificate(certificate)
        roots, intermediates, crls = [], [], []
        for name in self.ca_names():
            record = self.ca_record(name)
            (roots if record.issuer == record.name else intermediates).append(record.certificate)
            crls += [crl] if (crl := self.current_crl(name)) is not None else []
        return verify_certificate(cert, roots=roots, intermediates=intermediates, crls=crls, purpose=purpose, now=now)


def _holds(path: Path, data: bytes) -> bool:
    """True if ``path`` is a file holding exactly ``data``."""
    try:
        return not path.is_symlink() and path.read_bytes() == data
    except OSError:
        return False


def _unlink(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _is_name(name: str) -> bool:
    try:
        check_name(name)
    except KittylabError:
        return False
    return True


def _name_taken(name: str) -> KittylabError:
    return KittylabError(f"{name!r} already has a current certificate: revoke it first or choose another name")


def _granted_names(certificate: x509.Certificate) -> list[x509.GeneralName]:
    """The alternative names a certificate carries, as it carries them."""
    return list(extension_value(certificate, x509.SubjectAlternativeName) or [])
