"""OpenSSL's CA database, both ways: export kittylab's store as ``index.txt``, import an old CA.

Export writes what ``openssl ca`` keeps beside its CA (``index.txt``, ``serial``,
``crlnumber``, ``newcerts/``) and an ``openssl.cnf`` that points at the workspace's CA, so
``openssl ca -gencrl`` and ``openssl ocsp -index`` work on kittylab's store, and the OpenSSL
commands kittylab shows can be run for real. Import reads an ``openssl ca`` directory or an
easy-rsa ``pki`` folder (index, certificates, keys) into a workspace, keeping serials,
statuses and revocation reasons, so a CA can move to kittylab without reissuing anything.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ..errors import KittylabError
from ..pki import openssl
from ..pki.ca import load_certificate
from ..pki.crl import OPENSSL_REASONS
from ..pki.facts import Record, is_ca, profile_of, serial_hex
from ..pki.files import read_input, write_atomically
from ..pki.keys import PrivateKey, key_to_pem, load_key
from .protocol import make_private_folder
from .workspace import Draft, Workspace, check_name

#: ``openssl ca -crl_reason`` knows only these; RFC 5280's other two are written without a reason.
_OPENSSL_CA_REASONS = {k: v for k, v in OPENSSL_REASONS.items() if k not in ("privilege-withdrawn", "aa-compromise")}
_FROM_OPENSSL_REASON = {v.lower(): k for k, v in OPENSSL_REASONS.items()}
_SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.DOMAIN_COMPONENT: "DC",
}


# -- export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """What :func:`export_openssl_db` wrote, and the OpenSSL commands that use it."""

    folder: Path
    config: Path
    index: Path
    ca_certificate: Path
    ca_key: Path
    notes: tuple[str, ...] = ()

    @property
    def extensions(self) -> Path:
        """``leaf-extensions.cnf``: the leaf sections again, with the alternative names from ``$SAN``."""
        return self.folder / "leaf-extensions.cnf"

    def sign_command(self, csr: str, out: str, *, profile: str, rsa: bool, sans: list[str] = ()) -> str:
        """``openssl ca`` signing as kittylab's profile does: the names given, nothing taken from the request."""
        section = openssl.EXTENSION_SECTIONS[profile] + ("" if rsa or profile == "client" else "_ec")
        tail = f"-extensions {section} -notext -in {csr} -out {out}"
        if not sans:
            return f"openssl ca -config {self.config} {tail}"
        return f"SAN={shlex.quote(','.join(sans))} openssl ca -config {self.config} -extfile {self.extensions} {tail}"

    def gencrl_command(self, out: str = "crl.pem") -> str:
        return f"openssl ca -config {self.config} -gencrl -out {out}"

    def ocsp_command(self, port: int = 8888) -> str:
        """OpenSSL's own responder on this database (it listens on every interface)."""
        return (
            f"openssl ocsp -index {self.index} -port {port} -CA {self.ca_certificate}"
            f" -rsigner {self.ca_certificate} -rkey {self.ca_key}"
        )


def export_openssl_db(workspace: Workspace, folder: str | os.PathLike, *, ca: str | None = None) -> Export:
    """Write the OpenSSL database of CA ``ca`` (default: the default issuing CA) into ``folder``."""
    ca_record = workspace.ca_record(ca)
    name = ca_record.name
    out = Path(folder).absolute()
    make_private_folder(out)  # never group- or world-writable, whatever the umask; never through a link
    make_private_folder(out / "newcerts")
    records = [r for r in workspace.records() if r.issuer == name and r.name != name]
    notes = []
    lines = []
    for record in records:
        lines.append(index_line(record))
        if record.reason in ("privilege-withdrawn", "aa-compromise"):
            notes.append(f"{record.name}: openssl ca does not know the reason {record.reason}; written without one")
        write_atomically(out / "newcerts" / f"{record.serial_hex}.pem", record.pem.encode())
    index = write_atomically(out / "index.txt", "".join(line + "\n" for line in lines).encode())
    write_atomically(out / "index.txt.attr", b"unique_subject = no\n")
    write_atomically(out / "serial", (serial_hex(x509.random_serial_number()) + "\n").encode())
    next_crl = workspace._store.next_crl_number(name)
    write_atomically(out / "crlnumber", (serial_hex(next_crl) + "\n").encode())
    certificate = workspace.path(name, "crt").absolute()
    key = workspace.path(name, "key").absolute()
    config = write_atomically(out / "openssl.cnf", _config(out, certificate, key, name, workspace.home).encode())
    extensions = _leaf_sections(names=True)
    write_atomically(out / "leaf-extensions.cnf", (_EXTFILE_HEAD + extensions).encode())
    return Export(out, config, index, certificate, key, tuple(notes))


