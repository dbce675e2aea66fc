"""Progress for long work: a widget in a notebook, a text bar on a terminal, nothing elsewhere.

``with Progress(total=n, description="issuing") as bar: bar.advance()`` picks its face once:
in a Jupyter kernel an ipywidgets bar (CSS class ``kl-progress``) with a label showing the
count, the rate and the time left; on a terminal a one-line text bar on stderr; silent when
neither (a pipe, a log file, pytest's captured output), so scripts and logs stay clean.
``total=None`` means the amount of work is not known: the count and rate are shown, no ETA.
"""

from __future__ import annotations

import sys
import time
from typing import IO

#: Redraw at most this often (seconds): a thousand quick steps must not cost a thousand redraws.
REDRAW_EVERY = 0.1
BAR_WIDTH = 24


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget can be shown), False in plain Python."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def format_duration(seconds: float) -> str:
    """``0:07``, ``2:05``, ``1:02:03``: minutes and seconds, hours when needed."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Shows how far long work has come and when it will end; use as a context manager.

    ``stream`` is where a terminal bar goes (default stderr); it is drawn only if the stream is
    a terminal. ``widget`` forces (True) or forbids (False) the notebook widget; by default it is
    used inside a Jupyter kernel. ``quiet`` shows nothing at all (the counts are still kept).
    """

    def __init__(
        self,
        total: int | None,
        description: str = "",
        *,
        stream: IO[str] | None = None,
        widget: bool | None = None,
        quiet: bool = False,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError("total must be a positive number of steps, or None if unknown")
        self.total = total
        self.description = description
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._quiet = quiet
        self._use_widget = not quiet and (in_kernel() if widget is None else widget)
        self._started = time.monotonic()
        self._last_draw = float("-inf")
        self._widgets = None
        #: The notebook widget (an HBox of bar and label), or None outside a notebook.
        self.widget = None
        self._text_width = 0
        self.finished = False

    # -- the numbers -------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    @property
    def rate(self) -> float | None:
        """Steps per second so far, or None before the first step."""
        elapsed = self.elapsed
        return self.done / elapsed if self.done and elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, or None when it cannot be told."""
        rate = self.rate
        if self.total is None or not rate:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def status(self) -> str:
        """``12/100 · 34.5/s · ETA 0:03`` (or ``done in 0:04`` at the end)."""
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [count]
        rate = self.rate
        if rate:
            parts.append(f"{rate:.1f}/s")
        if self.finished:
            complete = self.total is None or self.done >= self.total
            parts.append(f"{'done in' if complete else 'stopped after'} {format_duration(self.elapsed)}")
        elif self.eta is not None:
            parts.append(f"ETA {format_duration(self.eta)}")
        elif self.done == 0:
            parts.append("starting")
        return " · ".join(parts)

    # -- the faces ---------------------------------------------------------------------------

    def __enter__(self) -> "Progress":
        self._started = time.monotonic()
        if self._use_widget:
            self._show_widget()
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more steps done."""
        self.done += n
        self._draw(force=self.total is not None and self.done >= self.total)

    def close(self) -> None:
        """Draw the final state (and end the terminal line)."""
        if self.finished:
            return
        self.finished = True
        self._draw(force=True)
        if self._drawing_text():
            self._stream.write("\n")
            self._stream.flush()

    def _drawing_text(self) -> bool:
        if self._use_widget or self._quiet:
            return False
        isatty = getattr(self._stream, "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # a closed stream
            return False

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < REDRAW_EVERY:
            return
        self._last_draw = now
        if self._widgets is not None:
            bar, label = self._widgets
            bar.value = min(self.done, bar.max) if self.total is not None else int(self.finished)
            if self.finished:
                bar.bar_style = "success"
            label.value = self._label()
        elif self._drawing_text():
            line = self._text_line()
            padding = " " * max(0, self._text_width - len(line))
            self._text_width = len(line)
            self._stream.write(f"\r{line}{padding}")
            self._stream.flush()

    def _label(self) -> str:
        return f"{self.description}: {self.status()}" if self.description else self.status()

    def _text_line(self) -> str:
        if self.total is not None:
            fraction = min(1.0, self.done / self.total) if self.total else 1.0
            filled = int(BAR_WIDTH * fraction)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            percent = f"{int(100 * fraction):3d}%"
        else:
            bar = "-\\|/"[self.done % 4] if not self.finished else " "
            percent = ""
        head = f"{self.description} " if self.description else ""
        return f"{head}[{bar}] {percent} {self.status()}".replace("  ", " ")

    def _show_widget(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        bar = widgets.IntProgress(
            value=0,
            min=0,
            max=self.total if self.total else 1,
            bar_style="info" if self.total is not None else "",
            layout=widgets.Layout(width="40%"),
        )
        label = widgets.Label(value=self._label())
        box = widgets.HBox([bar, label])
        box.add_class("kl-progress")
        self._widgets = (bar, label)
        self.widget = box
        display(box)
