"""Cards: every object kittylab returns shows its facts, its status in colour, and never a private key."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from support.system import PASSWORD

from kittylab import KittylabError, Subject, Workspace, generate_key, load_certificate, load_p12, make_csr
from kittylab.pki.facts import summarize, when
from kittylab.render.display import (
    STATUS_COLOURS,
    Card,
    card,
    certificate_card,
    crl_card,
    record_card,
    to_html,
    to_text,
)
from kittylab.net.client import Response
from kittylab.render.handout import HandoutPreview
from kittylab.ui.tutorial import OpenSSLRun, Result, Table
from kittylab.ui.widgets import p12_links
from kittylab.workshop.roster import Participant, Roster

LATER = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)


def sanitize(text: str) -> str:
    """What the notebooks' nbval sanitize file replaces: dates, fingerprints, serials."""
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "DATE", text)
    text = re.sub(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", "FINGERPRINT", text)
    return re.sub(r"\b[0-9A-F]{16,}\b", "SERIAL", text)


def card_text(thing, first_line: str, *lines: str) -> str:
    """The plain text of ``thing``'s card, which must start with ``first_line`` and show each of ``lines``."""
    text = to_text(thing)
    assert text.startswith(first_line), text
    assert [line for line in lines if line not in text] == [], text
    return text


def test_certificate_card_shows_what_a_person_checks(story):
    _, server, _ = story
    fingerprint = server.certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    card_text(
        server.certificate,
        "Certificate  [in date, unchecked]\n",
        "Subject:            CN=picture-server,O=Kitty Inc,C=DE",
        "Issuer:             CN=kitty-ca,O=Kitty Inc,C=DE",
        "(0% of 375 days used)",
        "Key:                ECDSA P-256",
        "Key usage:          digitalSignature",
        "Extended key usage: serverAuth",
        "Alternative names:  DNS:localhost, IP:127.0.0.1",
        f"Serial:             {server.record.serial_hex}",
        f"SHA-256:            {fingerprint}",
    )
    page = to_html(server.certificate)
    assert 'class="kl-card kl-card-certificate"' in page
    assert 'class="kl-status kl-status-in-date-unchecked"' in page and STATUS_COLOURS["valid"] not in page
    assert 'class="kl-validity-bar"' in page and "width:0%" in page
    assert fingerprint in page
    assert to_text(server.record).startswith("Certificate picture-server  [valid]\n")


def test_a_card_from_a_file_does_not_say_more_than_the_file_knows(story, tmp_path):
    """A revoked certificate read from its file: no workspace says it is revoked, so the card does not say
    valid (nor expiring): its dates hold, revocation unchecked; ``show`` says the same. A root has no one
    to revoke it: its dates say all."""
    workspace, _, client = story
    workspace.revoke("eager-client", reason="key-compromise")
    (tmp_path / "bad.crt").write_bytes(client.certificate.public_bytes(serialization.Encoding.PEM))
    from_file = load_certificate(tmp_path / "bad.crt")
    shown = certificate_card(from_file)
    assert shown.status == "in date, unchecked" and "valid" not in shown.text().splitlines()[0]
    assert re.search(r"Revocation: +not checked", shown.text()) and STATUS_COLOURS["valid"] not in shown.html()
    assert certificate_card(from_file, now=from_file.not_valid_after_utc - dt.timedelta(days=3)).status == (
        "expiring, unchecked")
    assert summarize(from_file)["status"] == shown.status
    assert record_card(workspace.find("eager-client")).status == summarize(from_file, workspace.find("eager-client"))["status"] == "revoked"
    root = workspace.ca_record().certificate
    assert certificate_card(root).status == summarize(root)["status"] == "valid"


def test_the_validity_bar_shows_how_much_is_used(story):
    _, server, _ = story
    halfway = server.certificate.not_valid_before_utc + dt.timedelta(days=188)
    shown = certificate_card(server.certificate, now=halfway)
    assert "(50% of 375 days used)" in shown.text()
    assert "width:50%" in shown.html()


@pytest.mark.parametrize(
    ("days", "now", "status"),
    [(10, None, "expiring"), (375, None, "valid"), (375, LATER, "expired"), (40, None, "valid")],
)
def test_status_by_dates_and_store(workspace, days, now, status):
    issued = workspace.issue("dated", profile="client", key="p256", days=days)
    bare = {"valid": "in date, unchecked", "expiring": "expiring, unchecked"}.get(status, status)
    for shown, said in ((certificate_card(issued.certificate, now=now), bare), (record_card(issued.record, now=now), status)):
        assert shown.status == said
        assert f"[{said}]" in shown.text().splitlines()[0]
        assert f"kl-status-{said.replace(',', '').replace(' ', '-')}" in shown.html()
        assert (STATUS_COLOURS.get(said) or "#546e7a") in shown.html()


def test_a_revoked_record_is_red_with_reason_and_date(story):
    workspace, _, client = story
    record = workspace.revoke("eager-client", reason="key-compromise")
    text = card_text(record, "Certificate eager-client  [revoked]")
    assert re.search(r"Revoked: +\d{4}-\d\d-\d\d \d\d:\d\d UTC \(key-compromise\)", text)
    page = to_html(record)
    assert "kl-status-revoked" in page and STATUS_COLOURS["revoked"] in page
    # The bare certificate cannot know it was revoked: only the store (or the CRL) says so; it does not say valid.
    assert to_text(client.certificate).startswith("Certificate  [in date, unchecked]")


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "ed25519"])
def test_a_private_key_is_never_shown(kind):
    key = generate_key(kind)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    body = "".join(pem.decode().splitlines()[1:-1])
    secrets = [body[:40], body[-40:]]
    numbers = getattr(key, "private_numbers", None)
    if numbers is not None:
        private_value = getattr(numbers(), "d", None) or numbers().private_value
        secrets += [str(private_value), f"{private_value:X}", f"{private_value:x}"]
    else:
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        secrets += [raw.hex(), raw.hex(":").upper()]
    for shown in (to_text(key), to_html(key)):
        assert "Private key (not shown)" in shown
        assert "PRIVATE KEY" not in shown
        for secret in secrets:
            assert secret not in shown
    # The fingerprint is the public key's: the same as the public key's own card.
    public_text = to_text(key.public_key())
    assert public_text.startswith("Public key")
    assert public_text.splitlines()[1:] == to_text(key).splitlines()[1:]


