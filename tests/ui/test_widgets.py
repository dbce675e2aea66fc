"""The forms and the dashboard in the kernel: set values, click, check the store and the files."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import stat
import subprocess

import pytest
from cryptography import x509
from support.system import PASSWORD
from tqdm import tqdm

from kittylab import KEY_KINDS, Workspace, load_p12
from kittylab.ui import widgets as widgets_module
from kittylab.ui.widgets import (
    CreateCAForm,
    Dashboard,
    IssueClientForm,
    IssueServerForm,
    KeyChoice,
    SignCSRForm,
    SubjectForm,
    workbench,
)


@pytest.fixture(autouse=True)
def callbacks_must_not_fail(caplog):
    """ipywidgets logs (and swallows) an exception raised in a button's callback: fail on it."""
    yield
    failures = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert failures == []


def link_data(html: str, file_name: str) -> bytes:
    """The bytes behind the download link for ``file_name`` in some HTML."""
    match = re.search(rf'download="{re.escape(file_name)}" href="data:[^;]+;base64,([^"]+)"', html)
    assert match, f"no download link for {file_name}"
    return base64.b64decode(match.group(1))


def one_line(text: str) -> bool:
    return bool(text) and "\n" not in text and "Traceback" not in text


@pytest.fixture
def new_workspace(tmp_path) -> Workspace:
    """A workspace without a CA yet (the forms' first step)."""
    with Workspace(tmp_path / "ws") as workspace:
        yield workspace


# -- the subject form and the key choice ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("c", "Germany", "country (C) is 7 characters long"),
        ("c", "de", "must be two capital letters"),
        ("cn", "", "the common name (CN) is empty"),
        ("email", "not-an-address", "bad email address"),
        ("o", "x" * 65, "organization (O) is 65 characters long"),
        ("l", "Kiel\x07", "control characters"),
    ],
)
def test_a_bad_field_shows_its_message_beside_it(field, value, message):
    form = SubjectForm()
    form.fields["cn"].value = "eager-client"
    form.fields[field].value = value
    shown = form.fields[field].error.value
    assert message in shown and one_line(shown)
    assert "kl-error-" + field in form.fields[field].error._dom_classes
    others = [name for name, f in form.fields.items() if name != field and f.error.value]
    assert others == []
    form.fields[field].value = {"c": "DE", "cn": "eager-client", "email": "eager@kitty.test"}.get(field, "fine")
    assert form.fields[field].error.value == ""


def test_subject_form_builds_the_subject_without_surrounding_spaces():
    form = SubjectForm()
    for name, value in {"cn": " eager-client ", "o": "Kitty Inc ", "c": "DE", "ou": "", "email": "e@kitty.test"}.items():
        form.fields[name].value = value
    assert str(form.subject) == "/C=DE/O=Kitty Inc/CN=eager-client/emailAddress=e@kitty.test"
    assert form.errors() == {}
    assert "kl-subject-form" in form._dom_classes
    assert all(f"kl-field-{name}" in form.fields[name].control._dom_classes for name in form.fields)


def test_key_choice_offers_every_kind_with_its_trade_off():
    choice = KeyChoice(key="rsa2048")
    assert [value for _, value in choice.key.options] == list(KEY_KINDS)
    for kind in KEY_KINDS:
        choice.key.value = kind
        assert choice.tradeoff.value == KEY_KINDS[kind]
    choice.days.value = 0
    assert "days must be a positive whole number" in choice.days.error.value
    choice.days.value = 40000
    assert "more than a hundred years" in choice.days.error.value
    choice.days.value = 375
    assert choice.days.error.value == ""


# -- creating the CA -----------------------------------------------------------------------