def index_line(record: Record) -> str:
    """One line of ``index.txt``: status, expiry, revocation, serial, file name, subject."""
    revoked = ""
    if record.revoked_at is not None:
        revoked = openssl_time(record.revoked_at)
        reason = _OPENSSL_CA_REASONS.get(record.reason or "unspecified", "unspecified")
        if reason != "unspecified":
            revoked += "," + reason
    status = "R" if record.revoked_at is not None else "V"
    return "\t".join((status, openssl_time(record.not_after), revoked, record.serial_hex, "unknown",
                      openssl_subject(record.certificate.subject)))


def openssl_time(when: dt.datetime) -> str:
    """ASN.1 time as ``index.txt`` has it: UTCTime (YYMMDDHHMMSSZ) before 2050, else GeneralizedTime."""
    when = when.astimezone(dt.timezone.utc)
    return when.strftime("%y%m%d%H%M%SZ" if when.year < 2050 else "%Y%m%d%H%M%SZ")


def openssl_subject(name: x509.Name) -> str:
    """A name in OpenSSL's one-line form, in the certificate's order: ``/C=DE/O=Kitty Inc/CN=alice``."""
    return "".join(
        f"/{_SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string)}={str(attribute.value).replace('/', chr(92) + '/')}"
        for attribute in name
    )


_EXTFILE_HEAD = """\
# Extensions for openssl ca -extfile leaf-extensions.cnf, with the names in SAN (an
# environment variable), such as SAN=DNS:localhost,IP:127.0.0.1 or SAN=email:ada@kitty.test.

"""

#: The extension file's sections, as ``openssl ca -extfile`` reads them: kittylab's profiles, names from ``SAN``.
LEAF_SECTIONS = {"usr_cert": ("client", False), "server_cert": ("server", True), "server_cert_ec": ("server", False)}


def _section(name: str, lines: list[str]) -> str:
    body = "".join(f"{key} = {value}\n" for key, value in (line.split("=", 1) for line in lines))
    return f"[ {name} ]\n{body}subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"


def _leaf_sections(*, names: bool) -> str:
    sans = ["${ENV::SAN}"] if names else []
    return "\n".join(_section(section, openssl.leaf_extensions(profile, rsa=rsa, sans=sans))
                     for section, (profile, rsa) in LEAF_SECTIONS.items())


def _config(out: Path, certificate: Path, key: Path, name: str, home: Path) -> str:
    return f"""\
# openssl ca configuration for the CA {name}, written by kittylab export-openssl-db
# from the workspace {home.absolute()}. Changes that openssl ca makes here (new
# certificates, revocations) stay here: kittylab's store does not read them back.
#
# Sign as kittylab does: the section decides every extension, the request none of them.
#   openssl ca -config openssl.cnf -extensions usr_cert -in REQ.csr -out NAME.crt
# With alternative names (check the ones the request asks for, then give those you grant):
#   SAN=DNS:www.kitty.test,IP:127.0.0.1 openssl ca -config openssl.cnf -extfile leaf-extensions.cnf \\
#     -extensions server_cert -in REQ.csr -out NAME.crt
# server_cert is for RSA keys (keyEncipherment, for TLS 1.2's RSA key exchange);
# server_cert_ec for ECDSA and Ed25519 keys, which must not carry it (RFC 8813).
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {out}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = {certificate}
private_key = {key}
default_md = sha256
default_days = 375
default_crl_days = 30
unique_subject = no
policy = policy_any
crl_extensions = crl_ext
# Random serials (159 bits), as kittylab's; the serial file is not used.
rand_serial = yes
# Never copy a request's extensions: "copy" would take any the section does not set
# (nameConstraints, certificatePolicies, ...). Names come from SAN, see above.
copy_extensions = none
x509_extensions = usr_cert

[ policy_any ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
emailAddress = optional

{_leaf_sections(names=False)}
{_section("v3_intermediate_ca", openssl.ca_extensions(path_length=0))}
[ crl_ext ]
authorityKeyIdentifier = keyid
"""


# -- import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """One line of an ``index.txt``."""

    status: str
    revoked_at: dt.datetime | None
    reason: str | None
    serial: int
    subject: str


