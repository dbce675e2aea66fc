"""OpenSSL's CA database: kittylab's store exported for ``openssl ca`` and ``openssl ocsp``, and
real ``openssl ca`` and easy-rsa folders imported into a workspace."""

from __future__ import annotations

import datetime as dt
import os
import subprocess

import pytest
from cryptography import x509
from support.pki import easy_rsa, openssl

from kittylab import KittylabError, Workspace, generate_key, load_crl
from kittylab.pki.csr import save_csr
from kittylab.pki.keys import key_to_pem
from kittylab.workspace.openssldb import (
    export_openssl_db,
    import_ca_directory,
    index_line,
    openssl_time,
    parse_index,
)

#: An old CA's openssl.cnf as its admin wrote it (serials counted up from the serial file, policy_any, v3_ca for
#: the CA itself): the import test's folder is made with it, on purpose not with the configuration kittylab
#: exports (openssldb's _config: random serials, made for a CA kittylab already holds).
OPENSSL_CA_CONFIG = """\
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/cacert.pem
private_key = $dir/private/cakey.pem
default_md = sha256
default_days = 375
default_crl_days = 30
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
organizationName = optional
[ usr_cert ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


@pytest.fixture
def exported(story, tmp_path):
    workspace, server, client = story
    workspace.revoke("eager-client", reason="key-compromise")
    return workspace, server, client, export_openssl_db(workspace, tmp_path / "exported")


def test_index_txt_has_openssls_format(exported):
    workspace, server, client, export = exported
    lines = export.index.read_text().splitlines()
    assert lines == [index_line(workspace.find(server.record.serial)), index_line(workspace.find(client.record.serial))]
    status, expires, revoked, serial, filename, subject = lines[1].split("\t")
    record = workspace.find(client.record.serial)
    assert (status, serial, filename) == ("R", client.record.serial_hex, "unknown")
    assert expires == record.not_after.strftime("%y%m%d%H%M%SZ")
    assert revoked == record.revoked_at.strftime("%y%m%d%H%M%SZ") + ",keyCompromise"
    assert subject == "/C=DE/O=Kitty Inc/CN=eager-client"
    assert lines[0].split("\t")[:3] == ["V", server.record.not_after.strftime("%y%m%d%H%M%SZ"), ""]
    assert (export.folder / "newcerts" / f"{server.record.serial_hex}.pem").read_text() == server.record.pem
    assert int((export.folder / "crlnumber").read_text(), 16) == 3  # kittylab published CRLs 1 and 2
    assert len((export.folder / "serial").read_text().strip()) >= 16
    assert openssl_time(dt.datetime(2051, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)) == "20510102030405Z"
    assert parse_index(export.index.read_text())[1].reason == "key-compromise"


def test_openssl_ca_gencrl_works_on_the_export(exported, tmp_path):
    workspace, _, client, export = exported
    out = tmp_path / "openssl.crl"
    done = openssl("ca", "-config", export.config, "-gencrl", "-out", out)
    assert done.returncode == 0, done.stderr
    crl = load_crl(out)
    assert crl.is_signature_valid(workspace.ca.certificate.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(client.record.serial)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert len(crl) == 1
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    check = openssl("verify", "-crl_check", "-CAfile", workspace.ca_certificate_path, "-CRLfile", out,
                    client.files["crt"])
    assert check.returncode != 0 and b"certificate revoked" in check.stderr


def test_openssl_ca_signs_with_the_exported_config(exported, tmp_path):
    workspace, _, _, export = exported
    key, csr, crt = tmp_path / "new.key", tmp_path / "new.csr", tmp_path / "new.crt"
    assert openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                   "-subj", "/O=Kitty Inc/CN=openssl-client", "-out", csr).returncode == 0
    done = openssl("ca", "-batch", "-config", export.config, "-extensions", "usr_cert", "-days", "30", "-notext",
                   "-in", csr, "-out", crt)
    assert done.returncode == 0, done.stderr
    verified = openssl("verify", "-CAfile", workspace.ca_certificate_path, "-purpose", "sslclient", crt)
    assert verified.returncode == 0, verified.stderr
    assert export.index.read_text().count("\n") == 3


def test_openssl_ocsp_index_answers_from_the_export(exported, tmp_path):
    workspace, server, client, export = exported
    ca = workspace.ca_certificate_path
    request, response = tmp_path / "request.der", tmp_path / "response.der"
    targets = ["-cert", server.files["crt"], "-cert", client.files["crt"], "-serial", "0x0BADC0DE"]
    assert openssl("ocsp", "-issuer", ca, *targets, "-no_nonce", "-reqout", request).returncode == 0
    answered = openssl("ocsp", "-index", export.index, "-CA", ca, "-rsigner", ca, "-rkey", workspace.path("kitty-ca", "key"),
                       "-reqin", request, "-respout", response)
    assert answered.returncode == 0, answered.stderr
    read = openssl("ocsp", "-respin", response, "-issuer", ca, *targets, "-no_nonce", "-CAfile", ca)
    text = (read.stdout + read.stderr).decode()
    assert read.returncode == 0 and "Response verify OK" in text, text
    assert f"{server.files['crt']}: good" in text
    assert f"{client.files['crt']}: revoked" in text
    assert "0x0BADC0DE: unknown" in text


def test_a_real_openssl_ca_directory_is_imported(tmp_path):
    folder = tmp_path / "demoCA"
    (folder / "newcerts").mkdir(parents=True)
    (folder / "private").mkdir()
    (folder / "index.txt").write_text("")
    (folder / "serial").write_text("1000\n")
    (folder / "crlnumber").write_text("07\n")
    config = folder / "openssl.cnf"
    config.write_text(OPENSSL_CA_CONFIG.format(dir=folder))
    run = _runner(folder)
    run("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "private/cakey.pem", "-subj", "/O=Old Corp/CN=Old Corp CA", "-days", "3650", "-extensions", "v3_ca",
        "-config", config, "-out", "cacert.pem")
    for name in ("alice", "bob", "alice"):  # alice renewed: two certificates, the newer one current
        run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            f"private/{name}.key", "-subj", f"/O=Old Corp/CN={name}", "-out", f"{name}.csr")
        run("ca", "-batch", "-config", config, "-extensions", "usr_cert", "-in", f"{name}.csr", "-out", f"{name}.crt")
    run("ca", "-config", config, "-revoke", "newcerts/1001.pem", "-crl_reason", "keyCompromise")

    workspace = Workspace(tmp_path / "ws")
    result = import_ca_directory(workspace, folder)
    assert result.ca == "Old-Corp-CA" and workspace.ca_name == "Old-Corp-CA"
    assert result.summary() == "imported the CA Old-Corp-CA with 3 certificates (1 revoked) and 1 key"
    by_serial = {record.serial: record for record in workspace.records()}
    assert by_serial[0x1001].status() == "revoked" and by_serial[0x1001].reason == "key-compromise"
    assert by_serial[0x1001].name == "bob"
    assert by_serial[0x1000].status() == "superseded" and by_serial[0x1000].superseded_by == 0x1002
    assert by_serial[0x1002].status() == "valid" and by_serial[0x1002].profile == "client"
    assert workspace.path("alice", "key").exists() and not workspace.path("bob", "key").exists()
    # Every name has its certificate file, the revoked bob's too (to check against the CRL).
    assert workspace.path("bob", "crt").read_text() == by_serial[0x1001].pem
    assert workspace.path("alice", "crt").read_text() == by_serial[0x1002].pem
    crl = workspace.current_crl()
    assert [entry.serial_number for entry in crl] == [0x1001]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    # Life goes on in kittylab: the imported key renews, new certificates come from the old CA.
    assert workspace.renew("alice").certificate.public_key() == by_serial[0x1002].certificate.public_key()
    fresh = workspace.issue("carol", profile="client", key="p256")
    assert openssl("verify", "-CAfile", folder / "cacert.pem", fresh.files["crt"]).returncode == 0
    # The CRL numbering goes on from the import: a revocation publishes number 8, an export's crlnumber says 9.
    workspace.revoke("carol")
    assert workspace.current_crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 8
    assert int((export_openssl_db(workspace, tmp_path / "again").folder / "crlnumber").read_text(), 16) == 9


def test_an_easy_rsa_pki_is_imported(tmp_path):
    pki = easy_rsa(tmp_path, ["init-pki"], ["--req-cn=Kitty Easy CA", "build-ca", "nopass"],
                   ["build-client-full", "alice", "nopass"], ["build-server-full", "www", "nopass"],
                   ["revoke", "alice", "keyCompromise"], ["gen-crl"])
    workspace = Workspace(tmp_path / "ws")
    result = import_ca_directory(workspace, tmp_path)  # the folder holding pki/ is found too
    assert result.ca == "Kitty-Easy-CA"
    records = {record.name: record for record in workspace.records()}
    assert records["alice"].status() == "revoked" and records["alice"].reason == "key-compromise"
    assert (records["www"].status(), records["www"].profile) == ("valid", "server")
    assert result.keys == ["www"]
    theirs = load_crl(pki / "crl.pem")
    ours = workspace.current_crl()
    assert {e.serial_number for e in ours} == {e.serial_number for e in theirs} == {records["alice"].serial}
    assert ours.issuer == theirs.issuer and ours.is_signature_valid(workspace.ca.certificate.public_key())
    assert workspace.verify(records["www"].certificate, purpose="server").ok
    assert not workspace.verify(records["alice"].certificate).ok


def test_export_then_import_round_trips(exported, tmp_path):
    workspace, _, _, export = exported
    (export.folder / "private").mkdir()
    (export.folder / "private" / "cakey.pem").write_bytes(export.ca_key.read_bytes())
    (export.folder / "cacert.pem").write_bytes(export.ca_certificate.read_bytes())
    copy = Workspace(tmp_path / "copy")
    import_ca_directory(copy, export.folder, ca_name="kitty-ca")
    assert sorted((r.serial, r.name, r.status(), r.reason) for r in copy.records()) == sorted(
        (r.serial, r.name, r.status(), r.reason) for r in workspace.records()
    )


def test_import_errors(tmp_path, story):
    workspace, _, _ = story
    with pytest.raises(KittylabError, match="no index.txt"):
        import_ca_directory(Workspace(tmp_path / "a"), tmp_path)
    export = export_openssl_db(workspace, tmp_path / "exported")
    with pytest.raises(KittylabError, match="no CA certificate found"):
        import_ca_directory(Workspace(tmp_path / "b"), export.folder)
    (export.folder / "cacert.pem").write_bytes(export.ca_certificate.read_bytes())
    with pytest.raises(KittylabError, match="CA's private key was not found"):
        import_ca_directory(Workspace(tmp_path / "c"), export.folder)
    (export.folder / "cakey.pem").write_bytes(export.ca_key.read_bytes())
    with pytest.raises(KittylabError, match="'kitty-ca' is already used"):
        import_ca_directory(workspace, export.folder)
    with pytest.raises(KittylabError, match="picture-server, eager-client|eager-client, picture-server"):
        import_ca_directory(workspace, export.folder, ca_name="old-ca")
    (export.folder / "index.txt").write_text("garbage line\n")
    with pytest.raises(KittylabError, match="index.txt line 1 is not an OpenSSL database line"):
        import_ca_directory(Workspace(tmp_path / "d"), export.folder)


def test_an_import_that_would_drop_a_certificate_or_a_key_is_refused_whole(exported, tmp_path):
    workspace, server, _, export = exported
    (export.folder / "cacert.pem").write_bytes(export.ca_certificate.read_bytes())
    (export.folder / "cakey.pem").write_bytes(export.ca_key.read_bytes())
    certificate_file = export.folder / "newcerts" / f"{server.record.serial_hex}.pem"
    kept = certificate_file.read_bytes()
    certificate_file.unlink()  # listed valid in index.txt, its file gone: it could never be revoked
    target = Workspace(tmp_path / "a")
    with pytest.raises(KittylabError, match=f"1 certificate whose file is missing \\(serial {server.record.serial_hex}"):
        import_ca_directory(target, export.folder, ca_name="old-ca")
    assert not target.home.exists() or not any(target.home.iterdir())
    certificate_file.write_bytes(kept)
    (export.folder / "private").mkdir()
    (export.folder / "private" / "picture-server.key").write_bytes(key_to_pem(generate_key("p256")))  # not its key
    with pytest.raises(KittylabError, match="private/picture-server.key is not the key of the certificate"):
        import_ca_directory(Workspace(tmp_path / "b"), export.folder, ca_name="old-ca")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    (export.folder / "private" / "picture-server.key").write_bytes(workspace.path("picture-server", "key").read_bytes())
    assert import_ca_directory(Workspace(tmp_path / "c"), export.folder, ca_name="old-ca").keys == ["picture-server"]


def _runner(folder):
    def run(*args):
        done = openssl(*args, cwd=folder)
        assert done.returncode == 0, done.stderr
        return done

    return run


def test_an_encrypted_ca_key_needs_its_passphrase_and_stays_encrypted(tmp_path):
    folder = tmp_path / "ca"
    (folder / "private").mkdir(parents=True)
    (folder / "index.txt").write_text("")
    run = _runner(folder)
    run("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", "private/cakey.pem",
        "-passout", "pass:old-secret", "-subj", "/CN=Locked CA", "-days", "365", "-addext",
        "basicConstraints=critical,CA:TRUE", "-out", "cacert.pem")
    with pytest.raises(KittylabError, match="cakey.pem: the key is encrypted: give its passphrase"):
        import_ca_directory(Workspace(tmp_path / "a"), folder)
    with pytest.raises(KittylabError, match="cakey.pem: wrong passphrase"):
        import_ca_directory(Workspace(tmp_path / "b"), folder, passphrase="wrong")
    workspace = Workspace(tmp_path / "c", ca_passphrase="old-secret")
    assert import_ca_directory(workspace, folder, passphrase="old-secret").ca == "Locked-CA"
    assert workspace.ca_key_is_encrypted()
    assert workspace.issue("first", profile="client", key="p256", days=30).record.issuer == "Locked-CA"


# -- the exported openssl.cnf grants nothing a request asks for ---------------------------------------


def hostile_request(key) -> x509.CertificateSigningRequest:
    """A request asking for everything a leaf must not get: a CA, key signing, name constraints, policies, ..."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import (
        AuthorityInformationAccessOID,
        ExtendedKeyUsageOID,
        NameOID,
    )

    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile")]))
    for extension, critical in (
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(True, True, True, True, True, True, True, False, False), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE, ExtendedKeyUsageOID.CODE_SIGNING,
                                ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.NameConstraints(permitted_subtrees=[x509.DNSName("bank.test")], excluded_subtrees=None), True),
        (x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]), False),
        (x509.SubjectAlternativeName([x509.DNSName("bank.test"), x509.RFC822Name("ceo@bank.test")]), False),
        (x509.TLSFeature([x509.TLSFeatureType.status_request]), False),
        (x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://evil.test/ocsp"))]), False),
        (x509.OCSPNoCheck(), False),
    ):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