def test_create_ca_form(new_workspace):
    form = CreateCAForm(new_workspace, key="p256")
    form.subject.fields["o"].value = "Kitty Inc"
    form.subject.fields["c"].value = "DE"
    form.passphrase.value = "ca-secret"
    form.button.click()
    assert new_workspace.has_ca and new_workspace.ca_name == "kitty-ca"
    assert new_workspace.ca_key_is_encrypted()
    assert stat.S_IMODE((new_workspace.home / "kitty-ca.key").stat().st_mode) == 0o600
    assert (new_workspace.home / "kitty-ca.crt").exists() and new_workspace.crl_path.exists()
    assert "created the CA kitty-ca" in form.message.value
    assert 'class="kl-card kl-card-certificate"' in form.card.value and "CA certificate kitty-ca" in form.card.value
    assert "CN=kitty-ca,O=Kitty Inc,C=DE" in form.card.value
    assert form.button.disabled
    again = CreateCAForm(new_workspace)
    assert again.button.disabled and "already has a CA (kitty-ca)" in again.message.value


def test_create_ca_form_refuses_bad_input_in_one_line(new_workspace):
    form = CreateCAForm(new_workspace, key="p256")
    form.subject.fields["c"].value = "Deutschland"
    form.button.click()
    assert one_line(form.message.value) and "country (C)" in form.message.value
    assert not new_workspace.has_ca
    assert not new_workspace.home.exists()  # bad input creates nothing
    assert form.card.value == "" and not form.button.disabled


# -- issuing -------------------------------------------------------------------------------


def test_server_form_takes_defaults_from_the_ca_and_issues(workspace):
    form = IssueServerForm(workspace, key="p256")
    fields = form.subject.fields
    assert (fields["cn"].value, fields["o"].value, fields["c"].value) == ("picture-server", "Kitty Inc", "DE")
    form.dns.value = "picture-server.kitty.test, localhost"
    form.ip.value = "127.0.0.1 ::1"
    form.key_choice.days.value = 90
    form.button.click()
    record = workspace.find("picture-server")
    assert record.profile == "server" and record.subject == "CN=picture-server,O=Kitty Inc,C=DE"
    assert (record.not_after - record.not_before).days == 90
    names = record.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(n.value) for n in names.value] == ["picture-server.kitty.test", "localhost", "127.0.0.1", "::1"]
    assert stat.S_IMODE(workspace.path("picture-server", "key").stat().st_mode) == 0o600
    assert "Certificate picture-server" in form.card.value and "kl-status-valid" in form.card.value
    assert link_data(form.downloads.value, "picture-server.crt") == workspace.path("picture-server", "crt").read_bytes()
    assert "issued picture-server" in form.message.value


def test_server_form_shows_bad_names_as_the_user_types_and_refuses_them(workspace):
    form = IssueServerForm(workspace, key="p256")
    form.dns.value = "good.kitty.test, bad_name!"
    assert "bad DNS name 'bad_name!'" in form.dns.error.value
    form.ip.value = "300.1.2.3"
    assert "bad IP address" in form.ip.error.value
    form.button.click()
    assert one_line(form.message.value)
    assert workspace.records(include_ca=False) == []
    assert not workspace.path("picture-server", "key").exists()


def test_a_second_certificate_for_a_name_is_refused_in_one_line(workspace):
    form = IssueServerForm(workspace, key="p256")
    form.button.click()
    assert "kl-card" in form.card.value and "picture-server.crt" in form.downloads.value
    form.button.click()
    assert one_line(form.message.value) and "already has a current certificate" in form.message.value
    assert form.card.value == "" and form.downloads.value == ""  # no card left over from before
    assert not form.button.disabled


def test_a_refusal_leaves_no_progress_bar_under_its_message(workspace, monkeypatch):
    """In JupyterLab the bar is drawn into the form's progress area: a refusal clears it (it stayed at 0/?)."""
    form = IssueServerForm(workspace, key="p256")
    form.button.click()

    def drawn_bar(total, description):
        form.progress_area.outputs = ({"output_type": "stream", "name": "stderr", "text": f"{description}: 0/?"},)
        return tqdm(disable=True)

    monkeypatch.setattr(widgets_module, "progress_bar", drawn_bar)
    form.button.click()  # refused: picture-server already has a current certificate
    assert "already has a current certificate" in form.message.value
    assert form.progress_area.outputs == ()


