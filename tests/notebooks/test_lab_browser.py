"""The workbench in a real JupyterLab, driven by Chromium: create the CA, fill the subject form,
issue a client certificate, see its card, download its p12, find it in the dashboard, revoke it.

One JupyterLab and one notebook run for the module; screenshots go to test-artifacts/lab/.
"""

from __future__ import annotations

import re

import pytest
from support.lab import (
    click_and_read,
    download,
    error_outputs,
    ran_notebook,
    screenshot,
    unrun_cells,
    write_notebook,
)
from support.system import PASSWORD

from kittylab import Workspace, load_p12

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "from kittylab import Workspace\n"
    "from kittylab.ui.widgets import CreateCAForm, Dashboard, IssueClientForm\n"
    'ws = Workspace("kitty-workspace")',
    "from kittylab.ui.tutorial import steps_table\nsteps_table()",
    'display(CreateCAForm(ws, key="p256"))',
    'display(IssueClientForm(ws, key="p256"))',
    "display(Dashboard(ws))",
    "from kittylab.render.trust import trust_diagram\n"
    'other = Workspace("cards-workspace")\n'
    'other.init_ca(key="p256")\n'
    'shown = other.issue("picture-server", profile="server", key="p256", dns=["localhost"])\n'
    "display(shown.certificate, shown.key)\n"
    "trust_diagram(other)",
]
TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def lab_page(tmp_path_factory):
    """A page showing the workbench notebook, all its cells run, in a JupyterLab of its own."""
    folder = tmp_path_factory.mktemp("lab")
    write_notebook(folder / "workbench.ipynb", CELLS)
    write_notebook(folder / "failing.ipynb", ["1 / 0", "print('never runs')"])
    with ran_notebook(folder, "workbench.ipynb", timeout_ms=TIMEOUT_MS, accept_downloads=True) as (lab, page):
        yield page, folder / "kitty-workspace", lab


def _form(page, name: str):
    return page.locator(f".kl-{name}-form").first


def test_kittylab_objects_display_as_cards_and_svg(lab_page):
    page, _, _ = lab_page
    output = page.locator(".jp-Cell").nth(len(CELLS) - 1).locator(".jp-OutputArea")
    certificate = output.locator(".jp-RenderedHTML .kl-card-certificate")
    certificate.wait_for()
    assert "Certificate  " not in certificate.inner_text()  # the HTML card, not the plain text
    assert "DNS:localhost" in certificate.inner_text()
    # a certificate object alone: its dates are checked, its revocation cannot be (no workspace to ask)
    assert certificate.locator(".kl-status-in-date-unchecked").count() == 1
    assert "not checked" in certificate.inner_text()
    key = output.locator(".jp-RenderedHTML .kl-card-key")
    assert "Private key (not shown)" in key.inner_text()
    assert output.locator(".jp-RenderedSVG").count() == 1
    screenshot(output, "00-cards")


#: Every word of every command in the steps table, and the lines its letters are on (a word on two lines broke).
_WORDS_AND_ALIGNMENT = """() => {
  const words = [...document.querySelectorAll('.kl-tutorial-table code span')];
  const broken = words.filter(word => new Set([...word.getClientRects()].map(rect => Math.round(rect.top))).size > 1)
                      .map(word => word.textContent);
  const cells = [...document.querySelectorAll('.kl-tutorial-table td, .kl-tutorial-table th')];
  const commands = [...document.querySelectorAll('.kl-tutorial-table code')];
  return {broken, alignments: [...new Set(cells.map(cell => getComputedStyle(cell).textAlign))],
          codes: commands.length, wrapped: commands.filter(code => code.getClientRects().length > 1).length,
          text: commands.map(code => code.textContent), words: words.length};
}"""


