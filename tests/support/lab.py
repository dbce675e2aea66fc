"""A real JupyterLab for browser tests: started on a loopback port with private Jupyter folders,
opened in Debian's Chromium through Playwright (support.browser).

``running_lab(notebook_dir)`` starts ``jupyter lab`` (the venv's, with a kernelspec ``kittylab``
pointing at this interpreter) and yields ``(url, token)``; ``lab_in_chromium(notebook_dir)`` adds
Chromium and yields a ``Lab``, whose ``notebook(path)`` is a page showing that notebook;
``ran_notebook`` is both, for a module's one notebook whose cells all ran.
``open_notebook(page, url, token, path)`` opens a notebook, waits for a connected idle kernel (not
the "Idle" label, which shows too early), runs all cells and waits until they ran.
``write_notebook`` writes a small notebook as JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.browser import ARTIFACTS, chromium
from support.system import free_port

KERNEL_NAME = "kittylab"
START_TIMEOUT = 120.0

_KERNEL_READY = """() => {
    const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const context = widget && widget.sessionContext;
    const kernel = context && context.session && context.session.kernel;
    return !!(kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle' && context.isReady);
}"""
_CURRENT_IS = """async path => {
    const app = window.jupyterapp;
    if (!app) return false;
    await app.restored;
    const widget = app.shell.currentWidget;
    return !!(widget && widget.context && widget.context.path === path && widget.sessionContext);
}"""
# A cell is 'running' from the moment it is queued until its reply; a failing cell makes the
# kernel abort the queued ones, which turn idle without an execution count.
_NONE_RUNNING = """() => {
    const widget = window.jupyterapp.shell.currentWidget;
    const cells = widget.content.widgets.filter(cell => cell.model.type === 'code');
    return cells.length > 0 && cells.every(cell => cell.model.executionState !== 'running');
}"""


def write_notebook(path: Path, cells: list[str], *, kernel: str = KERNEL_NAME) -> Path:
    """A notebook (nbformat 4) of code cells, written as JSON (no nbformat import: it is slow)."""
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": kernel, "display_name": "kittylab (tests)", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": source}
            for i, source in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path


def _install_kernelspec(data_dir: Path) -> None:
    spec = data_dir / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "kittylab (tests)",
                "language": "python",
            }
        )
    )


def _jupyter_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    for variable, folder in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        env[variable] = str(root / folder)
    # No "would you like news?" toast over the page.
    labconfig = root / "config" / "labconfig"
    labconfig.mkdir(exist_ok=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    env.pop("JUPYTER_PATH", None)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


def _wait_until_serving(process: subprocess.Popen, url: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}api/status?token={token}", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"jupyter lab did not answer within {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextlib.contextmanager
def running_lab(notebook_dir: Path, *, trust: bool = False) -> Iterator[tuple[str, str]]:
    """Run JupyterLab on 127.0.0.1 serving ``notebook_dir``; yields ``(url, token)``, url ending in ``/``.

    Its config, data, runtime and IPython folders are private (a temp folder), with a kernelspec
    ``kittylab`` for this interpreter; the server is stopped (its whole process group) on exit.
    With ``trust``, the notebooks in ``notebook_dir`` are trusted first (``jupyter trust``, as
    ``make lab`` does for the learner's copies): JupyterLab then draws their saved widgets.
    """
    with tempfile.TemporaryDirectory(prefix="kittylab-lab-") as folder:
        root = Path(folder)
        env = _jupyter_env(root)
        _install_kernelspec(root / "data")
        if trust:
            notebooks = [str(path) for path in sorted(Path(notebook_dir).glob("*.ipynb"))]
            subprocess.run([sys.executable, "-m", "jupyter", "trust", *notebooks], env=env, check=True,
                           capture_output=True, timeout=120)  # fmt: skip
        token = os.urandom(16).hex()
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        log = root / "lab.log"
        command = [
            sys.executable, "-m", "jupyter", "lab",
            "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={notebook_dir}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]  # fmt: skip
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command, cwd=notebook_dir, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_until_serving(process, url, token, log)
            yield url, token
        finally:
            _stop(process)


@dataclasses.dataclass(frozen=True)
class Lab:
    """A running JupyterLab (``url`` ending in ``/``, ``token``) and a Chromium to open it in."""

    browser: Any
    url: str
    token: str

    @contextlib.contextmanager
    def notebook(self, path: str, *, width: int = 1400, height: int = 1000, timeout_ms: float = 120_000,
                 run_all: bool = True, timeout: float = 180.0, **options) -> Iterator:
        """A new page (viewport ``width`` x ``height``, Playwright's default timeout ``timeout_ms``;
        ``options`` such as ``accept_downloads`` go to ``new_page``) showing notebook ``path``, opened
        as ``open_notebook`` does (with ``run_all`` and ``timeout``); closed on exit."""
        with self.browser.new_page(viewport={"width": width, "height": height}, **options) as page:
            page.set_default_timeout(timeout_ms)
            open_notebook(page, self.url, self.token, path, run_all=run_all, timeout=timeout)
            yield page


@contextlib.contextmanager
def lab_in_chromium(notebook_dir: Path, *, trust: bool = False) -> Iterator[Lab]:
    """``running_lab(notebook_dir, trust=trust)`` and Debian's Chromium; skips (in CI: fails) as
    ``support.browser.sync_playwright`` does, before the server starts."""
    with chromium() as browser, running_lab(notebook_dir, trust=trust) as (url, token):
        yield Lab(browser, url, token)


@contextlib.contextmanager
def ran_notebook(notebook_dir: Path, path: str, *, trust: bool = False, **page_options) -> Iterator[tuple[Lab, Any]]:
    """A module's JupyterLab in Chromium and a page (``Lab.notebook`` with ``page_options``) where
    the notebook ``path`` ran all its cells: the run fails unless every code cell ran."""
    with lab_in_chromium(notebook_dir, trust=trust) as lab, lab.notebook(path, **page_options) as page:
        assert unrun_cells(page) == [], error_outputs(page)
        yield lab, page


def wait_for_kernel(page, *, timeout: float = 90.0) -> None:
    """Wait until the current notebook's kernel is connected, idle and ready."""
    page.wait_for_function(_KERNEL_READY, timeout=timeout * 1000)


def open_notebook(page, url: str, token: str, path: str, *, run_all: bool = True, timeout: float = 180.0) -> None:
    """Open ``path`` (relative to the server's root) in JupyterLab and wait for its kernel; with
    ``run_all``, run all its cells and wait until none is queued or running and the kernel is idle
    again (as in JupyterLab, a failing cell stops the ones after it: check the outputs)."""
    # A JupyterLab workspace of its own: the default one would restore earlier pages' notebooks
    # beside this one, and one of them could end up the current widget.
    layout = f"kl-{os.urandom(6).hex()}"
    page.goto(f"{url}lab/workspaces/{layout}/tree/{path}?token={token}", timeout=timeout * 1000)
    page.wait_for_function(_CURRENT_IS, arg=path, timeout=timeout * 1000)
    wait_for_kernel(page, timeout=timeout)
    if not run_all:
        return
    page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function(_NONE_RUNNING, timeout=timeout * 1000)
    wait_for_kernel(page, timeout=timeout)


def run_cells(page, command: str, *, containing: str, timeout: float = 180.0) -> None:
    """Make the code cell whose source contains ``containing`` the active one, run a notebook command
    there (``notebook:run-cell``, ``notebook:run-all-above``, ``notebook:run-all-below``), as a
    learner would from the Run menu, and wait until no cell runs."""
    page.evaluate(
        """async ([text, command]) => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            const index = notebook.widgets.findIndex(cell => cell.model.type === 'code' && cell.model.sharedModel.getSource().includes(text));
            if (index < 0) throw new Error(`no cell holds ${text}`);
            notebook.activeCellIndex = index;
            notebook.deselectAll();
            await window.jupyterapp.commands.execute(command);
        }""",
        [containing, command],
    )
    page.wait_for_function(_NONE_RUNNING, timeout=timeout * 1000)
    wait_for_kernel(page, timeout=timeout)


def unrun_cells(page) -> list[int]:
    """The indexes of the open notebook's code cells that have not run (no execution count)."""
    return page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
            .map((cell, index) => [cell, index])
            .filter(([cell]) => cell.model.type === 'code' && cell.model.executionCount === null)
            .map(([, index]) => index)"""
    )


def error_outputs(page) -> list[str]:
    """The text of every stderr stream and error output in the open notebook (warnings land there)."""
    return page.locator(
        '[data-mime-type="application/vnd.jupyter.stderr"], [data-mime-type="application/vnd.jupyter.error"]'
    ).all_inner_texts()


def click_and_read(button, shown) -> str:
    """Click ``button`` (a Playwright locator), wait until ``shown`` (another) appears, and return its text."""
    button.click()
    shown.wait_for()
    return shown.inner_text()


def download(page, link, target: Path) -> Path:
    """Click ``link`` (a locator) on ``page``, save what it downloads as ``target`` and return that path."""
    with page.expect_download() as started:
        link.click()
    started.value.save_as(target)
    return target


def screenshot(target, name: str, *, folder: str = "lab") -> Path:
    """Save a screenshot of a page or of one element (a Playwright locator, scrolled into view)
    as test-artifacts/FOLDER/NAME.png (gitignored) and return its path."""
    path = ARTIFACTS / folder / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(target, "scroll_into_view_if_needed"):
        target.scroll_into_view_if_needed()
    target.screenshot(path=str(path))
    return path
