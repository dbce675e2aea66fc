"""Every OpenSSL command kittylab shows makes what kittylab made.

The commands come from where a learner reads them: the welcome notebook's table of steps, the
notebooks' side-by-side tables (every column but the article's own commands) and the command
line's "openssl equivalent" lines. Each one that writes a certificate or a request runs in a
fresh folder holding only the files it names, copied from the workspace kittylab wrote them to;
what it writes must carry the same subject, lifetime, basic constraints, key usage, extended key
usage, name constraints and alternative names as kittylab's file of that name.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from support.cli import run_cli, run_cli_steps
from support.pki import openssl as run_openssl

from kittylab import (
    KittylabError,
    Workspace,
    generate_key,
    make_csr,
    save_csr,
    save_key,
)
from kittylab.pki import openssl
from kittylab.pki.constraints import build_name_constraints
from kittylab.pki.extensions import extension_value
from kittylab.ui.tutorial import REVOCATION, STEPS, prepare

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: A command that writes a certificate or a request: the ones whose result can be compared.
MAKES = re.compile(r"-out (\S+\.(?:crt|csr))\b")


# -- what a certificate or request says ------------------------------------------------------------


def facts(path: Path) -> dict:
    """What must agree: subject, lifetime and the extensions that decide what the certificate may do."""
    data = path.read_bytes()
    if b"CERTIFICATE REQUEST" in data:
        item = x509.load_pem_x509_csr(data)
        return {"subject": item.subject.rfc4514_string(), "san": sorted(openssl.sans_of(item))}
    item = x509.load_pem_x509_certificate(data)
    basic = extension_value(item, x509.BasicConstraints)
    usage = extension_value(item, x509.KeyUsage)
    flags = {
        name for name in ("digital_signature", "key_encipherment", "key_cert_sign", "crl_sign", "content_commitment",
                          "data_encipherment", "key_agreement")
        if usage is not None and getattr(usage, name)
    }
    eku = extension_value(item, x509.ExtendedKeyUsage)
    constraints = extension_value(item, x509.NameConstraints)
    return {
        "subject": item.subject.rfc4514_string(),
        "days": (item.not_valid_after_utc - item.not_valid_before_utc).days,
        "basic": (basic.ca, basic.path_length) if basic else None,
        "key usage": sorted(flags),
        "eku": sorted(oid.dotted_string for oid in eku) if eku else None,
        "san": sorted(openssl.sans_of(item)),
        "name constraints": repr(constraints),
    }


def run_fresh(command: str, source: Path, folder: Path) -> Path:
    """Run ``command`` in ``folder``, first copying from ``source`` the files it names that are not there yet."""
    argv = shlex.split(command)
    out = argv[argv.index("-out") + 1]
    folder.mkdir(parents=True, exist_ok=True)
    for word in argv[1:]:
        if word != out and not os.path.isabs(word) and not (folder / word).exists() and (source / word).is_file():
            shutil.copy(source / word, folder / word)
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=120, input="y\ny\n",
                          env={**os.environ, "LC_ALL": "C"})
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    return folder / out


def assert_reproduce(commands: list[str], source: Path, folder: Path) -> int:
    """Run ``commands`` in order in one fresh folder (a request one makes, the next signs); compare each result.

    Returns how many results were compared with kittylab's file of the same name.
    """
    compared = 0
    for command in commands:
        made = run_fresh(command, source, folder)
        if (source / made.name).is_file():  # kittylab keeps no request for a CA it signs itself
            theirs, ours = facts(made), facts(source / made.name)
            assert theirs == ours, f"{command}\n  openssl: {theirs}\n  kittylab: {ours}"
            compared += 1
    return compared


# -- the commands, where the learner reads them ---------------------------------------------------


def shown_commands(markdown: str) -> list[str]:
    """The ``openssl`` commands a notebook shows: in ``sh`` blocks and in table cells, in order of
    appearance, except those labelled as the article's own (a block after "...as the article types
    it:", a table column headed so)."""
    commands = []
    header = None
    label = ""
    in_block = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_block = not in_block and line.strip() == "```sh"
            continue
        if in_block:
            if line.startswith("openssl ") and "article" not in label.lower():
                commands.append(line)
            continue
        if line.strip():
            label = line
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        for title, cell in zip(header, cells):
            if "article" not in title.lower():
                commands += re.findall(r"`(openssl [^`]+)`", cell)
    return commands


