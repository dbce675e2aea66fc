"""Subjects (who a certificate names) and subject alternative names, validated before use."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, fields
from typing import Iterable

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..errors import KittylabError

# Field name, OID, OpenSSL short name, RFC 5280 upper bound, label for messages.
_FIELDS = (
    ("cn", NameOID.COMMON_NAME, "CN", 64, "common name (CN)"),
    ("o", NameOID.ORGANIZATION_NAME, "O", 64, "organization (O)"),
    ("ou", NameOID.ORGANIZATIONAL_UNIT_NAME, "OU", 64, "organizational unit (OU)"),
    ("c", NameOID.COUNTRY_NAME, "C", 2, "country (C)"),
    ("st", NameOID.STATE_OR_PROVINCE_NAME, "ST", 128, "state or province (ST)"),
    ("l", NameOID.LOCALITY_NAME, "L", 128, "locality (L)"),
    ("email", NameOID.EMAIL_ADDRESS, "emailAddress", 255, "email address"),
)
_BY_SHORT_NAME = {short.lower(): name for name, _, short, _, _ in _FIELDS}
_BY_SHORT_NAME.update({"email": "email", "e": "email", "s": "st", "emailaddress": "email"})
_OID_TO_FIELD = {oid: name for name, oid, _, _, _ in _FIELDS}

# \Z, not $: a $ would also match before a trailing newline and let "host\n" through.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z", re.IGNORECASE)
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}\Z")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s\x00-\x1f\x7f]+\Z")


#: The most alternative names one certificate carries (Let's Encrypt's limit): a CSR asking for
#: thousands is refused rather than signed into a certificate that clients choke on.
MAX_SANS = 100


#: Letters and symbols that show nothing (Hangul fillers, the blank Braille pattern): a name made of
#: them looks empty, and one with them looks like a name without them.
INVISIBLE_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def visible(text: str) -> str:
    """``text`` for a terminal: what would not show as itself (controls, format characters such as U+202E,
    line separators, invisible fillers) as its ``\\uXXXX`` escape, so a name someone sent cannot lie."""
    return "".join(ch if (ch.isprintable() or ch == " ") and ch not in INVISIBLE_FILLERS
                   else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}" for ch in text)


def _has_control(text: str) -> bool:
    """Control (Cc) or invisible format (Cf) characters, line and paragraph separators (Zl, Zp) and
    invisible fillers: U+202E turns ``evil\u202egpj.exe`` around, zero-width spaces make two names
    that look the same differ, U+2028 breaks a line wherever the name is shown.

    The zero-width (non-)joiner is part of how Persian, Arabic and Indic names are written: it is
    kept between two letters (or a letter and its mark) of a script other than Latin, as IDNA's
    CONTEXTJ rule keeps it, and refused elsewhere.
    """
    for index, ch in enumerate(text):
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in INVISIBLE_FILLERS:
            return True
        if unicodedata.category(ch) == "Cf" and not (ch in "\u200c\u200d" and _joins(text, index)):
            return True
    return False


def _joins(text: str, index: int) -> bool:
    """True if the joiner at ``index`` sits between two letters or marks of a script other than Latin."""
    if not 0 < index < len(text) - 1:
        return False
    before, after = text[index - 1], text[index + 1]
    return all(unicodedata.category(c)[0] in "LM" for c in (before, after)) and not (
        before.isascii() or unicodedata.name(before, "").startswith("LATIN"))


def check_san_count(names: list[x509.GeneralName], whose: str = "the request") -> list[x509.GeneralName]:
    """``names`` if there are at most :data:`MAX_SANS` of them, else a one-line error."""
    if len(names) > MAX_SANS:
        raise KittylabError(f"{whose} has {len(names)} alternative names: at most {MAX_SANS} are allowed")
    return names


def check_dns_name(name: str, *, wildcard: bool = False) -> str:
    """Return ``name`` if it is a well-formed DNS name, else raise a :class:`KittylabError`.

    A wildcard is accepted only when ``wildcard`` is true, and only as the whole leftmost label
    of a name with at least two more labels (``*.example.test``).
    """
    if not isinstance(name, str) or not name:
        raise KittylabError("empty DNS name: give a host name such as picture-server.example.test")
    if not name.isascii():
        raise KittylabError(f"DNS name {name!r} is not ASCII: use its punycode (xn--) form")
    labels = name.rstrip(".").split(".") if len(name) > 1 else [name]
    if len(name) > 253:
        raise KittylabError(f"DNS name {name[:40]!r}... is longer than 253 characters")
    for position, label in enumerate(labels):
        if label == "*" and position == 0:
            if not wildcard:
                raise KittylabError(f"wildcard DNS name {name!r} is not allowed here")
            if len(labels) < 3:
                raise KittylabError(f"wildcard {name!r} is too broad: use *.name.domain")
            continue
        if not _LABEL.match(label):
            raise KittylabError(
                f"bad DNS name {name!r}: each label is 1-63 letters, digits or hyphens, not starting or ending with a hyphen"
            )
    return name


def check_email(address: str) -> str:
    """Return ``address`` if it is a well-formed email address, else raise a :class:`KittylabError`."""
    if not isinstance(address, str) or address.count("@") != 1:
        raise KittylabError(f"bad email address {address!r}: expected name@domain")
    local, domain = address.split("@")
    if not _EMAIL_LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise KittylabError(f"bad email address {address!r}: the part before @ is not valid")
    try:
        check_dns_name(domain)
    except KittylabError:
        raise KittylabError(f"bad email address {address!r}: the domain is not a valid DNS name") from None
    if "." not in domain:
        raise KittylabError(f"bad email address {address!r}: the domain needs a dot, as in example.test")
    return address


def check_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse an IPv4 or IPv6 address, or raise a :class:`KittylabError`."""
    try:
        return ipaddress.ip_address(str(address).strip("[]"))
    except ValueError:
        raise KittylabError(f"bad IP address {address!r}: expected an address such as 127.0.0.1 or ::1") from None


