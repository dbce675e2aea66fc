"""Subjects and subject alternative names: validation, OpenSSL's /CN=x form, and round trips."""

from __future__ import annotations

import ipaddress
import string

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from kittylab import KittylabError, Subject, make_sans, parse_san
from kittylab.pki.names import (
    check_dns_name,
    check_email,
    check_ip,
    check_uri,
    describe_san,
    subject_of,
)

FAST = settings(max_examples=60, deadline=None)

# Printable text without control characters or edge spaces, as a subject field may hold.
field_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"), blacklist_characters="\x7f"),
    min_size=1,
    max_size=64,
).map(str.strip).filter(lambda s: s and len(s.encode()) <= 64)  # the CN's bound counts UTF-8 bytes
label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
dns_names = st.lists(label, min_size=1, max_size=4).map(".".join)


def accepted_or_refused_in_one_line(check, text: str):
    """What ``check(text)`` returns, or None when it refused the text with a one-line KittylabError."""
    try:
        return check(text)
    except KittylabError as exc:
        assert "\n" not in str(exc)
        return None


def test_subject_fields_and_order():
    subject = Subject(cn="eager-client", o="Kitty Inc", ou="Pictures", c="DE", st="Berlin", l="Berlin",
                      email="eager@kitty.test")
    name = subject.to_name()
    assert [a.oid for a in name] == [
        NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME, NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME, NameOID.EMAIL_ADDRESS,
    ]
    assert subject.openssl() == "/C=DE/ST=Berlin/L=Berlin/O=Kitty Inc/OU=Pictures/CN=eager-client/emailAddress=eager@kitty.test"


def test_parse_openssl_form():
    assert Subject.parse("/C=DE/O=Kitty Inc/CN=kitty-ca") == Subject(cn="kitty-ca", o="Kitty Inc", c="DE")
    assert Subject.parse("/CN=a\\/b/emailAddress=x@y.test") == Subject(cn="a/b", email="x@y.test")
    assert subject_of("plain") == Subject(cn="plain")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cn": ""}, r"CN\) is empty"),
        ({"cn": "x" * 65}, "at most 64"),
        ({"cn": "a", "c": "DEU"}, "at most 2"),
        ({"cn": "a", "c": "de"}, "two capital letters"),
        ({"cn": "a", "c": "D1"}, "two capital letters"),
        ({"cn": "a\x00b"}, "control characters"),
        ({"cn": "a\nb"}, "control characters"),
        ({"cn": " a"}, "leading or trailing spaces"),
        ({"cn": "a", "email": "not-an-email"}, "bad email"),
        ({"cn": "a", "o": "o" * 65}, "at most 64"),
        ({"cn": "a", "st": "s" * 129}, "at most 128"),
        ({"cn": "\U0001F431" * 17}, "68 bytes long in UTF-8"),
        ({"cn": "a", "o": "\udcff"}, "not valid text"),
    ],
)
def test_bad_subjects_are_refused(fields, message):
    with pytest.raises(KittylabError, match=message):
        Subject(**fields)


@pytest.mark.parametrize("text", ["CN=x", "/O=only", "/XX=1/CN=a", "/CN=a/CN=b", "/CN"])
def test_bad_openssl_subjects(text):
    with pytest.raises(KittylabError):
        Subject.parse(text)


@FAST
@given(cn=field_text, o=st.one_of(st.just(""), field_text),
       c=st.one_of(st.just(""), st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)))
def test_subject_round_trips_through_x509_and_openssl_form(cn, o, c):
    subject = Subject(cn=cn, o=o, c=c)
    assert Subject.from_name(subject.to_name()) == subject
    assert Subject.parse(subject.openssl()) == subject


@FAST
@given(text=st.text(max_size=80))
def test_any_subject_text_is_accepted_or_refused_cleanly(text):
    subject = accepted_or_refused_in_one_line(lambda cn: Subject(cn=cn), text)
    if subject is not None:
        assert 1 <= len(subject.cn.encode()) <= 64
        assert subject.to_name()  # cryptography accepts what kittylab accepted