def notebook_commands(name: str) -> list[str]:
    notebook = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    markdown = "\n\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    return [c for c in shown_commands(markdown) if MAKES.search(c)]


def test_the_reader_skips_the_articles_commands():
    markdown = (
        "| kittylab | OpenSSL | the article |\n|---|---|---|\n| `x` | `openssl a -out a.crt` | `openssl b -out b.crt` |\n\n"
        "OpenSSL, the same certificate:\n\n```sh\nopenssl c -out c.crt\nopenssl d -out d.crt\n```\n\n"
        "OpenSSL, as the article types it:\n\n```sh\nopenssl e -out e.crt\n```\n\n```python\nopenssl f\n```"
    )
    assert shown_commands(markdown) == ["openssl a -out a.crt", "openssl c -out c.crt", "openssl d -out d.crt"]


@pytest.fixture(scope="module")
def story_home(tmp_path_factory) -> Path:
    """The story's workspace as the notebooks make it (RSA 4096 CA, RSA 2048 leaves), before the revocation."""
    home = tmp_path_factory.mktemp("story") / "kitty-workspace"
    prepare(REVOCATION, home=home).close()
    return home


def _two_cas(ws: Workspace) -> None:
    """80-two-cas: an offline root, an issuing CA with name constraints, its server and client."""
    ws.init_ca("/C=DE/O=Kitty Inc/CN=kitty-root", key="p384")
    ws.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-root", name_constraints=build_name_constraints(
        permit_dns=["localhost", "example.test"], permit_email=["kitty.test"], permit_ip=["127.0.0.0/8"]))
    ws.issue("picture-server", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"])
    ws.issue("eager-client", profile="client", key="p256", email=["eager-client@kitty.test"])


def _renewal(ws: Workspace) -> None:
    """82-renewal: a P-256 kitty-ca and eager-client for 90 days."""
    ws.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
    ws.issue("eager-client", profile="client", key="p256", email=["eager-client@kitty.test"], days=90)


#: The notebooks that make a workspace of their own (by number): its folder's name and how it is made.
OWN_WORKSPACES = {"80": ("two-cas", _two_cas), "82": ("renewal", _renewal)}


@pytest.fixture(scope="module")
def own_homes(tmp_path_factory) -> dict[str, Path]:
    """The workspace of each notebook in OWN_WORKSPACES, by number, made as that notebook makes it."""
    homes = {}
    for number, (folder, make) in OWN_WORKSPACES.items():
        homes[number] = tmp_path_factory.mktemp(folder) / folder
        with Workspace(homes[number]) as ws:
            make(ws)
    return homes


def test_every_step_of_the_table_makes_what_kittylab_made(story_home, tmp_path, require):
    require("openssl")
    commands = [step.command for step in STEPS if MAKES.search(step.command)]
    assert assert_reproduce(commands, story_home, tmp_path) == 5  # steps 2, 5, 7, 12, 13


def test_the_articles_own_commands_are_shown_where_they_differ():
    differing = {step.number for step in STEPS if step.article}
    assert differing == {2, 7, 12, 13}
    assert "-extensions v3_ca" in STEPS[1].article and "-addext keyUsage=" in STEPS[1].command
    assert "subjectAltName=email:eager-client@kitty.test" in STEPS[11].command
    assert "subjectAltName" not in STEPS[11].article


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if notebook_commands(p.name)))
def test_every_notebook_table_command_makes_what_kittylab_made(name, story_home, own_homes, tmp_path, require):
    require("openssl")
    source = own_homes.get(name[:2], story_home)
    assert assert_reproduce(notebook_commands(name), source, tmp_path) >= 1


