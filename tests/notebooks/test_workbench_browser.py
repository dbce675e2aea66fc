"""notebooks/08-workbench.ipynb in a real JupyterLab, driven by Chromium, end to end and without
code: create the CA, issue a server and a client certificate, sign an uploaded CSR, download the
p12 and the certificate, see what expires, export a certificate whose key kittylab does not hold,
revoke after the confirmation, publish the CRL, renew. Screenshots in test-artifacts/workbench/.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import support.lab as jupyter
from support.system import PASSWORD

from kittylab import Workspace, generate_key, load_p12, make_csr, save_csr

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "08-workbench.ipynb"


@pytest.fixture(scope="module")
def workbench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workbench")
    shutil.copy(NOTEBOOK, folder)
    with jupyter.ran_notebook(
        folder, NOTEBOOK.name, trust=True, height=1400, timeout_ms=90_000, accept_downloads=True
    ) as (_, page):
        page.locator(".kl-workbench").wait_for()
        yield page, folder / "kitty-workspace" / "workbench"


def _tab(page, title: str):
    page.locator(".kl-workbench").get_by_role("tab", name=title).click()


def _submit(page, tab: str, form: str, button: str, fills: dict[str, str] | None = None):
    """Open the tab, choose a P-256 key (fast), fill the fields, click, wait for the card."""
    _tab(page, tab)
    shown = page.locator(f".kl-{form}-form")
    shown.locator(".kl-field-key select").select_option(label="ECDSA P-256")
    for selector, value in (fills or {}).items():
        shown.locator(selector).fill(value)
    jupyter.click_and_read(shown.locator(button), shown.locator(".kl-result .kl-card"))
    return shown


def _choose(dashboard, name: str) -> None:
    select = dashboard.locator(".kl-dashboard-select select")
    try:
        dashboard.page.wait_for_function(
            "([s, n]) => [...s.options].some(o => o.text.replace(/\\u00a0/g, ' ').startsWith(n + ' ('))", arg=[select.element_handle(), name],
            timeout=20_000,
        )
    except Exception:
        raise AssertionError(f"{name} is not offered: {select.locator('option').all_inner_texts()}") from None
    texts = [text.replace("\xa0", " ") for text in select.locator("option").all_inner_texts()]  # ipywidgets: no-break spaces
    select.select_option(index=next(i for i, text in enumerate(texts) if text.startswith(f"{name} (")))


def test_the_workbench_without_code(workbench, tmp_path):
    page, home = workbench

    form = _submit(page, "kitty-ca", "create-ca", ".kl-create-ca-button")
    assert "CA certificate kitty-ca" in form.locator(".kl-result").inner_text()
    form = _submit(page, "picture-server", "issue-server", ".kl-issue-server-button")
    assert "DNS:localhost" in form.locator(".kl-result").inner_text()
    # eager-client soon to expire (the dashboard shows it), with a password of its own
    form = _submit(page, "eager-client", "issue-client", ".kl-issue-client-button",
                   {".kl-field-days input": "10", ".kl-field-password input": PASSWORD})  # fmt: skip
    p12 = jupyter.download(page, form.locator('.kl-download-link[download="eager-client.p12"]'), tmp_path / "eager.p12")
    assert load_p12(p12, password=PASSWORD).certificate.subject.rfc4514_string().startswith("CN=eager-client")
    jupyter.screenshot(form, "01-client-issued", folder="workbench")

    _tab(page, "Sign a CSR")
    laptop_key = generate_key("p256")
    request = tmp_path / "my-laptop.csr"
    save_csr(make_csr(laptop_key, "/CN=my-laptop"), request)
    form = page.locator(".kl-sign-csr-form")
    with page.expect_file_chooser() as chooser:  # the upload button opens the file dialog
        form.locator(".kl-csr-upload").click()
    chooser.value.set_files(str(request))
    page.wait_for_function("e => e.innerText.includes('(1)')", arg=form.locator(".kl-csr-upload").element_handle())
    jupyter.click_and_read(form.locator(".kl-sign-csr-button"), form.locator(".kl-result .kl-card"))
    assert "signed my-laptop" in form.locator(".kl-form-message").inner_text()
    link = form.locator('.kl-download-link[download="my-laptop.crt"]')
    crt = jupyter.download(page, link, tmp_path / "my-laptop.crt")
    openssl = shutil.which("openssl")
    if openssl:  # the downloaded certificate holds the laptop's own key
        modulus = subprocess.run([openssl, "x509", "-in", str(crt), "-noout", "-pubkey"], capture_output=True, text=True)
        assert "BEGIN PUBLIC KEY" in modulus.stdout
    jupyter.screenshot(form, "02-csr-signed", folder="workbench")

    _tab(page, "Dashboard")
    dashboard = page.locator(".kl-dashboard")
    message = dashboard.locator(".kl-dashboard-message")
    dashboard.locator('.kl-dashboard-row[data-name="my-laptop"]').wait_for()
    dashboard.locator(".kl-dashboard-filter input").fill("expiring")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.kl-dashboard-row')].map(r => r.dataset.name).join() === 'eager-client'"
    )
    dashboard.locator(".kl-dashboard-filter input").fill("")
    page.wait_for_function("() => document.querySelectorAll('.kl-dashboard-row').length === 4")

    _choose(dashboard, "my-laptop")
    dashboard.locator(".kl-export-button").click()
    page.wait_for_function("e => e.innerText.includes('no p12')", arg=message.element_handle())
    assert "kittylab does not hold my-laptop's private key" in message.inner_text()

    _choose(dashboard, "eager-client")
    question = jupyter.click_and_read(dashboard.locator(".kl-revoke-button"), dashboard.locator(".kl-revoke-question"))
    assert "Revoke eager-client" in question and "cannot be undone" in question
    jupyter.screenshot(dashboard, "03-revoke-asks", folder="workbench")
    with Workspace(home) as workspace:
        assert workspace.find("eager-client").status() == "expiring"  # asking revokes nothing
    dashboard.locator(".kl-revoke-confirm-button").click()
    dashboard.locator('.kl-dashboard-row[data-name="eager-client"] .kl-status-revoked').wait_for()

    dashboard.locator(".kl-publish-crl-button").click()
    page.wait_for_function("e => e.innerText.startsWith('published a new CRL')", arg=message.element_handle())

    _choose(dashboard, "picture-server")
    dashboard.locator(".kl-renew-button").click()
    page.wait_for_function("e => e.innerText.startsWith('renewed picture-server')", arg=message.element_handle())
    jupyter.screenshot(dashboard, "04-dashboard", folder="workbench")
    assert jupyter.error_outputs(page) == []

    with Workspace(home) as workspace:
        assert workspace.find("eager-client").status() == "revoked"
        assert workspace.find("my-laptop").profile == "client" and not workspace.path("my-laptop", "key").exists()
        assert [r.status() for r in workspace.records() if r.name == "picture-server"].count("superseded") == 1
        assert workspace.current_crl().get_revoked_certificate_by_serial_number(workspace.find("eager-client").serial)
