"""A learner runs and saves the lessons in working copies (`make lab`), `make test` keeps comparing
the committed ones, and `make reset-lesson` puts a lesson back in one command."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support.system import require_binary

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted(path.name for path in (ROOT / "notebooks").iterdir())


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_binary("make"), "-s", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)


def _saved_by_a_learner(path: Path) -> None:
    """What JupyterLab writes after a run: new outputs and execution counts."""
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = 99
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["my own run\n"]}]
    path.write_text(json.dumps(notebook))


def test_lessons_are_copied_once_and_reset_one_by_one(tmp_path):
    mine = tmp_path / "my-notebooks"
    assert make("lessons", f"MY_NOTEBOOKS={mine}").returncode == 0
    assert sorted(path.name for path in mine.iterdir()) == LESSONS
    lesson, other = mine / "03-web-server.ipynb", mine / "04-eager-client.ipynb"
    for path in (lesson, other):
        _saved_by_a_learner(path)
    edited = other.read_bytes()

    make("lessons", f"MY_NOTEBOOKS={mine}")  # `make lab` again: the learner's runs stay
    assert b"my own run" in lesson.read_bytes() and other.read_bytes() == edited

    saved = lesson.read_bytes()
    done = make("reset-lesson", "LESSON=03", f"MY_NOTEBOOKS={mine}")
    assert done.returncode == 0, done.stderr
    kept = mine / "earlier-runs" / lesson.name
    assert done.stdout.splitlines() == [f"reset {lesson}", f"  your copy was kept as {kept} (replacing the one kept before)"]
    assert lesson.read_bytes() == (ROOT / "notebooks" / lesson.name).read_bytes()
    assert kept.read_bytes() == saved  # the learner's runs are not lost
    assert other.read_bytes() == edited  # only the lesson asked for

    done = make("reset-lesson", "LESSON=all", f"MY_NOTEBOOKS={mine}")
    assert done.returncode == 0
    assert other.read_bytes() == (ROOT / "notebooks" / other.name).read_bytes()
    assert (mine / "earlier-runs" / other.name).read_bytes() == edited
    assert kept.read_bytes() == saved  # 03 was as committed: nothing replaced what was kept of it
    assert f"reset {lesson}\n" in done.stdout and f"kept as {kept}" not in done.stdout


@pytest.mark.parametrize("lesson", ["", "3", "77", "03; rm -rf /"])
def test_reset_lesson_says_what_to_give(tmp_path, lesson):
    done = make("reset-lesson", f"LESSON={lesson}", f"MY_NOTEBOOKS={tmp_path}")
    assert done.returncode != 0
    assert done.stderr.startswith("make reset-lesson: ")
    assert list(tmp_path.iterdir()) == []


def test_the_suite_never_collects_the_working_copies():
    """Saved outputs in my-notebooks/ cannot fail `make test`: pytest does not look there, and git ignores it."""
    text = (ROOT / "pyproject.toml").read_text()
    assert 'testpaths = ["tests", "notebooks"]' in text
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "my-notebooks/x.ipynb"], timeout=30)
    assert ignored.returncode == 0
    makefile = (ROOT / "Makefile").read_text()
    assert "--notebook-dir=$(MY_NOTEBOOKS)" in makefile and "MY_NOTEBOOKS ?= my-notebooks" in makefile


def test_resetting_a_lesson_with_its_own_workspace_moves_it_aside(tmp_path):
    """08's workbench (and 80-83, 90) keep their state in a workspace of their own: resetting the lesson
    moves it aside (one kept), so the lesson starts over; the story's workspace (01-07) stays."""
    mine = tmp_path / "my-notebooks"
    workspaces = mine / "kitty-workspace"
    for name in ("workbench", "workshop", "workshop-ca"):
        (workspaces / name).mkdir(parents=True)
        (workspaces / name / "kittylab.sqlite3").write_text(f"{name} run 1")
    (workspaces / "kitty-ca.crt").write_text("the story's CA")
    done = make("reset-lesson", "LESSON=08", f"MY_NOTEBOOKS={mine}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == (f"  its workspace kitty-workspace/workbench/ was moved aside to {workspaces}/earlier-runs/"
                                           "workbench/ (replacing the one set aside before): the lesson starts over")
    assert not (workspaces / "workbench").exists() and (workspaces / "workshop").is_dir()
    (workspaces / "workbench").mkdir()
    (workspaces / "workbench" / "kittylab.sqlite3").write_text("workbench run 2")
    assert make("reset-lesson", "LESSON=all", f"MY_NOTEBOOKS={mine}").returncode == 0
    runs = workspaces / "earlier-runs"
    assert sorted(path.name for path in runs.iterdir()) == ["workbench", "workshop", "workshop-ca"]
    assert (runs / "workbench" / "kittylab.sqlite3").read_text() == "workbench run 2"  # one kept, no pile of keys
    assert (workspaces / "kitty-ca.crt").is_file()