def test_csr_card(workspace):
    key = generate_key("p256")
    csr = make_csr(key, Subject(cn="picture-server", o="Kitty Inc"), dns=["localhost"], ip=["127.0.0.1"])
    card_text(csr, "Certificate signing request  [valid]", "Subject:           CN=picture-server,O=Kitty Inc",
              "DNS:localhost, IP:127.0.0.1", "ECDSA P-256")


def test_crl_card_lists_revocations_and_next_update(story):
    workspace, _, client = story
    workspace.revoke("eager-client", reason="superseded")
    crl = workspace.current_crl()
    text = card_text(crl, "Certificate revocation list  [valid]",
                     f"Next update: {crl.next_update_utc:%Y-%m-%d %H:%M} UTC", "Revoked:     1 certificate")
    assert re.search(rf"{client.record.serial_hex} on .* UTC \(superseded\)", text)
    assert crl_card(crl, now=crl.next_update_utc - dt.timedelta(days=2)).status == "expiring"
    assert crl_card(crl, now=crl.next_update_utc + dt.timedelta(seconds=1)).status == "expired"


def test_p12_card_shows_the_bundle_without_its_key(story):
    _, _, client = story
    contents = load_p12(client.files["p12"], password=PASSWORD)
    card_text(
        contents,
        "PKCS#12 bundle",
        "Friendly name: eager-client",
        "Private key:   ECDSA P-256 (private key, not shown)",
        "Chain:         CN=kitty-ca,O=Kitty Inc,C=DE",
        "    Subject:            CN=eager-client,O=Kitty Inc,C=DE",
    )
    assert to_html(contents).count('class="kl-card ') == 2


def test_issued_card_names_files_and_hides_the_generated_password(workspace):
    issued = workspace.issue("eager-client", profile="client", key="p256", p12=True)
    assert issued.p12_password
    for shown in (to_text(issued), to_html(issued)):
        assert "eager-client.crt, eager-client.csr, eager-client.key, eager-client.p12" in shown
        assert issued.p12_password not in shown
        assert "PRIVATE KEY" not in shown


