"""nbval runs every notebook in notebooks/ as a regression test (``pytest --nbval``).

This file sits at the root so that notebooks/ holds only the lessons and their data.

Each notebook gets its own empty workspace: ``KITTYLAB_HOME`` points to a fresh temporary
``kitty-workspace/`` from the moment its kernel starts (the kernel inherits this process's
environment) until its last cell ran. So notebooks run from an empty workspace, in any order,
and in parallel under xdist without racing on one folder. tests/notebooks/nbval-sanitize.cfg
is used unless another sanitize file is given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SANITIZE = Path(__file__).parent / "tests" / "notebooks" / "nbval-sanitize.cfg"


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "nbval_sanitize_with", "") is None:
        config.option.nbval_sanitize_with = str(SANITIZE)


def _first_cell_of_notebook(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb" and getattr(item.parent, "kernel", "") is None


_restore = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a notebook's kernel starts (with its first cell), point it to a fresh workspace."""
    if not _first_cell_of_notebook(item):
        return
    folder = Path(tempfile.mkdtemp(prefix=f"kittylab-{item.path.stem}-"))
    previous = os.environ.get("KITTYLAB_HOME")
    os.environ["KITTYLAB_HOME"] = str(folder / "kitty-workspace")

    def restore() -> None:
        if previous is None:
            os.environ.pop("KITTYLAB_HOME", None)
        else:
            os.environ["KITTYLAB_HOME"] = previous
        shutil.rmtree(folder, ignore_errors=True)

    _restore[item.parent] = restore


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """After a notebook's last cell (its kernel stops here), remove its workspace."""
    yield
    if item.parent in _restore and (nextitem is None or nextitem.parent is not item.parent):
        _restore.pop(item.parent)()