ALLOWED = {x509.BasicConstraints, x509.KeyUsage, x509.ExtendedKeyUsage, x509.SubjectKeyIdentifier,
           x509.AuthorityKeyIdentifier, x509.SubjectAlternativeName}


def hostile_export(workspace: Workspace, folder, kind: str):
    """The workspace exported for ``openssl ca`` into ``folder``/exported, and hostile.csr (a ``kind`` key) in ``folder``."""
    export = export_openssl_db(workspace, folder / "exported")
    save_csr(hostile_request(generate_key(kind)), folder / "hostile.csr")
    return export


def _sign_with_export(export, command: str, folder) -> x509.Certificate:
    import shlex

    words = shlex.split(command)
    env = dict(os.environ)
    while "=" in words[0]:  # SAN=... before the command
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    done = subprocess.run([*words, "-batch"], cwd=folder, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return x509.load_pem_x509_certificate((folder / words[words.index("-out") + 1]).read_bytes())


def _lint(require, path) -> list:
    import json
    import sys
    from pathlib import Path

    linter = require("lint_pkix_cert", str(Path(sys.executable).parent / "lint_pkix_cert"))
    done = subprocess.run([linter, "lint", "-s", "WARNING", "-f", "JSON", str(path)], capture_output=True, text=True,
                          timeout=120)
    return [f for result in json.loads(done.stdout)["results"] for f in result["finding_descriptions"]]


@pytest.mark.parametrize("kind", ["p256", "rsa2048"])
def test_the_exported_config_signs_a_hostile_request_without_granting_anything(story, tmp_path, kind, require):
    require("openssl")
    from cryptography.hazmat.primitives.asymmetric import rsa

    workspace, _, _ = story
    export = hostile_export(workspace, tmp_path, kind)
    assert "copy_extensions = none" in export.config.read_text()
    is_rsa = kind.startswith("rsa")
    server = _sign_with_export(export, export.sign_command("hostile.csr", "server.crt", profile="server", rsa=is_rsa,
                                                           sans=["DNS:www.kitty.test"]), tmp_path)
    client = _sign_with_export(export, export.sign_command("hostile.csr", "client.crt", profile="client", rsa=is_rsa),
                               tmp_path)
    for certificate, purpose in ((server, "serverAuth"), (client, "clientAuth")):
        kinds = {type(extension.value) for extension in certificate.extensions}
        assert kinds <= ALLOWED, kinds - ALLOWED
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        assert not usage.key_cert_sign and not usage.crl_sign and not usage.content_commitment
        assert usage.key_encipherment == (is_rsa and purpose == "serverAuth")  # RFC 8813: never for ECDSA
        assert [oid._name for oid in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value] == [
            purpose]
        assert isinstance(certificate.public_key(), rsa.RSAPublicKey) == is_rsa
    # the names are the CA's, not the request's: the server gets only what was granted, the client none
    assert server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["www.kitty.test"]
    assert x509.SubjectAlternativeName not in {type(e.value) for e in client.extensions}
    assert 2 ** 63 < server.serial_number < 2 ** 159 and server.serial_number != client.serial_number  # rand_serial
    for name in ("server.crt", "client.crt"):
        assert _lint(require, tmp_path / name) == [], name


def test_copy_extensions_copy_would_have_granted_them(story, tmp_path, require):
    """The test above can fail: with the former `copy_extensions = copy`, the request's extensions get through."""
    require("openssl")
    workspace, _, _ = story
    export = hostile_export(workspace, tmp_path, "p256")
    export.config.write_text(export.config.read_text().replace("copy_extensions = none", "copy_extensions = copy"))
    copied = _sign_with_export(export, export.sign_command("hostile.csr", "c.crt", profile="client", rsa=False), tmp_path)
    kinds = {type(extension.value) for extension in copied.extensions}
    assert {x509.NameConstraints, x509.CertificatePolicies, x509.TLSFeature} <= kinds