def test_every_openssl_equivalent_of_the_command_line_makes_what_kittylab_made(tmp_path, require):
    require("openssl")
    home = tmp_path / "home"
    steps = run_cli_steps(
        ("init", "--key", "p256", "--o", "Kitty Inc", "--c", "DE"),
        ("issue", "server", "picture-server", "--key", "rsa2048", "--dns", "localhost", "--ip", "127.0.0.1"),
        ("issue", "server", "web-ec", "--key", "p256", "--dns", "pictures.kitty.test"),
        ("issue", "client", "eager-client", "--key", "p256", "--email", "eager-client@kitty.test", "--days", "30"),
        ("issue", "client", "plain-client", "--key", "ed25519"),
        ("init", "--cn", "kitty-issuing", "--intermediate-of", "kitty-ca", "--key", "p256", "--path-length", "0",
         "--permit-dns", "example.test", "--permit-email", "kitty.test", "--permit-ip", "127.0.0.0/8",
         "--exclude-dns", "secret.example.test"),
        ("issue", "server", "www", "--key", "p256", "--dns", "www.example.test"),
        home=home,
    )
    said = [line.split("openssl equivalent: ", 1)[1] for done in steps for line in done.err.splitlines()
            if "openssl equivalent: " in line]
    # a request made elsewhere, signed with `kittylab sign`
    save_key(generate_key("p256"), home / "outside.key")
    save_csr(make_csr(generate_key("p256"), "/CN=outside", dns=["outside.example.test"]), home / "outside.csr")
    done = run_cli("sign", home / "outside.csr", "--profile", "server", "--name", "outside", home=home)
    assert done.code == 0, done.err
    said += [line.split("openssl equivalent: ", 1)[1] for line in done.err.splitlines() if "openssl equivalent: " in line]
    # a second root with name constraints, as a workshop's CA
    done = run_cli("init", "--cn", "workshop-ca", "--another-root", "--key", "p256", "--permit-dns", "workshop.test",
                   "--permit-email", "kitty.test", home=home)
    assert done.code == 0, done.err
    said += [line.split("openssl equivalent: ", 1)[1] for line in done.err.splitlines() if "openssl equivalent: " in line]
    commands = [c for c in said if MAKES.search(c)]
    assert len(commands) == 15, commands
    assert assert_reproduce(commands, home, tmp_path / "fresh") == 14  # all but kitty-issuing's request


def test_a_missing_extension_is_seen(story_home, tmp_path, require):
    """The comparison can fail: the article's step 2 (the stock v3_ca) sets no key usage."""
    require("openssl")
    made = run_fresh(STEPS[1].article, story_home, tmp_path / "article")
    assert facts(made)["key usage"] == [] != facts(story_home / "kitty-ca.crt")["key usage"]


# -- the strings ---------------------------------------------------------------------------------