def test_verification_card(story):
    workspace, server, client = story
    assert to_text(workspace.verify(server.certificate, purpose="server")).startswith("Verification  [ok]")
    workspace.revoke("eager-client")
    failed = to_text(workspace.verify(client.certificate, purpose="client"))
    assert failed.startswith("Verification  [failed]")
    assert re.search(r"revocation: +FAIL: revoked on", failed)


def test_hostile_subjects_stay_text(workspace):
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    issued = workspace.issue("hostile", profile="client", key="p256", subject=Subject(cn=hostile))
    page = to_html(issued)
    assert "<script>" not in page and "<img" not in page
    # RFC 4514 escapes < and > with a backslash; the HTML escapes what is left.
    assert "&lt;script\\&gt;alert(2)" in page


def test_html_pieces_escape_every_value_as_html_escape_does(tmp_path):
    """Cards, badges, download links, the tutorial's tables, side-by-sides and verdicts, a roster, a
    server's answer and a handout's preview escape what they show, quotes spelled as :func:`html.escape`
    spells them: the notebooks' stored outputs, which nbval compares byte for byte, were written so."""
    hostile = """<i>"O'Brien"&co<i>"""
    path = tmp_path / hostile
    path.write_bytes(b"data")
    (tmp_path / "handout.html").write_text(hostile, encoding="utf-8")
    pieces = {
        "card": Card("certificate", hostile, hostile, [("Subject", hostile), ("Revoked", [hostile, "more"])]).html(),
        "download link and p12 password": p12_links(path, hostile),
        "table": Table((hostile,), [(hostile,)], code_columns=(0,))._repr_html_(),
        "side by side": OpenSSLRun(f"openssl {hostile}", 1, hostile, ValueError(hostile))._repr_html_(),
        "hint": Result(False, hostile, hostile)._repr_html_(),
        "roster": Roster(path, [Participant(2, "x", hostile, "x@kitty.test", hostile)], [(3, hostile)])._repr_html_(),
        "server's text": Response("u", 200, "OK", {}, hostile.encode(), hostile, "TLSv1.3")._repr_html_(),
        "other server's page": Response("u", 200, "OK", {"content-type": "text/html"}, (hostile * 2).encode(), "s",
                                        "TLSv1.3")._repr_html_(),
        "handout preview": HandoutPreview(tmp_path / "handout.html", hostile)._repr_html_(),
    }
    for what, page in pieces.items():
        assert "<i>" not in page and html.escape(hostile) in page, what
        assert page.count(html.escape(hostile)) >= 2, what


def test_plain_text_is_stable_apart_from_serials_dates_and_fingerprints(tmp_path):
    texts = []
    for run in ("one", "two"):
        with Workspace(tmp_path / run) as workspace:
            workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
            issued = workspace.issue("picture-server", profile="server", key="p256", dns=["localhost"])
            texts.append([sanitize(to_text(thing)) for thing in (issued, issued.record, workspace.current_crl())])
    assert texts[0] == texts[1]
    assert "SERIAL" in texts[0][0] and "FINGERPRINT" in texts[0][0] and "DATE" in texts[0][0]


def test_card_of_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="no card for str"):
        card("not a certificate")


IPYTHON_SCRIPT = r"""
import json, sys, tempfile
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import kittylab
from kittylab import Workspace, generate_key
ws = Workspace(tempfile.mkdtemp())
ws.init_ca(key="p256")
issued = ws.issue("eager-client", profile="client", key="rsa2048")
out = {}
for label, thing in [("cert", issued.certificate), ("key", issued.key), ("ed", generate_key("ed25519").public_key()),
                     ("record", issued.record), ("crl", ws.current_crl())]:
    data, _ = shell.display_formatter.format(thing)
    out[label] = {"html": data.get("text/html", ""), "plain": data["text/plain"]}
json.dump(out, sys.stdout)
"""


def test_cards_are_registered_when_kittylab_is_imported_inside_ipython():
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", IPYTHON_SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    shown = json.loads(result.stdout)
    assert 'class="kl-card kl-card-certificate"' in shown["cert"]["html"]
    assert shown["cert"]["plain"].startswith("Certificate  [in date, unchecked]")
    assert shown["key"]["plain"].startswith("Private key (not shown)") and "RSA 2048" in shown["key"]["plain"]
    assert "PRIVATE KEY" not in shown["key"]["html"] + shown["key"]["plain"]
    assert shown["ed"]["plain"].startswith("Public key") and "Ed25519" in shown["ed"]["plain"]
    assert shown["record"]["plain"].startswith("Certificate eager-client  [valid]")
    assert "kl-card-crl" in shown["crl"]["html"]


