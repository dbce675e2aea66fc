"""Issue 17: a CSR is read and reviewed before it is signed; requested names can be dropped or replaced;
a profile can limit which kinds of names a client certificate carries."""

from __future__ import annotations

import json

from support.cli import run_cli

from kittylab import generate_key, make_csr
from kittylab.pki.csr import save_csr
from kittylab.pki.names import Subject


def _lena_csr(folder):
    path = folder / "lena.csr"
    save_csr(make_csr(generate_key("p256"), Subject(cn="lena"), email=["lena@acme.example", "ceo@acme.example"],
                      dns=["wiki.acme.example"]), path)
    return path


def test_show_reads_a_csr_file(tmp_path):
    csr = _lena_csr(tmp_path)
    shown = run_cli("show", csr, home=tmp_path / "no-workspace")
    assert shown.code == 0 and "certificate signing request" in shown.out
    assert "DNS:wiki.acme.example, email:lena@acme.example, email:ceo@acme.example" in shown.out
    as_json = json.loads(run_cli("show", csr, "--json", home=tmp_path / "ws").out)
    assert as_json["requested_names"] == ["DNS:wiki.acme.example", "email:lena@acme.example", "email:ceo@acme.example"]
    assert not (tmp_path / "no-workspace").exists()
    for missing in ("nope.csr", f"{tmp_path}/nope"):
        line = run_cli("show", missing, home=tmp_path / "ws").assert_one_line_error()
        assert "nope" in line and "no certificate named" not in line and "file" in line


def test_show_escapes_what_would_not_show_as_itself(tmp_path):
    """A CSR someone sent with U+202E in its CN was printed raw: the terminal turned the name around."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = generate_key("p256")
    cn = "evil\u202egpj.exe\u2028\u3164\x1b[2J"
    request = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).sign(key, hashes.SHA256())
    path = tmp_path / "x.csr"
    save_csr(request, path)
    shown = run_cli("show", path, home=tmp_path / "ws")
    assert shown.code == 0
    assert not any(ch in shown.out for ch in "\u202e\u2028\u3164\x1b")
    assert "evil\\u202egpj.exe\\u2028\\u3164\\u001b[2J" in shown.out


def test_sign_shows_what_it_grants_and_drops_or_replaces_requested_names(tmp_path):
    home, csr = tmp_path / "ws", _lena_csr(tmp_path)
    run_cli("init", "--cn", "acme-ca", "--key", "p256", home=home)
    dry = run_cli("sign", csr, "--profile", "client", "--dry-run", "--json", home=home)
    assert dry.code == 0 and "grant email:ceo@acme.example (requested)" in dry.err
    assert json.loads(dry.out)["signed"] is False and not (home / "lena.crt").exists()
    signed = run_cli("sign", csr, "--profile", "client", "--drop-san", "email:ceo@acme.example", "--drop-san",
                     "DNS:wiki.acme.example", "--json", home=home)
    assert signed.code == 0, signed.err
    assert "drop  email:ceo@acme.example (requested, not granted)" in signed.err
    result = json.loads(signed.out)
    assert result["grant"]["subject_alternative_names"] == ["email:lena@acme.example"]
    assert "ceo@" not in run_cli("show", "lena", home=home).out
    typo = run_cli("sign", csr, "--profile", "client", "--name", "lena2", "--drop-san", "email:cfo@acme.example", home=home)
    assert "the CSR does not ask for email:cfo@acme.example" in typo.assert_one_line_error()
    replaced = run_cli("sign", csr, "--profile", "client", "--name", "lena3", "--replace-sans", "--email",
                       "lena@acme.example", "--json", home=home)
    assert json.loads(replaced.out)["grant"]["subject_alternative_names"] == ["email:lena@acme.example"]
    asked = run_cli("sign", csr, "--profile", "client", "--name", "lena4", "--confirm", home=home)
    assert asked.code == 1 and "needs a terminal" in asked.err.splitlines()[-1] and not (home / "lena4.crt").exists()


def test_a_profile_can_limit_the_kinds_of_names(tmp_path):
    home, csr = tmp_path / "ws", _lena_csr(tmp_path)
    run_cli("init", "--cn", "acme-ca", "--key", "p256", home=home)
    limited = run_cli("profile", "client", "--san-types", "email", "--json", home=home)
    assert json.loads(limited.out)["san_types"] == ["email"]
    refused = run_cli("sign", csr, "--profile", "client", home=home)
    line = refused.assert_one_line_error()
    assert "cannot carry the name DNS:wiki.acme.example: it accepts email" in line
    assert "--drop-san DNS:wiki.acme.example" in line and not (home / "lena.crt").exists()
    assert run_cli("sign", csr, "--profile", "client", "--drop-san", "DNS:wiki.acme.example", home=home).code == 0
    assert "never carries ip" in run_cli("profile", "client", "--san-types", "ip", home=home).assert_one_line_error()
    lifted = run_cli("profile", "client", "--any-san-type", home=home)
    assert "may carry: email, dns, uri names" in lifted.out


def test_a_dry_run_refuses_what_the_signing_refuses(tmp_path):
    """The CA's name constraints, a taken name and a validity beyond the CA's: refused by --dry-run too."""
    home, csr = tmp_path / "ws", _lena_csr(tmp_path)
    run_cli("init", "--cn", "acme-ca", "--key", "p256", "--permit-email", "acme.example", "--days", "100", home=home)
    for extra, why in ((["--email", "lena@evil.example", "--days", "30"], "lena@evil.example"), (["--days", "400"], "outlive")):
        dry = run_cli("sign", csr, "--profile", "client", "--replace-sans", *extra, "--dry-run", home=home)
        real = run_cli("sign", csr, "--profile", "client", "--replace-sans", *extra, home=home)
        assert why in dry.err.splitlines()[-1] and dry.code == real.code == 1, (dry.err, real.err)
        assert dry.err.splitlines()[-1] == real.err.splitlines()[-1]
    assert run_cli("sign", csr, "--profile", "client", "--replace-sans", "--email", "lena@acme.example", "--days", "30",
                   home=home).code == 0
    taken = run_cli("sign", csr, "--profile", "client", "--replace-sans", "--dry-run", home=home)
    assert "'lena' already has a current certificate" in taken.assert_one_line_error()
