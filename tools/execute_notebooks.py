"""Re-execute tutorial notebooks in place, as nbval runs them, so that their committed outputs match.

    python tools/execute_notebooks.py notebooks/03-web-server.ipynb ...

Each notebook runs with notebooks/ as its working folder and a fresh, temporary KITTYLAB_HOME
(as conftest.py gives nbval), in this environment's Python. The widgets' state is saved in the
notebook's metadata, so a notebook opened before it runs shows its forms and dashboards, not
their text. Exits non-zero if a cell raised.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(path: Path) -> list[str]:
    """Run every cell of ``path`` and write it back; returns the errors its cells raised."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix=f"kittylab-{path.stem}-") as folder:
        os.environ["KITTYLAB_HOME"] = str(Path(folder) / "kitty-workspace")
        client = NotebookClient(
            notebook, timeout=300, kernel_name="python3", store_widget_state=True,
            resources={"metadata": {"path": str(path.parent)}},
        )  # fmt: skip
        client.execute()
    nbformat.write(notebook, path)
    return [f"{o.ename}: {o.evalue}" for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def main(argv: list[str]) -> int:
    paths = [Path(arg).resolve() for arg in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    failed = 0
    for path in paths:
        errors = execute(path)
        failed += bool(errors)
        print(f"{path.name}: " + ("; ".join(errors) if errors else "ok"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