def test_file_name_field(workspace):
    form = IssueClientForm(workspace, key="p256")
    form.p12.value = False
    form.name.value = "../escape"
    assert "bad name" in form.name.error.value
    form.name.value = "alice-laptop"
    form.subject.fields["cn"].value = "Alice Liddell"
    form.button.click()
    assert workspace.find("alice-laptop").subject == "CN=Alice Liddell,O=Kitty Inc,C=DE"
    assert not workspace.path("alice-laptop", "p12").exists()
    assert ".p12" not in form.downloads.value


@pytest.mark.parametrize("flavour", ["modern", "legacy"])
def test_client_form_with_p12_and_password(workspace, require, flavour):
    openssl = require("openssl")
    form = IssueClientForm(workspace, key="p256")
    form.emails.value = "eager-client@kitty.test"
    form.p12_options.password.value = PASSWORD
    form.p12_options.flavour.value = flavour
    assert form.p12_options.note.value.startswith(flavour)
    form.button.click()
    p12 = workspace.path("eager-client", "p12")
    assert stat.S_IMODE(p12.stat().st_mode) == 0o600
    assert link_data(form.downloads.value, "eager-client.p12") == p12.read_bytes()
    contents = load_p12(p12, password=PASSWORD)
    assert contents.certificate == workspace.find("eager-client").certificate
    assert "kl-p12-password" not in form.downloads.value  # the user chose it: not shown back
    info = subprocess.run(
        [openssl, "pkcs12", "-info", "-noout", "-in", str(p12), "-passin", f"pass:{PASSWORD}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert ("3DES" in info.stderr or "TripleDES" in info.stderr) == (flavour == "legacy")


def test_client_form_generates_a_password_and_shows_it_once(workspace):
    form = IssueClientForm(workspace, key="p256")
    form.button.click()
    shown = re.search(r'class="kl-p12-password">.*?<code>([^<]+)</code>', form.downloads.value)
    assert shown
    load_p12(workspace.path("eager-client", "p12"), password=shown.group(1))
    assert shown.group(1) not in form.card.value
    # the no-code tool says where the password is, not a Python attribute
    assert "shown once below" in form.card.value and ".p12_password" not in form.card.value


def test_forms_need_a_ca_first(new_workspace):
    form = IssueClientForm(new_workspace, key="p256")
    form.button.click()
    assert one_line(form.message.value) and "no CA" in form.message.value


def test_forms_take_the_ca_defaults_once_the_ca_exists(new_workspace):
    server = IssueServerForm(new_workspace, key="p256")
    assert server.subject.fields["o"].value == ""
    ca = CreateCAForm(new_workspace, key="p256")
    ca.subject.fields["o"].value = "Kitty Inc"
    ca.subject.fields["l"].value = "Kiel"
    ca.button.click()
    assert (server.subject.fields["o"].value, server.subject.fields["l"].value) == ("Kitty Inc", "Kiel")


# -- the dashboard -------------------------------------------------------------------------


def rows(dashboard: Dashboard) -> list[str]:
    return re.findall(r'class="kl-dashboard-row" data-name="([^"]+)"', dashboard.table.value)


def status_of(dashboard: Dashboard, name: str) -> str:
    row = re.search(rf'data-name="{name}".*?kl-status-([a-z-]+)', dashboard.table.value)
    return row.group(1)


def choose(dashboard: Dashboard, name: str) -> None:
    dashboard.choice.value = next(value for label, value in dashboard.choice.options if label.startswith(name + " "))


def revoke_from(dashboard: Dashboard, name: str) -> None:
    """Choose ``name``, click Revoke and confirm."""
    choose(dashboard, name)
    dashboard.revoke_button.click()
    dashboard.confirm_button.click()


@pytest.fixture
def dashboard(story) -> Dashboard:
    """The story's dashboard: kitty-ca, picture-server and eager-client."""
    return Dashboard(story[0])


@pytest.fixture
def dashboard_with_short_lived(story) -> Dashboard:
    """The story's dashboard with a fourth certificate, short-lived (5 days: expiring)."""
    workspace, _, _ = story
    workspace.issue("short-lived", profile="client", key="p256", days=5)
    return Dashboard(workspace)


def test_dashboard_lists_everything_with_status_and_expiry(story, dashboard_with_short_lived):
    workspace, server, _ = story
    dashboard = dashboard_with_short_lived
    assert rows(dashboard) == ["eager-client", "kitty-ca", "picture-server", "short-lived"]
    assert status_of(dashboard, "picture-server") == "valid" and status_of(dashboard, "short-lived") == "expiring"
    assert f"{server.record.not_after:%Y-%m-%d}" in dashboard.table.value
    crl = workspace.current_crl()
    assert f"CRL of kitty-ca: next update {crl.next_update_utc:%Y-%m-%d %H:%M} UTC (0 revoked)" in dashboard.crl.value
    assert [label.split(" ")[0] for label, _ in dashboard.choice.options] == ["eager-client", "picture-server", "short-lived"]
    assert "<svg" in dashboard.diagram.value and 'data-name="short-lived"' in dashboard.diagram.value


def test_dashboard_sorts_and_filters(dashboard_with_short_lived):
    dashboard = dashboard_with_short_lived
    dashboard.sort.value = "expiry"
    assert rows(dashboard) == ["short-lived", "picture-server", "eager-client", "kitty-ca"]
    dashboard.descending.value = True
    assert rows(dashboard)[0] == "kitty-ca"
    dashboard.sort.value = "status"
    dashboard.descending.value = False
    assert rows(dashboard)[0] == "short-lived"
    dashboard.filter.value = "eager"
    assert rows(dashboard) == ["eager-client"]
    assert [label.split(" ")[0] for label, _ in dashboard.choice.options] == ["eager-client"]
    dashboard.filter.value = "no such thing"
    assert rows(dashboard) == [] and "no certificates match" in dashboard.table.value


def test_dashboard_filter_preset_by_a_notebook(story):
    workspace, _, _ = story
    from kittylab import Subject

    workspace.issue("ws7-alice", profile="client", key="p256", subject=Subject(cn="alice", ou="workshop-7"))
    assert rows(Dashboard(workspace, filter="OU=workshop-7")) == ["ws7-alice"]
    kept = Dashboard(workspace, filter=lambda record: record.name.startswith("ws7-"))
    assert rows(kept) == ["ws7-alice"] and kept.filter.value == ""


def test_revoking_from_the_dashboard(story, dashboard, require):
    openssl = require("openssl")
    workspace, _, client = story
    dashboard.reason.value = "key-compromise"
    revoke_from(dashboard, "eager-client")
    record = workspace.find("eager-client")
    assert record.status() == "revoked" and record.reason == "key-compromise"
    assert status_of(dashboard, "eager-client") == "revoked"
    assert "revoked eager-client" in dashboard.message.value
    assert "(1 revoked)" in dashboard.crl.value
    assert 'data-name="eager-client" data-status="revoked"' in dashboard.diagram.value
    check = subprocess.run(
        [openssl, "verify", "-CAfile", str(workspace.ca_certificate_path), "-crl_check", "-CRLfile",
         str(workspace.crl_path), str(client.files["crt"])],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode != 0 and "certificate revoked" in check.stdout + check.stderr
    revoke_from(dashboard, "eager-client")
    assert one_line(dashboard.message.value) and "already revoked" in dashboard.message.value


def test_export_from_the_dashboard(story, dashboard):
    workspace, _, _ = story
    choose(dashboard, "eager-client")
    dashboard.p12_options.password.value = "new-pass"
    dashboard.p12_options.flavour.value = "legacy"
    dashboard.export_button.click()
    assert dashboard.message.value == "exported eager-client.crt and eager-client.p12"
    p12 = link_data(dashboard.downloads.value, "eager-client.p12")
    assert load_p12(p12, password="new-pass").certificate == workspace.find("eager-client").certificate
    assert link_data(dashboard.downloads.value, "eager-client.crt") == workspace.path("eager-client", "crt").read_bytes()


def test_export_without_a_choice_says_so(workspace):
    dashboard = Dashboard(workspace)
    dashboard.export_button.click()
    assert dashboard.message.value == "choose a certificate first"


def test_publish_crl_from_the_dashboard(story, dashboard):
    workspace, _, _ = story
    def number() -> int:
        return workspace.current_crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    before = number()
    dashboard.crl_button.click()
    assert number() == before + 1
    assert f"published a new CRL in {workspace.crl_path}" in dashboard.message.value
    assert link_data(dashboard.downloads.value, "kitty-ca.crl") == workspace.crl_path.read_bytes()


def test_exporting_a_revoked_certificate_says_why_there_is_no_p12(story):
    workspace, _, _ = story
    workspace.revoke("eager-client", reason="key-compromise")
    dashboard = Dashboard(workspace)
    choose(dashboard, "eager-client")
    dashboard.export_button.click()
    assert dashboard.message.value == ("exported eager-client.crt; no p12: eager-client's certificate is revoked"
                                       " (key-compromise), so servers refuse it: issue a new one")
    assert "eager-client.p12" not in dashboard.downloads.value


def test_the_dashboard_refreshes_after_a_form_acts(workspace):
    dashboard = Dashboard(workspace)
    assert rows(dashboard) == ["kitty-ca"]
    form = IssueClientForm(workspace, key="p256")
    form.p12.value = False
    form.button.click()
    assert rows(dashboard) == ["eager-client", "kitty-ca"]
    other = Dashboard(workspace)
    revoke_from(other, "eager-client")
    assert status_of(dashboard, "eager-client") == "revoked"


def test_intermediate_cas_in_forms_and_dashboard(story):
    workspace, _, _ = story
    form = IssueClientForm(workspace, key="p256")
    assert form.signer.layout.display == "none" and form.signer.value == "kitty-ca"
    dashboard = Dashboard(workspace)
    workspace.init_ca("/O=Issuing Dept/C=FR/CN=kitty-issuing", key="p256", intermediate_of="kitty-ca")
    form.refresh()
    dashboard.refresh()
    assert form.signer.options == ("kitty-ca", "kitty-issuing") and form.signer.layout.display is None
    form.signer.value = "kitty-issuing"
    form.subject.fields["cn"].value = "via-issuing"
    form.subject.fields["o"].value = ""
    form.subject.fields["c"].value = ""
    form.refresh()
    assert (form.subject.fields["o"].value, form.subject.fields["c"].value) == ("Issuing Dept", "FR")
    form.p12.value = False
    form.button.click()
    assert workspace.find("via-issuing").issuer == "kitty-issuing"
    assert "CRL of kitty-ca:" in dashboard.crl.value and "CRL of kitty-issuing:" in dashboard.crl.value
    labels = [label.split(" ")[0] for label, _ in dashboard.choice.options]
    assert "kitty-issuing" in labels and "kitty-ca" not in labels
    choose(dashboard, "kitty-issuing")
    dashboard.export_button.click()
    assert dashboard.message.value == "exported kitty-issuing.crt; no p12: kitty-issuing is a CA: its key stays in the workspace"
    revoke_from(dashboard, "kitty-issuing")
    assert workspace.find("kitty-issuing").status() == "revoked"
    assert form.signer.options == ("kitty-ca",) and form.signer.value == "kitty-ca"
    assert 'data-name="kitty-issuing" data-status="revoked"' in dashboard.diagram.value


def test_forms_of_a_closed_workspace_object_do_not_break_new_ones(tmp_path):
    old = Workspace(tmp_path / "ws")
    old.init_ca(key="p256")
    stale = Dashboard(old)
    closed = Dashboard(old)
    closed.close()
    old.close()  # a notebook that opened the workspace again, as a new object
    with Workspace(tmp_path / "ws") as workspace:
        dashboard = Dashboard(workspace)
        form = IssueClientForm(workspace, key="p256")
        form.p12.value = False
        form.button.click()
        assert "issued eager-client" in form.message.value
        assert rows(dashboard) == ["eager-client", "kitty-ca"]
        assert rows(stale) == ["kitty-ca"]


def test_workbench_puts_the_moves_in_tabs(workspace):
    tabs = workbench(workspace)
    assert tabs.titles == ("kitty-ca", "picture-server", "eager-client", "Sign a CSR", "Dashboard")
    assert "kl-workbench" in tabs._dom_classes
    assert [type(child).__name__ for child in tabs.children] == [
        "CreateCAForm", "IssueServerForm", "IssueClientForm", "SignCSRForm", "Dashboard"]


def test_revoking_asks_first(story, dashboard):
    workspace, _, _ = story
    choose(dashboard, "eager-client")
    dashboard.revoke_button.click()
    assert workspace.find("eager-client").status() == "valid"
    assert dashboard.confirmation.layout.display is None
    assert dashboard.question.value.startswith("Revoke eager-client (serial ") and "cannot be undone" in dashboard.question.value
    dashboard.cancel_button.click()
    assert dashboard.confirmation.layout.display == "none" and dashboard.message.value == "nothing revoked"
    assert workspace.find("eager-client").status() == "valid"
    dashboard.revoke_button.click()
    choose(dashboard, "picture-server")  # the question was about another certificate: it goes away
    assert dashboard.confirmation.layout.display == "none"
    revoke_from(dashboard, "picture-server")
    assert workspace.find("picture-server").status() == "revoked"
    assert workspace.find("eager-client").status() == "valid"


def _uploaded(form, data: bytes, name: str = "request.csr") -> None:
    """What the browser sends when a file is chosen in the upload button."""
    when = dt.datetime.now(dt.timezone.utc)
    form.upload.value = ({"name": name, "type": "", "size": len(data), "content": memoryview(data), "last_modified": when},)


def test_signing_an_uploaded_csr_and_exporting_it_without_its_key(workspace, tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding

    from kittylab import generate_key, make_csr

    form = SignCSRForm(workspace)
    form.button.click()
    assert one_line(form.message.value) and "upload a certificate request first" in form.message.value
    _uploaded(form, b"not a request")
    form.button.click()
    assert one_line(form.message.value) and "not a certificate signing request" in form.message.value
    _uploaded(form, make_csr(generate_key("p256"), "/CN=my-laptop", dns=["laptop.kitty.test"]).public_bytes(Encoding.PEM))
    form.profile.value = "server"
    form.button.click()
    assert "signed my-laptop" in form.message.value and "its key stays" in form.message.value
    assert workspace.find("my-laptop").profile == "server"
    assert 'download="my-laptop.crt"' in form.downloads.value and "kl-card" in form.card.value
    assert not workspace.path("my-laptop", "key").exists()

    dashboard = Dashboard(workspace)
    choose(dashboard, "my-laptop")
    dashboard.export_button.click()
    assert dashboard.message.value.startswith("exported my-laptop.crt; no p12: kittylab does not hold my-laptop's private key")
    assert 'download="my-laptop.crt"' in dashboard.downloads.value and ".p12" not in dashboard.downloads.value


def test_renewing_from_the_dashboard(story, dashboard):
    workspace, _, _ = story
    old = workspace.find("picture-server")
    choose(dashboard, "picture-server")
    dashboard.renew_button.click()
    assert dashboard.message.value.startswith("renewed picture-server: serial ")
    assert workspace.find(old.serial).status() == "superseded"
    assert workspace.find("picture-server").serial != old.serial