def test_make_lessons_names_the_copies_older_than_the_repository(tmp_path):
    """After a `git pull`, `make lessons` keeps the learner's copies but says which lessons changed since."""
    mine = tmp_path / "my-notebooks"
    assert make("lessons", f"MY_NOTEBOOKS={mine}").stdout == ""
    copy = mine / "03-web-server.ipynb"
    _saved_by_a_learner(copy)
    os.utime(copy, (0, 0))  # saved before the repository's lesson changed
    done = make("lessons", f"MY_NOTEBOOKS={mine}")
    assert done.returncode == 0 and b"my own run" in copy.read_bytes()
    assert done.stdout == (f"make lessons: {copy} is older than the repository's lesson (it changed since your copy):"
                           " make reset-lesson LESSON=03 takes the new one (your copy is kept in earlier-runs/)\n")


@pytest.mark.parametrize("route", ["### With Miniconda, by hand", "### With pip, by hand"])
def test_every_install_route_of_the_readme_says_to_work_on_copies(route):
    """A learner following a by-hand route saved runs into notebooks/ and `pytest` failed 20 notebook tests."""
    section = (ROOT / "README.md").read_text().split(route, 1)[1].split("\n### ", 1)[0]
    assert "make lessons" in section and "jupyter lab my-notebooks/" in section and "never in `notebooks/`" in section


def _code_cell(notebook: dict, source: str) -> dict:
    notebook["cells"].insert(0, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                 "source": source.splitlines(keepends=True)})
    return notebook


def test_make_lessons_names_a_copy_an_older_kittylab_made(tmp_path):
    """A copy kept from before the modules moved imports `kittylab.tutorial`: one line says so and how to refresh it,
    not a ModuleNotFoundError in its first cell; a copy of today's lesson, or one with a magic in it, says nothing."""
    mine = tmp_path / "my-notebooks"
    assert make("lessons", f"MY_NOTEBOOKS={mine}").stdout == ""
    old, gone, fine = mine / "03-web-server.ipynb", mine / "81-ocsp.ipynb", mine / "04-eager-client.ipynb"
    old.write_text(json.dumps(_code_cell(json.loads(old.read_text()),
                                         "%load_ext kittylab\nfrom kittylab.tutorial import P, prepare\nimport kittylab.client\n")))
    gone.write_text(json.dumps(_code_cell(json.loads(gone.read_text()), "from kittylab.net.webconfig import (nginx_config,\n"
                                                                        "    RunningSite)\nfrom kittylab import Workspace\n")))
    fine.write_text(json.dumps(_code_cell(json.loads(fine.read_text()), "!ls\nfrom kittylab.ui.tutorial import prepare\n")))
    done = make("lessons", f"MY_NOTEBOOKS={mine}")
    assert done.returncode == 0 and "from kittylab.tutorial" in old.read_text()  # kept, as every copy is
    assert done.stdout.splitlines() == [
        f"make lessons: {old} is from an older kittylab: it imports kittylab.tutorial, kittylab.client, which this"
        " kittylab no longer has, so it would stop at its first import: make reset-lesson LESSON=03 takes the current"
        " lesson (your copy is kept in earlier-runs/)",
        f"make lessons: {gone} is from an older kittylab: it imports kittylab.net.webconfig.RunningSite, which this"
        " kittylab no longer has, so it would stop at its first import: make reset-lesson LESSON=81 takes the current"
        " lesson (your copy is kept in earlier-runs/)",
    ]
    assert make("reset-lesson", "LESSON=03", f"MY_NOTEBOOKS={mine}").returncode == 0
    assert str(old) not in make("lessons", f"MY_NOTEBOOKS={mine}").stdout