def test_the_steps_table_is_left_aligned_and_breaks_commands_only_between_words(lab_page):
    """Seen in 00-welcome: JupyterLab right-aligned the table and broke commands mid-word."""
    page, _, _ = lab_page
    page.locator(".kl-tutorial-table").first.wait_for()
    seen = page.evaluate(_WORDS_AND_ALIGNMENT)
    assert seen["codes"] >= 17
    assert seen["alignments"] in (["left"], ["start"]), seen["alignments"]
    assert seen["words"] == sum(len(text.split(" ")) for text in seen["text"])  # every word measured
    assert seen["broken"] == [], seen["broken"][:5]
    assert seen["wrapped"] >= 1, "the long commands wrap (between words) instead of widening the table"
    assert "openssl req -x509 -new -key kitty-ca.key" in seen["text"][1]  # copied as typed
    screenshot(page.locator(".kl-tutorial-table").first, "02-steps-table")


def test_workbench_in_jupyterlab(lab_page, tmp_path):
    page, home, _ = lab_page
    ca_form, client_form, dashboard = _form(page, "create-ca"), _form(page, "issue-client"), page.locator(".kl-dashboard")
    ca_form.wait_for()
    dashboard.wait_for()
    assert error_outputs(page) == []
    screenshot(page, "01-forms")

    ca_card = click_and_read(ca_form.locator(".kl-create-ca-button"), ca_form.locator(".kl-result .kl-card"))
    assert "CA certificate kitty-ca" in ca_card
    assert ca_form.locator(".kl-progress").count() == 1, "creating the CA shows a progress widget"
    assert ca_form.locator(".kl-create-ca-button").is_disabled()

    cn = client_form.locator(".kl-field-cn input")
    cn.fill("browser-client")
    country = client_form.locator(".kl-field-c input")
    country.fill("Germany")
    error = client_form.locator(".kl-error-c")
    page.wait_for_function("e => e.textContent.includes('country (C)')", arg=error.element_handle())
    screenshot(client_form.locator(".kl-subject-form"), "02-bad-country")
    assert "at most 2" in error.inner_text()
    country.fill("DE")
    page.wait_for_function("e => e.textContent.trim() === ''", arg=error.element_handle())
    client_form.locator(".kl-field-password input").fill(PASSWORD)
    card = client_form.locator(".kl-result .kl-card")
    text = click_and_read(client_form.locator(".kl-issue-client-button"), card)
    assert "Certificate browser-client" in text and "C=DE" in text and "clientAuth" in text
    assert card.locator(".kl-status-valid").count() == 1
    assert "PRIVATE KEY" not in page.content()
    screenshot(card, "03-issued")

    link = client_form.locator('.kl-download-link[download="browser-client.p12"]')
    bundle = load_p12(download(page, link, tmp_path / "downloaded.p12"), password=PASSWORD)
    assert bundle.certificate.subject.rfc4514_string() == "CN=browser-client,C=DE"

    row = dashboard.locator('.kl-dashboard-row[data-name="browser-client"]')
    row.wait_for()
    assert row.locator(".kl-status-valid").count() == 1
    select = dashboard.locator(".kl-dashboard-select select")
    label = next(o for o in select.locator("option").all_inner_texts() if o.startswith("browser-client"))
    select.select_option(label=label)
    dashboard.locator(".kl-revoke-button").click()
    dashboard.locator(".kl-revoke-confirm-button").click()  # revoking asks first
    row.locator(".kl-status-revoked").wait_for()
    assert re.search(r"revoked browser-client", dashboard.locator(".kl-dashboard-message").inner_text())
    dashboard.locator('.kl-trust-diagram .kl-node-revoked[data-name="browser-client"]').wait_for()
    screenshot(dashboard, "04-revoked")
    assert error_outputs(page) == [], "no warning or traceback anywhere in the notebook"

    with Workspace(home) as workspace:
        assert workspace.find("browser-client").status() == "revoked"
        crl = workspace.current_crl()
        assert crl.get_revoked_certificate_by_serial_number(workspace.find("browser-client").serial) is not None


def test_a_failing_cell_stops_the_run_without_hanging_the_helper(lab_page):
    _, _, lab = lab_page
    with lab.notebook("failing.ipynb", timeout=60) as page:
        assert unrun_cells(page) == [1]
        assert any("ZeroDivisionError" in text for text in error_outputs(page))
