"""Progress: tqdm's text bar on a terminal, its widget in a notebook, nothing when neither."""

from __future__ import annotations

import io
import sys

from kittylab.render.progress import in_kernel, progress_bar


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


def test_terminal_bar_counts_to_the_end(monkeypatch):
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress_bar(3, "issuing") as bar:
        bar.update()
        bar.update(2)
    frames = stream.getvalue().split("\r")
    assert any(frame.startswith("issuing:") and "0/3" in frame for frame in frames)
    assert "3/3" in frames[-1] and "100%" in frames[-1]


def test_unknown_total_counts_without_percent(monkeypatch):
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress_bar(None, "scanning") as bar:
        bar.update(4)
    last = stream.getvalue().split("\r")[-1]
    assert "4" in last and "%" not in last


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress_bar(5, "issuing") as bar:
        bar.update(5)
    assert stream.getvalue() == ""


def test_disabled_bar_draws_nothing_even_on_a_terminal(monkeypatch):
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress_bar(5, "issuing", enabled=False) as bar:
        bar.update(5)
    assert stream.getvalue() == ""


def test_plain_python_is_not_a_kernel():
    assert in_kernel() is False
