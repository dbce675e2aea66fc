"""Progress: a text bar with ETA on a terminal, a widget in a notebook, nothing when neither."""

from __future__ import annotations

import io
import time

import pytest

from kittylab.render.progress import REDRAW_EVERY, Progress, format_duration, in_kernel


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


def test_terminal_bar_counts_to_the_end_with_eta_and_final_line():
    stream = FakeTerminal()
    with Progress(3, "issuing", stream=stream) as bar:
        bar.advance()
        bar.advance(2)
    text = stream.getvalue()
    frames = text.split("\r")
    assert frames[1].startswith("issuing [") and "0/3" in frames[1] and "starting" in frames[1]
    assert "3/3" in frames[-1] and "100%" in frames[-1] and "done in 0:00" in frames[-1]
    assert "#" * 24 in frames[-1]
    assert text.endswith("\n") and text.count("\n") == 1
    assert bar.done == 3 and bar.finished


def test_eta_is_shown_while_work_remains():
    stream = FakeTerminal()
    with Progress(10, "issuing", stream=stream) as bar:
        time.sleep(REDRAW_EVERY)  # redraws are throttled
        bar._started -= 2.0  # two seconds have passed...
        bar.advance(5)  # ...for half the work: about two more seconds to go
        assert bar.eta == pytest.approx(2.0, abs=0.2)
        assert "ETA 0:02" in bar.status() and "/s" in bar.status()
    assert "ETA 0:02" in stream.getvalue()
    assert "5/10" in stream.getvalue().split("\r")[-1] and "stopped after 0:02" in stream.getvalue()


def test_unknown_total_counts_without_percent_or_eta():
    stream = FakeTerminal()
    with Progress(None, "scanning", stream=stream) as bar:
        bar.advance(4)
    last = stream.getvalue().split("\r")[-1]
    assert "4" in last and "%" not in last and "ETA" not in last and "done in" in last
    assert bar.eta is None


def test_silent_when_not_a_terminal_nor_a_notebook():
    stream = io.StringIO()
    with Progress(5, "issuing", stream=stream) as bar:
        bar.advance(5)
    assert stream.getvalue() == ""
    assert bar.widget is None and not in_kernel()


def test_quiet_shows_nothing_even_on_a_terminal():
    stream = FakeTerminal()
    with Progress(2, "issuing", stream=stream, quiet=True) as bar:
        bar.advance(2)
    assert stream.getvalue() == "" and bar.done == 2


def test_widget_bar_and_label_follow_the_work(capsys):
    with Progress(4, "issuing", widget=True) as bar:
        box = bar.widget
        assert "kl-progress" in box._dom_classes
        progress, label = box.children
        assert progress.max == 4 and progress.value == 0 and "0/4" in label.value
        bar.advance(4)
    assert progress.value == 4 and progress.bar_style == "success"
    assert label.value.startswith("issuing: 4/4") and "done in" in label.value
    capsys.readouterr()  # outside a kernel, display() printed the widget's repr


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (7.4, "0:07"), (125, "2:05"), (3723, "1:02:03")])
def test_durations_read_like_a_clock(seconds, text):
    assert format_duration(seconds) == text


def test_negative_total_is_refused():
    with pytest.raises(ValueError):
        Progress(-1)
