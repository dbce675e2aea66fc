"""Every notebook in notebooks/ in a real JupyterLab, driven by Chromium: run all cells, then check
that no cell shows an error and that every widget rendered (no "Error displaying widget").

The notebooks folder is copied to a temporary one first, so the run (and JupyterLab's autosave)
never touches the committed ones; they share one workspace there, as a learner's would.
One JupyterLab for the module; a failing notebook leaves a screenshot in test-artifacts/notebooks/.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import pytest
from support.lab import error_outputs, lab_in_chromium, run_cells, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
TIMEOUT_MS = 120_000

# Each code cell's outputs, from its model (errors) and its drawing (widgets, once brought into view:
# cells outside the viewport may not be drawn).
_OUTPUTS = """async () => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    const errors = [], widgets = [];
    for (let c = 0; c < notebook.widgets.length; c++) {
        const cell = notebook.widgets[c];
        if (cell.model.type !== 'code') continue;
        await notebook.scrollToItem(c, 'start');
        const area = cell.outputArea;
        for (let i = 0; i < area.model.length; i++) {
            const output = area.model.get(i).toJSON();
            if (output.output_type === 'error') errors.push(`cell ${c}: ${output.ename}: ${output.evalue}`);
            if (output.data && output.data['application/vnd.jupyter.widget-view+json']) {
                const node = area.widgets[i] && area.widgets[i].node;
                widgets.push({cell: c, drawn: !!(node && node.querySelector('.jupyter-widgets')),
                              text: node ? node.innerText.slice(0, 200) : ''});
            }
        }
    }
    return {errors, widgets};
}"""
_ALL_WIDGETS_DRAWN = f"""async () => {{
    const {{widgets}} = await ({_OUTPUTS})();
    return widgets.every(w => w.drawn || w.text.includes('Error displaying widget'));
}}"""
_SHUT_DOWN = "async () => { await window.jupyterapp.shell.currentWidget.sessionContext.shutdown(); }"


@pytest.fixture(scope="module")
def tutorial_folder(tmp_path_factory) -> Path:
    """A copy of the notebooks and the data files they read (e.g. the workshop's roster), not a
    learner's workspace: their kitty-workspace is made inside it."""
    folder = tmp_path_factory.mktemp("tutorial") / "notebooks"
    shutil.copytree(NOTEBOOKS[0].parent, folder, ignore=shutil.ignore_patterns("kitty-workspace", ".*", "__pycache__"))
    return folder


@pytest.fixture(scope="module")
def lab(tutorial_folder):
    """A JupyterLab serving a copy of every notebook, and Chromium to open them."""
    with lab_in_chromium(tutorial_folder, trust=True) as lab:
        yield lab


@contextlib.contextmanager
def notebook(lab, name: str, **options):
    """A page showing the notebook (``options`` as for ``Lab.notebook``); once the checks passed,
    its kernel is shut down (a failing test leaves it as it was)."""
    with lab.notebook(name, timeout_ms=TIMEOUT_MS, **options) as page:
        yield page
        page.evaluate(_SHUT_DOWN)


def wait_to_draw(page, condition: str, arg=None) -> None:
    """Give the widgets up to 30 s to draw (``condition`` true); past that, the assertions after
    this say which widget was not drawn."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(condition, arg=arg, timeout=30_000, polling=500)


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab_without_errors(lab, name):
    with notebook(lab, name) as page:
        wait_to_draw(page, _ALL_WIDGETS_DRAWN)
        outputs = page.evaluate(_OUTPUTS)
        broken = [w for w in outputs["widgets"] if not w["drawn"] or "Error displaying widget" in w["text"]]
        if outputs["errors"] or broken:
            screenshot(page, name.removesuffix(".ipynb"), folder="notebooks")
        assert not outputs["errors"], f"{name}: cells raised {outputs['errors']}"
        assert not broken, f"{name}: widgets not displayed: {broken}"
        assert "Error displaying widget" not in page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden)")



_CELL_WIDGET_DRAWN = """c => {
    const node = window.jupyterapp.shell.currentWidget.content.widgets[c].outputArea.node;
    return !!node.querySelector('.jupyter-widgets') && !node.innerText.includes('Loading widget');
}"""


@pytest.mark.parametrize("name", ["04-eager-client.ipynb", "90-workshop.ipynb"])
def test_an_unrun_notebook_shows_its_widgets(lab, name):
    """Opened before any cell runs, the saved widget state draws the forms and dashboards
    instead of their text (``KeyChoice(children=(Dropdown...``)."""
    with notebook(lab, name, run_all=False) as page:
        for widget in page.evaluate(_OUTPUTS)["widgets"]:  # bring each into view, then let it draw
            page.evaluate("async c => { await window.jupyterapp.shell.currentWidget.content.scrollToItem(c, 'start'); }",
                          widget["cell"])  # fmt: skip
            wait_to_draw(page, _CELL_WIDGET_DRAWN, widget["cell"])
        widgets = page.evaluate(_OUTPUTS)["widgets"]
        if not widgets or not all(w["drawn"] for w in widgets):
            screenshot(page, f"unrun-{name.removesuffix('.ipynb')}", folder="notebooks")
        assert widgets, f"{name}: no widget output saved"
        assert all(w["drawn"] for w in widgets), f"{name}: widgets not drawn before running: {widgets}"
        assert not any("children=(" in w["text"] for w in widgets)


_LABEL_LINES = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .kl-greeting dt')].map(dt => {
    const range = document.createRange();
    range.selectNodeContents(dt);  // the text's own line boxes: the label's box stretches with its row
    return {text: dt.textContent, lines: new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size};
})"""


def test_the_gallerys_labels_stay_on_one_line(lab):
    """Seen in 05-connect: the greeting's label wrapped ("Your / certificate") in JupyterLab's output."""
    with notebook(lab, "05-connect.ipynb", width=1000) as page:
        greeting = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .kl-greeting").first
        greeting.scroll_into_view_if_needed()
        labels = page.evaluate(_LABEL_LINES)
        screenshot(greeting, "gallery-greeting", folder="notebooks")
        assert [label["text"] for label in labels] == ["Your certificate", "Serial", "Valid until", "Issued by"]
        assert all(label["lines"] == 1 for label in labels), labels


_ALL_OUTPUT_TEXT = """() => window.jupyterapp.shell.currentWidget.content.widgets
    .filter(cell => cell.model.type === 'code')
    .flatMap(cell => Array.from({length: cell.outputArea.model.length}, (_, i) => cell.outputArea.model.get(i).toJSON()))
    .map(o => o.text || (o.data && o.data['text/plain']) || (o.traceback || []).join('\\n') || '')
    .join('\\n')"""


def test_04_with_a_learners_own_values(lab, tutorial_folder):
    """As the learner did in JupyterLab: the form set to CN my-laptop and their own email, then
    every cell from the form on; the CA's signing cell once more. The files are my-laptop's, the
    email is the only alternative name, OpenSSL agrees, and no cell shows an error."""
    from cryptography import x509

    from kittylab import load_csr
    from kittylab.pki.ca import load_certificate
    from kittylab.pki.openssl import sans_of

    started = time.time()
    with notebook(lab, "04-eager-client.ipynb", run_all=False) as page:
        run_cells(page, "notebook:run-all-above", containing="client_form = SubjectForm(")
        run_cells(page, "notebook:run-cell", containing="client_form = SubjectForm(")
        for field, wrong, value in (("cn", "", "my-laptop"), ("email", "no-address", "learner@example.org")):
            # A wrong value first: its message comes from the kernel, so the field is the live one.
            page.locator(f".kl-subject-form .kl-field-{field} input").fill(wrong)
            error = page.locator(f".kl-subject-form .kl-error-{field}").element_handle()
            page.wait_for_function("e => e.textContent.trim() !== ''", arg=error)
            page.locator(f".kl-subject-form .kl-field-{field} input").fill(value)
            page.wait_for_function("e => e.textContent.trim() === ''", arg=error)
        run_cells(page, "notebook:run-all-below", containing="own_commands(client_form)")
        run_cells(page, "notebook:run-cell", containing="client = sign_own(")  # the learner runs it again
        text = page.evaluate(_ALL_OUTPUT_TEXT)  # from the models: JupyterLab draws only the cells in view
        problems = error_outputs(page) + [line for line in text.splitlines() if "Error" in line]
        if problems or "my-laptop.crt: OK" not in text:
            screenshot(page, "04-own-values", folder="notebooks")
        assert problems == [], problems
        assert "my-laptop.crt: OK" in text and "they DISAGREE" not in text
        assert "my-laptop.csr is signed already" in text
        home = tutorial_folder / "kitty-workspace"
        made = sorted(p.name for p in home.iterdir() if p.name.startswith("my-laptop"))
        assert made == ["my-laptop-legacy.p12", "my-laptop.crt", "my-laptop.csr", "my-laptop.key", "my-laptop.p12"]
        # The module's other tests may have run 04 with its defaults in this folder first:
        # nothing of this run went to eager-client's files.
        assert [p.name for p in home.glob("eager-client*") if p.stat().st_mtime >= started] == []
        certificate = load_certificate(home / "my-laptop.crt")
        assert sans_of(load_csr(home / "my-laptop.csr")) == sans_of(certificate) == ["email:learner@example.org"]
        assert not certificate.subject.get_attributes_for_oid(x509.NameOID.EMAIL_ADDRESS)