@dataclass
class Import:
    """What :func:`import_ca_directory` brought in."""

    ca: str
    certificates: list[Record] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        revoked = sum(1 for record in self.certificates if record.revoked_at is not None)
        return (
            f"imported the CA {self.ca} with {_count(len(self.certificates), 'certificate')}"
            f" ({revoked} revoked) and {_count(len(self.keys), 'key')}"
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def parse_index(text: str) -> list[IndexEntry]:
    """Read ``index.txt`` (tab-separated: status, expiry, revocation[,reason], serial, file, subject)."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 6 or fields[0] not in ("V", "R", "E"):
            raise KittylabError(f"index.txt line {number} is not an OpenSSL database line: {line[:60]!r}")
        revoked_at, reason = None, None
        if fields[0] == "R":
            when, _, why = fields[2].partition(",")
            revoked_at = _parse_openssl_time(when, number)
            reason = _FROM_OPENSSL_REASON.get(why.lower(), "unspecified") if why else "unspecified"
        try:
            serial = int(fields[3], 16)
        except ValueError:
            raise KittylabError(f"index.txt line {number}: the serial {fields[3]!r} is not hex") from None
        entries.append(IndexEntry(fields[0], revoked_at, reason, serial, fields[5]))
    return entries


def import_ca_directory(
    workspace: Workspace,
    source: str | os.PathLike,
    *,
    ca_name: str | None = None,
    passphrase: str | Callable[[str], str | None] | None = None,
) -> Import:
    """Bring an ``openssl ca`` directory or an easy-rsa ``pki`` folder into ``workspace``.

    Reads ``index.txt``, the certificates it lists (``newcerts/``, ``certs_by_serial/``,
    ``issued/``, ``revoked/``), the CA's certificate and key (``cacert.pem`` and
    ``private/cakey.pem``, or ``ca.crt`` and ``private/ca.key``) and the keys it finds.
    Serials, statuses, revocation times and reasons are kept; a fresh CRL is published.
    ``passphrase`` opens an encrypted CA key, which stays encrypted with it (a function: given the
    CA's name in the workspace, it returns the passphrase, as a per-CA file or variable gives it).
    All or nothing: a certificate that ``index.txt`` lists as valid or revoked without its file, or a
    key named like a certificate that is not its key, refuses the import before anything is written.
    """
    folder = _find_database(Path(source))
    entries = parse_index(read_input(folder / "index.txt", "index.txt").decode(errors="replace"))
    certificates = _certificates_in(folder)
    ca_certificate = _find_ca(certificates, entries)
    name = check_name(ca_name or _file_name(_common_name(ca_certificate), fallback="imported-ca"))
    if workspace.latest(name) is not None:
        raise KittylabError(f"{name!r} is already used in {workspace.home}: import the CA under another name", fix="ca-name")
    if callable(passphrase):
        passphrase = passphrase(name)
    ca_key = _ca_key(folder, ca_certificate, passphrase)
    result = Import(ca=name)
    by_serial = {cert.serial_number: (path, cert) for path, cert in certificates if cert.issuer == ca_certificate.subject}
    chosen, missing = [], []
    for entry in entries:
        if entry.serial not in by_serial:
            # A valid one could never be revoked, a revoked one would drop out of the CRL: all or nothing.
            if entry.status != "E":
                missing.append(f"serial {serial_hex(entry.serial)} ({entry.subject})")
            else:
                result.notes.append(f"serial {serial_hex(entry.serial)} ({entry.subject}): expired, no certificate"
                                    " file, skipped")
            continue
        path, cert = by_serial[entry.serial]
        chosen.append((entry, _leaf_name(path, cert), cert))
    if missing:
        raise KittylabError(f"index.txt lists {_count(len(missing), 'certificate')} whose file is missing"
                            f" ({', '.join(missing)}): copy it into the folder (newcerts/SERIAL.pem, or issued/)"
                            " and import again; nothing was imported")
    # Revoked ones first: each is revoked as soon as it is added, so none blocks a current name.
    chosen.sort(key=lambda item: (item[0].revoked_at is None, item[2].not_valid_before_utc))
    current = {leaf: cert for entry, leaf, cert in chosen if entry.revoked_at is None}
    if name in current:
        raise KittylabError(f"a certificate is named like the CA ({name}): import the CA under another name", fix="ca-name")
    taken = sorted({leaf for _, leaf, _ in chosen if workspace.latest(leaf) is not None})
    if taken:
        raise KittylabError(f"{', '.join(taken)} already in {workspace.home}: import into a new workspace", fix="home")
    keys = _leaf_keys(folder, current)
    secrets = {leaf: keys[_public_der(cert.public_key())] for leaf, cert in current.items() if _public_der(cert.public_key()) in keys}
    ca_draft = Draft(name, "ca", ca_certificate, secrets={"key": key_to_pem(ca_key, passphrase=passphrase)})
    leaf_drafts = []
    for _, leaf, cert in chosen:
        key = secrets.get(leaf) if current.get(leaf) is cert else None  # a key goes with its name's current certificate
        leaf_drafts.append(Draft(leaf, profile_of(cert), cert, secrets={"key": key_to_pem(key)} if key else {}))
    revoked = {cert.serial_number: (entry.revoked_at, entry.reason) for entry, _, cert in chosen if entry.revoked_at}
    result.certificates = workspace.record_import(ca_draft, leaf_drafts, revoked=revoked, source=str(folder),
                                                  crl_number=_read_hex(folder / "crlnumber"), passphrase=passphrase)
    result.keys = sorted(secrets)
    return result


def _find_database(source: Path) -> Path:
    for candidate in (source, source / "pki", source / "demoCA"):
        if (candidate / "index.txt").is_file():
            return candidate
    raise KittylabError(f"no index.txt in {source} (nor in pki/ or demoCA/): point at the openssl ca or easy-rsa pki folder")


def _certificates_in(folder: Path) -> list[tuple[Path, x509.Certificate]]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".pem", ".crt", ".cer") or not path.is_file():
            continue
        data = path.read_bytes()
        if b"BEGIN CERTIFICATE" not in data and path.suffix == ".pem":
            continue
        try:
            found.append((path, load_certificate(data)))
        except KittylabError:
            continue
    return found


def _find_ca(certificates: list[tuple[Path, x509.Certificate]], entries: list[IndexEntry]) -> x509.Certificate:
    cas = [cert for _, cert in certificates if is_ca(cert)]
    issued = {cert.issuer for _, cert in certificates if cert.serial_number in {e.serial for e in entries}}
    matching = [cert for cert in cas if cert.subject in issued] or cas
    if not matching:
        raise KittylabError("no CA certificate found (cacert.pem or ca.crt): copy it into the folder")
    return matching[0]


def _ca_key(folder: Path, certificate: x509.Certificate, passphrase: str | None) -> PrivateKey:
    wanted = _public_der(certificate.public_key())
    for path in _key_files(folder):
        data = path.read_bytes()
        try:
            key = load_key(data, passphrase=passphrase)
        except KittylabError as exc:
            if path.stem in ("cakey", "ca"):  # the CA key's usual names: say why it cannot be read
                raise KittylabError(f"{path.name}: {exc}", fix="ca-passphrase") from None
            continue
        if _public_der(key.public_key()) == wanted:
            return key
    raise KittylabError("the CA's private key was not found (private/cakey.pem or private/ca.key): kittylab needs it to sign")


def _leaf_keys(folder: Path, current: dict[str, x509.Certificate]) -> dict[bytes, PrivateKey]:
    """The unencrypted keys, by public key. A key file named like a current certificate (``private/NAME.key``)
    that is not its key is refused: importing without it would drop it without a word."""
    keys, wrong = {}, []
    for path in _key_files(folder):
        try:
            key = load_key(path)
        except KittylabError:
            continue  # encrypted leaf keys stay with their owners
        keys[_public_der(key.public_key())] = key
        certificate = current.get(_file_name(path.stem, fallback=path.stem))
        if certificate is not None and _public_der(certificate.public_key()) != _public_der(key.public_key()):
            wrong.append(path.relative_to(folder))
    if wrong:
        raise KittylabError(f"{', '.join(map(str, wrong))} {'is' if len(wrong) == 1 else 'are'} not the key of the"
                            " certificate of that name: put the right key there (or move it away) and import again;"
                            " nothing was imported")
    return keys


def _key_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.suffix in (".key", ".pem") and p.is_file()
            and b"PRIVATE KEY-----" in p.read_bytes()[:200]]


def _leaf_name(path: Path, certificate: x509.Certificate) -> str:
    """easy-rsa's entity name (``issued/NAME.crt``), else the CN, made safe as a file name."""
    if path.parent.name == "issued":
        return _file_name(path.stem, fallback=f"serial-{serial_hex(certificate.serial_number)}")
    return _file_name(_common_name(certificate), fallback=f"serial-{serial_hex(certificate.serial_number)}")


def _common_name(certificate: x509.Certificate) -> str:
    attributes = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attributes[0].value) if attributes else ""


def _file_name(text: str, *, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-._")[:64].rstrip("-._")
    return cleaned or fallback


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _read_hex(path: Path) -> int | None:
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return None


def _parse_openssl_time(text: str, number: int) -> dt.datetime:
    for pattern in ("%y%m%d%H%M%SZ", "%Y%m%d%H%M%SZ"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    raise KittylabError(f"index.txt line {number}: the time {text!r} is not YYMMDDHHMMSSZ")