def test_strings():
    assert openssl.genkey("rsa2048", "k.key") == "openssl genrsa -out k.key 2048"
    assert openssl.genkey("rsa4096", "ca.key", passphrase=True) == "openssl genrsa -aes256 -out ca.key 4096"
    assert "ec_paramgen_curve:P-384" in openssl.genkey("p384", "k.key")
    assert openssl.genkey("ed25519", "k.key") == "openssl genpkey -algorithm ed25519 -out k.key"
    assert openssl.self_signed_ca("ca.key", "ca.crt", "/O=Kitty Inc/CN=kitty-ca") == (
        "openssl req -x509 -new -key ca.key -sha256 -days 7300 -subj '/O=Kitty Inc/CN=kitty-ca'"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,digitalSignature,keyCertSign,cRLSign"
        " -out ca.crt")
    assert openssl.csr("s.key", "s.csr", "picture-server", sans=["DNS:localhost", "IP:127.0.0.1"]).endswith(
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -out s.csr")
    server = openssl.sign("s.csr", "s.crt", profile="server", ca_cert="ca.crt", ca_key="ca.key", rsa=False,
                          sans=["DNS:localhost"])
    assert "-copy_extensions none" in server and "keyUsage=critical,digitalSignature " in server
    assert "keyEncipherment" in openssl.sign("s.csr", "s.crt", profile="server", ca_cert="c", ca_key="k", rsa=True)
    assert "extendedKeyUsage=clientAuth" in openssl.sign("c.csr", "c.crt", profile="client", ca_cert="c", ca_key="k",
                                                         rsa=True)
    assert "-extensions server_cert -days 375" in openssl.article_sign("s.csr", "s.crt", profile="server")
    assert openssl.pkcs12("c.key", "c.crt", "ca.crt", "c.p12", name="eager-client", legacy=True).startswith(
        "openssl pkcs12 -export -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1 ")
    assert openssl.revoke("c.crt", reason="key-compromise").endswith("-crl_reason keyCompromise")
    assert "-gencrl -crldays 7" in openssl.gencrl("ca.crl", days=7)
    assert openssl.verify("c.crt", "ca.crt", purpose="client", crl="ca.crl") == (
        "openssl verify -CAfile ca.crt -crl_check -CRLfile ca.crl -purpose sslclient c.crt")
    assert openssl.show("my file.crt") == "openssl x509 -in 'my file.crt' -noout -text"


def test_refusals():
    with pytest.raises(KittylabError):
        openssl.genkey("dsa", "k")
    with pytest.raises(KittylabError):
        openssl.sign("a", "b", profile="ca", ca_cert="c", ca_key="k", rsa=True)
    with pytest.raises(KittylabError):
        openssl.article_sign("a", "b", profile="ca")
    with pytest.raises(KittylabError):
        openssl.revoke("a", reason="lost")


def test_the_legacy_p12_command_writes_kittylabs_flavour(story, tmp_path, require):
    """3DES for key and certificates, a SHA-1 MAC: what the macOS keychain imports (-legacy alone is RC2-40)."""
    require("openssl")
    workspace, _, _ = story
    command = openssl.pkcs12("eager-client.key", "eager-client.crt", "kitty-ca.crt", "legacy.p12",
                             name="eager-client", legacy=True) + " -passout pass:kitty-pass"
    assert subprocess.run(shlex.split(command), cwd=workspace.home, capture_output=True).returncode == 0
    info = run_openssl("pkcs12", "-info", "-noout", "-in", workspace.home / "legacy.p12", "-passin", "pass:kitty-pass")
    text = (info.stdout + info.stderr).decode()
    assert "MAC: sha1" in text and text.count("pbeWithSHA1And3-KeyTripleDES-CBC") == 2, text


def test_the_runnable_commands_run_and_agree_with_kittylab(story, require):
    """genkey, req -new, verify and x509 -text run as shown, on the files kittylab wrote."""
    require("openssl")
    workspace, server, client = story
    home = workspace.home

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(shlex.split(command), cwd=home, capture_output=True, text=True, timeout=60)

    assert run(openssl.genkey("p256", "extra.key")).returncode == 0
    assert run(openssl.csr("extra.key", "extra.csr", "/O=Kitty Inc/CN=extra", sans=["DNS:extra.test"])).returncode == 0
    assert workspace.sign_csr(home / "extra.csr", profile="server").name == "extra"
    ok = run(openssl.verify("eager-client.crt", "kitty-ca.crt", purpose="client", crl="kitty-ca.crl"))
    assert ok.returncode == 0 and "eager-client.crt: OK" in ok.stdout
    assert "DNS:localhost, IP Address:127.0.0.1" in run(openssl.show("picture-server.crt")).stdout


def test_the_revocation_commands_run_on_the_exported_database_and_agree_with_kittylab(story, tmp_path, require):
    """06's and the command line's `openssl ca -revoke` and `-gencrl`, in the folder export-openssl-db wrote."""
    require("openssl")
    from kittylab import load_crl
    from kittylab.workspace.openssldb import export_openssl_db

    workspace, _, client = story
    export = export_openssl_db(workspace, tmp_path / "db")
    shutil.copy(client.files["crt"], export.folder / "eager-client.crt")
    for command in (openssl.revoke("eager-client.crt", reason="key-compromise"), openssl.gencrl("kitty-ca.crl")):
        done = subprocess.run(shlex.split(command), cwd=export.folder, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    workspace.revoke("eager-client", reason="key-compromise")

    def entries(crl):
        return {(entry.serial_number, entry.extensions.get_extension_for_class(x509.CRLReason).value.reason)
                for entry in crl}

    theirs, ours = load_crl(export.folder / "kitty-ca.crl"), workspace.current_crl()
    assert entries(theirs) == entries(ours) == {(client.record.serial, x509.ReasonFlags.key_compromise)}
    assert theirs.is_signature_valid(workspace.ca.certificate.public_key())