def check_uri(uri: str) -> str:
    """Return ``uri`` if it has a scheme and no spaces or control characters."""
    if not isinstance(uri, str) or not uri.isascii() or not _URI.match(uri):
        raise KittylabError(f"bad URI {uri!r}: expected scheme:rest, such as https://example.test/")
    return uri


@dataclass(frozen=True)
class Subject:
    """The distinguished name a certificate or request names, checked against RFC 5280's limits.

    ``Subject(cn="eager-client", o="Kitty Inc", c="DE")``; empty fields are left out.
    """

    cn: str
    o: str = ""
    ou: str = ""
    c: str = ""
    st: str = ""
    l: str = ""  # noqa: E741 - the attribute's own short name
    email: str = ""

    def __post_init__(self) -> None:
        for name, _, _, bound, label in _FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise KittylabError(f"{label} must be text, not {type(value).__name__}")
            if value != value.strip():
                raise KittylabError(f"{label} {value!r} has leading or trailing spaces: remove them")
            if name == "cn" and not value:
                raise KittylabError("the common name (CN) is empty: every subject needs one")
            try:
                size = len(value.encode("utf-8"))
            except UnicodeEncodeError:
                raise KittylabError(f"{label} {value!r} is not valid text: it cannot be encoded as UTF-8") from None
            if len(value) > bound:
                raise KittylabError(f"{label} is {len(value)} characters long: at most {bound} are allowed")
            if name == "cn" and size > bound:  # cryptography counts the CN in UTF-8 bytes
                raise KittylabError(f"{label} is {size} bytes long in UTF-8: at most {bound} are allowed")
            if _has_control(value):
                raise KittylabError(f"{label} {value!r} contains control characters or invisible format characters: remove them")
        if self.c and not (len(self.c) == 2 and self.c.isascii() and self.c.isalpha() and self.c.isupper()):
            raise KittylabError(f"country (C) {self.c!r} must be two capital letters, such as DE or US")
        if self.email:
            check_email(self.email)

    @classmethod
    def parse(cls, text: str) -> "Subject":
        """Parse OpenSSL's ``-subj`` form, ``/C=DE/O=Kitty Inc/CN=eager-client``."""
        if not isinstance(text, str) or not text.startswith("/"):
            raise KittylabError(f"subject {text!r} must look like /CN=name/O=organization")
        values: dict[str, str] = {}
        for part in _split_subject(text[1:]):
            if not part:
                continue
            key, sep, value = part.partition("=")
            field = _BY_SHORT_NAME.get(key.strip().lower())
            if not sep or field is None:
                raise KittylabError(
                    f"subject part {part!r} is not one of CN=, O=, OU=, C=, ST=, L=, emailAddress="
                )
            if field in values:
                raise KittylabError(f"subject field {key} appears twice: give it once")
            values[field] = value
        if "cn" not in values:
            raise KittylabError(f"subject {text!r} has no CN=: every subject needs a common name")
        return cls(**values)

    @classmethod
    def from_name(cls, name: x509.Name) -> "Subject":
        """Read the fields kittylab knows from an x509 name (others are ignored)."""
        values: dict[str, str] = {}
        for attribute in name:
            field = _OID_TO_FIELD.get(attribute.oid)
            if field and field not in values:
                values[field] = str(attribute.value)
        values.setdefault("cn", "")
        if not values["cn"]:
            raise KittylabError("the name has no common name (CN)")
        return cls(**values)

    def to_name(self) -> x509.Name:
        """The x509 name, in the usual order C, ST, L, O, OU, CN, emailAddress."""
        order = ("c", "st", "l", "o", "ou", "cn", "email")
        oids = {name: oid for name, oid, _, _, _ in _FIELDS}
        return x509.Name(
            [x509.NameAttribute(oids[field], getattr(self, field)) for field in order if getattr(self, field)]
        )

    def openssl(self) -> str:
        """The same subject in OpenSSL's ``-subj`` form."""
        shorts = {name: short for name, _, short, _, _ in _FIELDS}
        order = ("c", "st", "l", "o", "ou", "cn", "email")
        return "".join(
            f"/{shorts[field]}={_escape(getattr(self, field))}"
            for field in order
            if getattr(self, field)
        )

    def replace(self, **changes: str) -> "Subject":
        """A copy with some fields changed (and validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Subject(**values)

    def __str__(self) -> str:
        return self.openssl()


#: Short names for the attributes RFC 4514 only knows by number (``1.2.840.113549.1.9.1=...``).
READABLE_ATTRIBUTES = {NameOID.EMAIL_ADDRESS: "emailAddress"}


def readable_name(name: x509.Name) -> str:
    """``CN=eager-client,O=Kitty Inc,emailAddress=a@kitty.test``: RFC 4514's string with OpenSSL's
    name for the email attribute, where RFC 4514 itself would print its raw OID."""
    return name.rfc4514_string(READABLE_ATTRIBUTES)


def subject_of(value: "Subject | str | x509.Name") -> Subject:
    """Accept a :class:`Subject`, an OpenSSL ``/CN=...`` string, a bare common name, or an x509 name."""
    if isinstance(value, Subject):
        return value
    if isinstance(value, x509.Name):
        return Subject.from_name(value)
    if isinstance(value, str):
        return Subject.parse(value) if value.startswith("/") else Subject(cn=value)
    raise KittylabError(f"a subject must be a Subject or text such as /CN=name, not {type(value).__name__}")


@dataclass(frozen=True)
class AltNames:
    """Subject alternative names as text, each kind a list (one string is taken as a list of one).

    Its fields are the keywords ``dns``, ``ip``, ``email`` and ``uri`` that :func:`make_sans`,
    :func:`~kittylab.pki.csr.make_csr`, :func:`~kittylab.pki.grant.review` and ``Workspace.issue`` take.
    """

    dns: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()
    email: tuple[str, ...] = ()
    uri: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field in fields(self):
            object.__setattr__(self, field.name, tuple(_as_list(getattr(self, field.name))))

    @classmethod
    def of(cls, names: Iterable[x509.GeneralName]) -> "AltNames":
        """The text of granted names (a certificate's), to ask for the same again."""
        sans = x509.SubjectAlternativeName(list(names))
        return cls(
            dns=sans.get_values_for_type(x509.DNSName),
            ip=[str(address) for address in sans.get_values_for_type(x509.IPAddress)],
            email=sans.get_values_for_type(x509.RFC822Name),
            uri=sans.get_values_for_type(x509.UniformResourceIdentifier),
        )

    def general_names(self, *, wildcard: bool = True) -> list[x509.GeneralName]:
        """The validated names, each once; ``wildcard=False`` refuses ``*.`` host names."""
        names: list[x509.GeneralName] = [x509.DNSName(check_dns_name(d, wildcard=wildcard)) for d in self.dns]
        names += [x509.IPAddress(check_ip(i)) for i in self.ip]
        names += [x509.RFC822Name(check_email(e)) for e in self.email]
        names += [x509.UniformResourceIdentifier(check_uri(u)) for u in self.uri]
        return unique_names(check_san_count(names, "the certificate"))


def make_sans(*, wildcard: bool = True, **names: Iterable[str]) -> list[x509.GeneralName]:
    """Build validated subject alternative names from host names, IPs, emails and URIs: the
    keywords ``dns``, ``ip``, ``email`` and ``uri`` (the fields of :class:`AltNames`)."""
    return AltNames(**names).general_names(wildcard=wildcard)


def unique_names(names: Iterable[x509.GeneralName]) -> list[x509.GeneralName]:
    """``names`` in their order, each once."""
    return list(dict.fromkeys(names))


def parse_san(text: str) -> x509.GeneralName:
    """Parse one name in OpenSSL's form: ``DNS:host``, ``IP:127.0.0.1``, ``email:a@b.test``, ``URI:...``."""
    kind, sep, value = str(text).partition(":")
    builders = {"dns": "dns", "ip": "ip", "email": "email", "uri": "uri"}
    key = builders.get(kind.strip().lower())
    if not sep or key is None:
        raise KittylabError(f"subject alternative name {text!r} must start with DNS:, IP:, email: or URI:")
    return make_sans(**{key: [value.strip()]})[0]


def describe_san(name: x509.GeneralName) -> str:
    """One SAN in OpenSSL's text form, such as ``DNS:localhost`` or ``IP:127.0.0.1``."""
    prefixes = {
        x509.DNSName: "DNS",
        x509.IPAddress: "IP",
        x509.RFC822Name: "email",
        x509.UniformResourceIdentifier: "URI",
    }
    return f"{prefixes.get(type(name), type(name).__name__)}:{name.value}"


def _escape(value: str) -> str:
    """Escape a value for OpenSSL's ``-subj``: a backslash escapes the next character."""
    return value.replace("\\", "\\\\").replace("/", "\\/")


def _split_subject(text: str) -> list[str]:
    """Split ``CN=a/O=b\\/c`` at unescaped slashes and drop the escapes, as OpenSSL's ``-subj`` does."""
    parts, current, chars = [], [], iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == "/":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _as_list(values: Iterable[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    return list(values)
