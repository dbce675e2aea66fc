"""Notebook 04 with a learner's own values: the form drives every step, run in the kernel as the
cells run it (set the fields' ``.value``, call what the cells call), and any cell runs twice."""

from __future__ import annotations

import threading

import pytest
from cryptography import x509

from kittylab import KittylabError, Workspace, load_p12
from kittylab.pki.openssl import sans_of
from kittylab.render.display import certificate_card
from kittylab.ui.tutorial import (
    CLIENT_EMAIL,
    CLIENT_NAME,
    P12_PASSWORD,
    legacy_p12,
    openssl_side_by_side,
    own_csr,
    own_key,
    sign_own,
)
from kittylab.ui.widgets import Dashboard, IssueClientForm, SubjectForm


def client_form(workspace, cn: str = "my-laptop", email: str = "learner@example.org") -> SubjectForm:
    """04's form (the article's values), then changed as the learner changed it."""
    form = SubjectForm(workspace.default_subject(CLIENT_NAME), emails=[CLIENT_EMAIL])
    form.fields["cn"].value = cn
    form.fields["email"].value = email
    return form


def run_steps_11_to_14(workspace, form):
    key = own_key(workspace, form, "p256")
    csr = own_csr(workspace, form)
    client = sign_own(workspace, form)
    p12_path, _ = workspace.export_p12(client.name, password=P12_PASSWORD)
    return key, csr, client, p12_path, legacy_p12(workspace, client.name, password=P12_PASSWORD)


def test_every_file_is_named_after_the_cn_and_the_email_is_the_only_san(workspace, require):
    form = client_form(workspace)
    key, csr, client, p12_path, legacy_path = run_steps_11_to_14(workspace, form)
    files = sorted(p.name for p in workspace.home.iterdir() if p.name.startswith(("my-laptop", CLIENT_NAME)))
    assert files == ["my-laptop-legacy.p12", "my-laptop.crt", "my-laptop.csr", "my-laptop.key", "my-laptop.p12"]
    assert sans_of(csr) == sans_of(client.certificate) == ["email:learner@example.org"]
    assert client.certificate.subject.rfc4514_string() == "CN=my-laptop,O=Kitty Inc,C=DE"  # no emailAddress
    for path in (p12_path, legacy_path):
        contents = load_p12(path, password=P12_PASSWORD)
        assert contents.certificate == client.certificate
        assert contents.key.public_key() == key.public_key()
    require("openssl")
    verified = openssl_side_by_side(
        f"openssl verify -CAfile kitty-ca.crt -purpose sslclient {client.name}.crt",
        workspace=workspace, kittylab=workspace.verify(client.certificate, purpose="client"),
    )  # fmt: skip
    assert verified.agrees is True and verified.ok, verified
    for path in (p12_path, legacy_path):
        info = openssl_side_by_side(f"openssl pkcs12 -info -noout -in {path.name} -passin pass:{P12_PASSWORD}", workspace=workspace)
        assert info.ok, info


def test_the_legacy_p12_waits_for_the_workspaces_lock_as_every_change_does(workspace):
    """It is written through the workspace (Workspace.export_p12), never beside another writer's change."""
    client = workspace.issue("lena", profile="client", key="p256")
    legacy = workspace.home / "lena-legacy.p12"
    other = Workspace(workspace.home)  # another writer (another process, as far as the lock can tell)
    other._lock.acquire()
    try:
        writer = threading.Thread(target=legacy_p12, args=(workspace, "lena"), kwargs={"password": P12_PASSWORD})
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and not legacy.exists()
    finally:
        other._lock.release()
    writer.join(10)
    assert load_p12(legacy, password=P12_PASSWORD).certificate == client.certificate
    assert legacy.stat().st_mode & 0o777 == 0o600
    other.close()


def test_several_addresses_and_none(workspace):
    form = client_form(workspace, email="a@example.org, b@example.org")
    own_key(workspace, form, "p256")
    assert sans_of(own_csr(workspace, form)) == ["email:a@example.org", "email:b@example.org"]
    form = client_form(workspace, cn="no-email", email="")
    own_key(workspace, form, "p256")
    assert sans_of(own_csr(workspace, form)) == []


def test_every_cell_runs_twice(workspace, capsys):
    form = client_form(workspace)
    key, _, client, _, _ = run_steps_11_to_14(workspace, form)
    capsys.readouterr()
    again_key, _, again, _, _ = run_steps_11_to_14(workspace, form)
    said = capsys.readouterr().out
    assert again_key.public_key() == key.public_key()  # the key kept: it still matches the certificate
    assert again.certificate == client.certificate  # the same request is not signed twice
    assert said.splitlines() == [
        "kept my-laptop.key, made when this cell first ran (delete the file to make a new key)",
        "my-laptop.csr is signed already: here is its certificate, my-laptop.crt",
    ]
    assert [r.name for r in workspace.records()].count("my-laptop") == 1


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("csr", "there is no my-laptop.key yet: the CN is now my-laptop, so run step 11's cell again to make its key"),
        ("sign", "there is no my-laptop.csr yet: the CN is now my-laptop, so run the cells of steps 11 and 12 again"),
    ],
)
def test_a_cn_changed_between_steps_says_which_cell_to_run(workspace, step, message):
    form = client_form(workspace, cn=CLIENT_NAME)
    own_key(workspace, form, "p256")
    form.fields["cn"].value = "my-laptop"
    with pytest.raises(KittylabError) as refused:
        (own_csr if step == "csr" else sign_own)(workspace, form)
    assert str(refused.value) == message