def test_importing_kittylab_outside_ipython_does_not_load_it():
    code = "import sys, kittylab; print('IPython' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_show_list_and_card_agree_on_an_expiring_certificate(workspace):
    """One source of status: the card, `kittylab show --json` and `list --json` all say "expiring"."""
    import json

    from support.cli import run_cli

    workspace.issue("short-lived", profile="client", key="p256", days=10)
    record = workspace.find("short-lived")
    shown = json.loads(run_cli("show", "short-lived", "--json", home=workspace.home).out)
    listed = {r["name"]: r for r in json.loads(run_cli("list", "--json", home=workspace.home).out)["certificates"]}
    assert record_card(record).status == record.status() == shown["status"] == listed["short-lived"]["status"] == "expiring"


def test_show_and_list_carry_the_same_facts_under_the_same_names(story, tmp_path):
    """``is_ca`` is always a bool, ``issuer_dn`` always the distinguished name, ``issuer_ca`` the workspace's
    CA name (None for a file no workspace knows); the older ``issuer`` and ``ca`` keep their meanings, and
    the text of ``show`` gives every moment as ``facts.when`` does (JSON keeps ISO 8601)."""
    import json

    from support.cli import run_cli

    workspace, _, client = story
    home = workspace.home
    ca_dn = "CN=kitty-ca,O=Kitty Inc,C=DE"
    listed = {r["name"]: r for r in json.loads(run_cli("list", "--json", home=home).out)["certificates"]}
    (tmp_path / "client.crt").write_bytes(client.certificate.public_bytes(serialization.Encoding.PEM))
    bare = json.loads(run_cli("show", tmp_path / "client.crt", "--json", home=tmp_path / "none").out)
    for name, is_ca in (("kitty-ca", True), ("eager-client", False)):
        shown = json.loads(run_cli("show", name, "--json", home=home).out)
        for facts in (shown, listed[name]):
            assert (facts["is_ca"], facts["issuer_dn"], facts["issuer_ca"]) == (is_ca, ca_dn, "kitty-ca")
        assert (shown["issuer"], shown["ca"], listed[name]["issuer"]) == (ca_dn, "kitty-ca", "kitty-ca")
    assert (bare["is_ca"], bare["issuer_dn"], bare["issuer_ca"], bare["issuer"], bare["ca"]) == (
        False, ca_dn, None, ca_dn, False)
    workspace.revoke("eager-client")
    text = run_cli("show", "eager-client", home=home).out
    record = workspace.latest("eager-client")
    for label, moment in (("Not before", record.not_before), ("Not after", record.not_after),
                          ("Revoked at", record.revoked_at)):
        assert re.search(rf"^{label}: +{re.escape(when(moment))}$", text, re.M), text
    assert not re.search(r"\d{4}-\d\d-\d\dT", text)


def test_an_email_in_the_subject_is_named_as_openssl_names_it():
    """Seen in 04: the CSR's card showed 1.2.840.113549.1.9.1=... for the form's Email field."""
    from kittylab import Subject, generate_key, make_csr
    from kittylab.render.display import card

    shown = card(make_csr(generate_key("p256"), Subject(cn="my-laptop", email="me@kitty.test"))).text()
    assert "emailAddress=me@kitty.test,CN=my-laptop" in shown and "1.2.840" not in shown


def test_a_refusal_in_a_notebook_cell_is_one_line(capsys):
    """Re-running 04's signing cell refused in a traceback; inside IPython it is one line now (a real
    kernel: tests/ui/test_client_own_values.py)."""
    from IPython.core.interactiveshell import InteractiveShell

    from kittylab.render.display import register_formatters

    shell = InteractiveShell.instance()
    try:
        register_formatters(shell)
        capsys.readouterr()
        result = shell.run_cell("from kittylab import KittylabError\nraise KittylabError('eager-client already has a current certificate')")
        assert not result.success and isinstance(result.error_in_exec, KittylabError)
        assert capsys.readouterr().out == "\x1b[31mKittylabError: eager-client already has a current certificate\x1b[0m\n"
        assert not shell.run_cell("1 / 0").success
        assert capsys.readouterr().out.count("\n") > 1  # other errors keep their traceback
    finally:
        InteractiveShell.clear_instance()
