"""Name constraints: an intermediate CA that may only certify some names (RFC 5280, 4.2.1.10).

``example.test`` and ``kitty.test`` for an issuing CA means that even if its key leaks, it
cannot make a certificate that browsers or nginx accept for ``bank.test``. kittylab refuses to
sign such a name itself; OpenSSL and every TLS stack refuse it too (error 47, "permitted subtree
violation"), which the tests check with certificates made behind kittylab's back. Constraints bind
only the kinds of name they list: a CA permitted only DNS and email names may still certify any
IP address, so ``build_name_constraints`` then excludes every IPv4 and IPv6 address
(``0.0.0.0/0``, ``::/0``) unless told otherwise, as the CA/Browser Forum requires of technically
constrained CAs (Baseline Requirements 7.1.2.5). Without a directoryName subtree, a leaked key
still signs client certificates with any subject. RFC 5280 has no wildcard syntax:
``*.example.test`` is read as ``example.test``, which already covers every name below it.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..errors import KittylabError
from .extensions import extension_value
from .names import check_dns_name, check_email, describe_san, readable_name


#: Every IPv4 and IPv6 address: what a CA permitted only DNS and email names excludes by default.
ALL_IP = ("0.0.0.0/0", "::/0")


def build_name_constraints(
    *,
    permit_dns: Iterable[str] = (),
    permit_email: Iterable[str] = (),
    permit_ip: Iterable[str] = (),
    exclude_dns: Iterable[str] = (),
    exclude_ip: Iterable[str] | None = None,
) -> x509.NameConstraints | None:
    """The extension for the given subtrees, or None if none is given.

    DNS: ``example.test`` or ``*.example.test`` (both mean the domain and every name below it).
    Email: a domain (``kitty.test``), ``.kitty.test`` for its subdomains, or one mailbox.
    IP: a network such as ``10.0.0.0/8``.
    ``exclude_ip=None`` (the default) excludes every IP address (:data:`ALL_IP`) when DNS or email
    names are permitted and no IP network is: constraints bind only the name types they list, so
    without it such a CA could still certify any IP address. Give ``exclude_ip=()`` to leave them open.
    """
    permit_ip = list(permit_ip)
    permitted = (
        [_dns_subtree(name) for name in permit_dns]
        + [_email_subtree(value) for value in permit_email]
        + [_ip_subtree(value) for value in permit_ip]
    )
    if exclude_ip is None:
        exclude_ip = ALL_IP if permitted and not permit_ip else ()
    excluded = [_dns_subtree(name) for name in exclude_dns] + [_ip_subtree(value) for value in exclude_ip]
    if not permitted and not excluded:
        return None
    return x509.NameConstraints(permitted_subtrees=permitted or None, excluded_subtrees=excluded or None)


def describe_constraints(constraints: x509.NameConstraints) -> str:
    """``permitted: DNS:example.test, email:kitty.test; excluded: ...`` for listings and errors."""
    parts = []
    for label, subtrees in (("permitted", constraints.permitted_subtrees), ("excluded", constraints.excluded_subtrees)):
        if subtrees:
            parts.append(f"{label}: " + ", ".join(describe_san(tree) for tree in subtrees))
    return "; ".join(parts)


def name_constraints_of(certificate: x509.Certificate) -> x509.NameConstraints | None:
    return extension_value(certificate, x509.NameConstraints)


def website_scope(constraints: x509.NameConstraints | None) -> tuple[str, ...]:
    """The names a CA with ``constraints`` can vouch for as a website, or () if they leave websites open.

    A website is named by a DNS name or an IP address: both types must be bound (a permitted
    subtree, or for IP addresses every address excluded) for the scope to be limited.
    """
    if constraints is None:
        return ()
    permitted, excluded = constraints.permitted_subtrees or [], constraints.excluded_subtrees or []
    dns = [str(tree.value) for tree in permitted if isinstance(tree, x509.DNSName)]
    ips = [str(tree.value) for tree in permitted if isinstance(tree, x509.IPAddress)]
    ip_closed = bool(ips) or set(ALL_IP) <= {str(tree.value) for tree in excluded if isinstance(tree, x509.IPAddress)}
    return tuple(dns + ips) if dns and ip_closed else ()


def check_name_constraints(
    chain: Iterable[x509.Certificate], subject: x509.Name, names: Iterable[x509.GeneralName]
) -> None:
    """Refuse names that a CA of ``chain`` (the issuer and its parents) does not permit.

    The subject's email address counts as an email name, and a common name that looks like a
    host name counts as a DNS name when there is no DNS name, as OpenSSL checks them.
    """
    names = list(names)
    candidates = names + [x509.RFC822Name(str(a.value)) for a in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    if not any(isinstance(name, x509.DNSName) for name in names):
        for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            if "." in str(attribute.value) and _is_host_name(str(attribute.value)):
                candidates.append(x509.DNSName(str(attribute.value)))
    for ca in chain:
        constraints = name_constraints_of(ca)
        if constraints is None:
            continue
        for name in candidates:
            problem = _violation(constraints, name)
            if problem:
                ca_name = readable_name(ca.subject)
                raise KittylabError(
                    f"{describe_san(name)} is {problem} by the name constraints of {ca_name}"
                    f" ({describe_constraints(constraints)})"
                )


def _violation(constraints: x509.NameConstraints, name: x509.GeneralName) -> str | None:
    if any(_matches(tree, name) for tree in constraints.excluded_subtrees or ()):
        return "excluded"
    permitted = [tree for tree in constraints.permitted_subtrees or () if type(tree) is type(name)]
    if permitted and not any(_matches(tree, name) for tree in permitted):
        return "not permitted"
    return None


def _matches(tree: x509.GeneralName, name: x509.GeneralName) -> bool:
    if type(tree) is not type(name):
        return False
    if isinstance(name, x509.DNSName):
        return _in_domain(name.value.lower().rstrip("."), tree.value.lower().lstrip(".").rstrip("."))
    if isinstance(name, x509.RFC822Name):
        constraint, address = tree.value.lower(), name.value.lower()
        host = address.rpartition("@")[2]
        if "@" in constraint:
            return constraint == address
        if constraint.startswith("."):
            return host.endswith(constraint)
        return host == constraint
    if isinstance(name, x509.IPAddress):
        return isinstance(tree.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)) and name.value in tree.value
    return False


def _in_domain(host: str, domain: str) -> bool:
    return not domain or host == domain or host.endswith("." + domain)


def _is_host_name(text: str) -> bool:
    try:
        check_dns_name(text, wildcard=True)
    except KittylabError:
        return False
    return True


def _dns_subtree(name: str) -> x509.DNSName:
    domain = name.removeprefix("*.").removeprefix(".")
    check_dns_name(domain)
    return x509.DNSName(domain)


def _email_subtree(value: str) -> x509.RFC822Name:
    value = value.removeprefix("@")
    if "@" in value:
        check_email(value)
    else:
        check_dns_name(value.removeprefix("."))
    return x509.RFC822Name(value)


def _ip_subtree(value: str) -> x509.IPAddress:
    try:
        return x509.IPAddress(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise KittylabError(f"bad IP network {value!r}: give one such as 10.0.0.0/8 or 127.0.0.1/32") from None
