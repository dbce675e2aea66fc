"""Progress for long work, drawn by tqdm: an ipywidgets bar in a notebook, a text bar on a terminal.

Elsewhere (a pipe, a log file, pytest's captured output) nothing is drawn, so scripts and logs
stay clean. The bar counts, shows the rate and, when the total is known, the time left.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys

from tqdm import tqdm


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget can be shown), False in plain Python."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_bar(total: int | None, description: str, *, enabled: bool = True) -> tqdm:
    """A bar to ``update(n)`` and ``close()`` (or use in ``with``); ``total=None``: unknown amount of work."""
    if enabled and in_kernel() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as notebook_bar

        bar = notebook_bar(total=total, desc=description)
        bar.container.add_class("kl-progress")
        return bar
    stream = sys.stderr
    drawn = enabled and hasattr(stream, "isatty") and stream.isatty()
    # A terminal that reports no size (a pseudo-terminal under `script`) counts as 80x24.
    size = shutil.get_terminal_size()
    return tqdm(total=total, desc=description, file=stream, disable=not drawn, ncols=size.columns, nrows=size.lines)
