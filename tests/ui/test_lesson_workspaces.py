"""The lessons beyond the story (80-83, 90) work in workspaces of their own: the learner's
kitty-ca from notebooks 01-07, and the p12 they imported from it, stay as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kittylab.ui.tutorial import REVOCATION, SUMMARY, lesson_home, prepare

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_the_workshop_leaves_the_story_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("KITTYLAB_HOME", str(tmp_path / "kitty-workspace"))
    story = prepare(SUMMARY)
    ca_serial, p12 = story.ca.certificate.serial_number, story.path("eager-client", "p12").read_bytes()

    workshop = prepare(REVOCATION, home=lesson_home("workshop"))
    assert workshop.home == tmp_path / "kitty-workspace" / "workshop"
    assert workshop.ca.certificate.serial_number != ca_serial
    assert story.ca.certificate.serial_number == ca_serial
    assert story.path("eager-client", "p12").read_bytes() == p12

    # Running the story again sets its own files aside, never another lesson's workspace.
    again = prepare(9)
    assert (again.home / "workshop" / "kitty-ca.crt").exists()
    assert not list((again.home / "earlier-runs").glob("*/workshop"))


@pytest.mark.parametrize("name", ["80-two-cas", "81-ocsp", "82-renewal", "83-migration", "90-workshop"])
def test_lessons_beyond_the_story_open_their_own_workspace(name):
    first = "".join(next(c for c in json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
                        if c["cell_type"] == "code")["source"])  # fmt: skip
    assert "lesson_home(" in first or ('Path(os.environ.get("KITTYLAB_HOME"' in first and "Workspace(home)" in first)
    assert "prepare(REVOCATION)" not in first and "prepare(SUMMARY)" not in first