def test_a_new_request_for_a_signed_name_and_a_cn_that_cannot_name_files(workspace):
    form = client_form(workspace)
    run_steps_11_to_14(workspace, form)
    form.fields["email"].value = "other@example.org"
    own_csr(workspace, form)
    with pytest.raises(KittylabError, match=r'^my-laptop already has a certificate, made from another request: '
                                            r'revoke it first \(ws.revoke\("my-laptop"\)\) or give the form another CN$'):
        sign_own(workspace, form)
    form.fields["cn"].value = "my laptop"
    with pytest.raises(KittylabError, match=r"^the CN 'my laptop' cannot name files: .*\(no spaces\)$"):
        own_key(workspace, form)
    form.fields["email"].value = "not an address"
    form.fields["cn"].value = "my-laptop"
    with pytest.raises(KittylabError, match="bad email address 'not'"):
        own_csr(workspace, form)


def test_a_cell_run_again_in_a_kernel_says_one_line(tmp_path):
    """In a real kernel (as JupyterLab runs a notebook): 01's CA cell and 02's signing cell run a
    second time answer with one line, no traceback and no command-line flag; other errors keep
    their tracebacks."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        f"from kittylab.ui.tutorial import SERVER_NAME, prepare\nws = prepare(9, home={str(tmp_path / 'ws')!r})",
        'ws.init_ca("/CN=kitty-ca", key="p256")',  # 01, cell 7, once more
        "ws.sign_csr(ws.path(SERVER_NAME, 'csr'), profile='server')",  # 02, cell 14, once more
        "1 / 0",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True).execute()
    errors = [[o for o in cell.outputs if o.output_type == "error"] for cell in notebook.cells]
    assert errors[0] == []
    for shown in errors[1:3]:
        assert len(shown) == 1 and len(shown[0].traceback) == 1, shown
        line = shown[0].traceback[0]
        assert line.startswith("\x1b[31mKittylabError: ") and "\n" not in line and " --" not in line, line
    assert "already has a CA" in errors[1][0].traceback[0]
    assert "already has a current certificate" in errors[2][0].traceback[0]
    assert len(errors[3][0].traceback) > 1  # a Python mistake keeps its traceback


# -- the workbench's client form: the same Email field, into the alternative names -----------


def test_the_workbench_client_form_puts_its_one_email_field_in_the_san(workspace):
    form = IssueClientForm(workspace, name="my-laptop", key="p256")
    assert form.emails is form.subject.fields["email"]
    assert [f.control.description for f in form.subject.fields.values()].count("Email (alternative names)") == 1
    form.emails.value = "learner@example.org"
    form.p12.value = False
    form.button.click()
    record = workspace.find("my-laptop")
    assert sans_of(record.certificate) == ["email:learner@example.org"]
    assert record.subject == "CN=my-laptop,O=Kitty Inc,C=DE"


def test_an_email_in_the_subject_reads_as_emailaddress(workspace):
    """A CA (or an imported certificate) may carry emailAddress in its subject: the card, the
    dashboard and the store name it, not its OID 1.2.840.113549.1.9.1."""
    form = SubjectForm(workspace.default_subject("legacy-client"))
    form.fields["email"].value = "learner@example.org"
    issued = workspace.issue("legacy-client", profile="client", key="p256", subject=form.subject)
    readable = "emailAddress=learner@example.org,CN=legacy-client,O=Kitty Inc,C=DE"
    assert issued.certificate.subject.get_attributes_for_oid(x509.NameOID.EMAIL_ADDRESS)
    assert workspace.find("legacy-client").subject == readable
    card = certificate_card(issued.certificate).html()
    assert readable in card and "1.2.840" not in card
    assert readable in Dashboard(workspace, diagram=False).table.value


def test_the_openssl_commands_for_the_forms_values_make_what_kittylab_made(workspace, require, tmp_path):
    """own_commands' steps 12 and 13, run by OpenSSL on the learner's key and the CA's: the same
    subject and alternative names as kittylab's request and certificate (step 14 bundles them)."""
    import shlex
    import shutil
    import subprocess

    from kittylab import load_csr
    from kittylab.pki.ca import load_certificate
    from kittylab.ui.tutorial import own_commands

    binary = require("openssl")
    form = client_form(workspace)
    _, csr, client, _, _ = run_steps_11_to_14(workspace, form)
    table = own_commands(form)
    assert [row[0] for row in table.rows] == ["11", "12", "13", "14"]
    assert all("eager-client" not in row[3] and "my-laptop" in row[3] for row in table.rows)
    for name in ("kitty-ca.crt", "kitty-ca.key", "my-laptop.key"):
        shutil.copy(workspace.home / name, tmp_path / name)
    for _, _, _, command in table.rows[1:3]:
        subprocess.run([binary, *shlex.split(command)[1:]], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    theirs_csr, theirs = load_csr(tmp_path / "my-laptop.csr"), load_certificate(tmp_path / "my-laptop.crt")
    assert (theirs_csr.subject, sans_of(theirs_csr)) == (csr.subject, sans_of(csr))
    assert (theirs.subject, sans_of(theirs)) == (client.certificate.subject, sans_of(client.certificate))
    assert "-name my-laptop -out my-laptop.p12" in table.rows[3][3]