@FAST
@given(name=dns_names)
def test_valid_dns_names_round_trip(name):
    assert check_dns_name(name) == name
    [san] = make_sans(dns=[name])
    assert san == x509.DNSName(name) and parse_san(describe_san(san)) == san


@FAST
@given(name=st.text(max_size=70))
def test_any_dns_text_is_accepted_or_refused_cleanly(name):
    checked = accepted_or_refused_in_one_line(check_dns_name, name)
    if checked is not None:
        assert checked.isascii() and all(ch.isalnum() or ch in ".-" for ch in checked)


@pytest.mark.parametrize("name", ["", "-a.test", "a-.test", "a_b.test", "a..test", "x" * 64 + ".test",
                                  "ä.test", "a b.test", "host\n", "a.*.test", "*.test"])
def test_bad_dns_names(name):
    with pytest.raises(KittylabError):
        check_dns_name(name, wildcard=True)


def test_wildcards_only_where_allowed():
    assert check_dns_name("*.kitty.test", wildcard=True) == "*.kitty.test"
    with pytest.raises(KittylabError, match="wildcard"):
        check_dns_name("*.kitty.test")
    with pytest.raises(KittylabError, match="too broad"):
        check_dns_name("*.test", wildcard=True)


@FAST
@given(address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_ip_addresses_round_trip(address):
    assert check_ip(str(address)) == address
    [san] = make_sans(ip=[str(address)])
    assert san == x509.IPAddress(address)


@pytest.mark.parametrize("address", ["256.1.1.1", "1.2.3", "localhost", "::g", "", "127.0.0.1/8"])
def test_bad_ips(address):
    with pytest.raises(KittylabError, match="bad IP"):
        check_ip(address)


@pytest.mark.parametrize("address", ["a@b", "@b.test", "a@", "a@@b.test", "a..b@c.test", ".a@c.test", "a@-b.test"])
def test_bad_emails(address):
    with pytest.raises(KittylabError, match="bad email"):
        check_email(address)


def test_uris_and_parse_san_forms():
    assert check_uri("spiffe://kitty.test/eager") == "spiffe://kitty.test/eager"
    for bad in ("no-scheme", "http://a b", "http://x\n"):
        with pytest.raises(KittylabError, match="bad URI"):
            check_uri(bad)
    assert parse_san("IP:127.0.0.1") == x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    assert parse_san("email:a@b.test") == x509.RFC822Name("a@b.test")
    with pytest.raises(KittylabError, match="must start with"):
        parse_san("dirName:/CN=x")


def test_make_sans_drops_duplicates():
    assert make_sans(dns=["a.test", "a.test"], ip=["::1"]) == [
        x509.DNSName("a.test"), x509.IPAddress(ipaddress.ip_address("::1"))
    ]


@pytest.mark.parametrize("cn", ["evil\u202egpj.exe", "zero\u200bwidth", "adm\u200din", "\u200cleading", "soft\u00adhyphen",
                                "bell\x07", "\ufeffbom", "line\u2028break", "para\u2029graph", "\u3164",
                                "hangul\u3164filler", "half\uffa0width", "braille\u2800blank"])
def test_invisible_and_control_characters_are_refused(cn):
    """Issue 11: U+202E, zero-width characters and other Cc/Cf characters make a name lie about itself."""
    with pytest.raises(KittylabError, match="control characters or invisible format characters"):
        Subject(cn=cn)


@pytest.mark.parametrize("cn", ["می\u200cخواهم", "क्\u200dष"])
def test_joiners_inside_scripts_that_need_them_are_kept(cn):
    """The zero-width (non-)joiner is how Persian and Indic names are spelled (IDNA's CONTEXTJ keeps it too)."""
    assert Subject(cn=cn).cn == cn
