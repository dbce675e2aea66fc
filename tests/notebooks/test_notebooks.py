"""The tutorial notebooks as files (every notebook in notebooks/, whoever wrote it), and kittylab.ui.tutorial.

nbval runs the notebooks themselves (``pytest --nbval``, see the root conftest.py); these tests
check what nbval does not: no private key in stored outputs, the project's kernelspec, the
seventeen steps all covered in order, outputs committed, the sanitize file, and the helpers the
notebooks call. Notebooks are read as JSON: importing nbformat costs seconds.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from kittylab import KittylabError, Subject, generate_key, make_csr
from kittylab.pki import openssl
from kittylab.pki.keys import key_to_pem
from kittylab.ui.tutorial import (
    CA_SUBJECT,
    EARLIER_RUNS_KEPT,
    EXERCISES,
    P12_PASSWORD,
    REVOCATION,
    STEPS,
    SUMMARY,
    exercise,
    openssl_side_by_side,
    prepare,
    scrub_private_keys,
    steps_table,
    workspace_files,
)

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: The story's notebooks: the numbered sequence 00-09 that the welcome notebook lists.
STORY = [path for path in NOTEBOOKS if path.name[:1] == "0"]
#: The project's kernelspec: the environment's own Python (nbval runs it with --nbval-current-env).
KERNELSPEC = {"name": "python3", "language": "python"}
#: What betrays key material in an output: a PEM private key, or a p12 file inlined as data.
KEY_MATERIAL = re.compile(r"PRIVATE KEY|data:application/x-pkcs12|data:application/octet-stream;base64,MII")
STEP_HEADING = re.compile(r"^## Step (\d+) · ", re.MULTILINE)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def stored_text(notebook: dict) -> str:
    """Everything a notebook stores besides its sources: outputs and metadata (widget state included)."""
    outputs = [cell.get("outputs", []) for cell in notebook["cells"]]
    return json.dumps([outputs, notebook.get("metadata", {})])


def _sources(notebook: dict, kind: str) -> str:
    return "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == kind)


# -- every notebook --------------------------------------------------------------------------------


def test_there_are_notebooks():
    assert len(STORY) >= 8, [path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_private_key_material_in_stored_outputs(path):
    found = KEY_MATERIAL.findall(stored_text(_load(path)))
    assert not found, f"{path.name} stores key material in its outputs: {found[:3]}"


def test_the_key_scan_finds_a_key_in_an_output():
    pem = key_to_pem(generate_key("p256")).decode()
    notebook = {"cells": [{"cell_type": "code", "source": [], "outputs": [{"output_type": "stream", "text": pem}]}]}
    assert KEY_MATERIAL.search(stored_text(notebook))
    assert not KEY_MATERIAL.search(stored_text({"cells": [], "metadata": {}}))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_kernelspec_is_the_projects(path):
    spec = _load(path)["metadata"].get("kernelspec", {})
    assert {key: spec.get(key) for key in KERNELSPEC} == KERNELSPEC, f"{path.name}: kernelspec {spec}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_numbered_name(path):
    assert re.fullmatch(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*\.ipynb", path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_outputs_are_committed(path):
    """Every code cell ran (nbval compares against the stored outputs), and the notebook shows something."""
    code = [cell for cell in _load(path)["cells"] if cell["cell_type"] == "code"]
    unrun = [i for i, cell in enumerate(code) if cell.get("execution_count") is None]
    assert not unrun, f"{path.name}: code cells {unrun} have no stored run"
    assert any(cell.get("outputs") for cell in code)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def widget_state_problems(notebook: dict) -> list[str]:
    """Widget outputs that a notebook opened before it runs could not draw: their model (and the
    models it refers to) must be in the widget state saved in the notebook's metadata."""
    state = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    problems = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            pending, seen = [view["model_id"]], set()
            while pending:
                model = pending.pop()
                if model in seen:
                    continue
                seen.add(model)
                if model not in state:
                    problems.append(f"cell {index}: widget model {model} is not in the saved widget state")
                    continue
                text = json.dumps(state[model].get("state", {}))
                pending += re.findall(r'"IPY_MODEL_([0-9a-f]{32})"', text)
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_widget_state_is_saved(path):
    """Opened before it runs (JupyterLab, nbconvert), a notebook shows its forms and dashboards,
    not their text (``KeyChoice(children=(Dropdown...``): tools/execute_notebooks.py saves it."""
    assert not widget_state_problems(_load(path)), widget_state_problems(_load(path))[:3]


def test_the_widget_state_check_finds_a_missing_model():
    view = {"output_type": "display_data", "data": {WIDGET_VIEW: {"model_id": "a" * 32}}}
    notebook = {"cells": [{"cell_type": "code", "outputs": [view]}], "metadata": {}}
    assert widget_state_problems(notebook) == [f"cell 0: widget model {'a' * 32} is not in the saved widget state"]
    child = {"state": {"children": ["IPY_MODEL_" + "b" * 32]}}
    notebook["metadata"] = {"widgets": {WIDGET_STATE: {"state": {"a" * 32: child}}}}
    assert widget_state_problems(notebook) == [f"cell 0: widget model {'b' * 32} is not in the saved widget state"]


# -- the story -------------------------------------------------------------------------------------


def test_the_seventeen_steps_each_have_a_heading_in_order():
    headings = [int(n) for path in STORY for n in STEP_HEADING.findall(_sources(_load(path), "markdown"))]
    assert headings == list(range(1, 18))


def test_each_openssl_step_shows_its_command_beside_the_call():
    for path in STORY:
        markdown = _sources(_load(path), "markdown")
        for number in map(int, STEP_HEADING.findall(markdown)):
            command = STEPS[number - 1].command
            if command.startswith("openssl"):
                assert command in markdown, f"{path.name}, step {number}: {command}"


def test_story_notebooks_start_from_prepare():
    """Each notebook after the welcome runs on its own: its first code cell prepares the workspace
    (the workbench opens its own, which keeps what the learner made there)."""
    for path in STORY[1:]:
        first = "".join(next(cell for cell in _load(path)["cells"] if cell["cell_type"] == "code")["source"])
        assert "prepare(" in first or (path.name == "08-workbench.ipynb" and 'lesson_home("workbench")' in first), path.name


def test_welcome_lists_every_story_notebook():
    welcome = _sources(_load(STORY[0]), "markdown")
    for path in STORY[1:]:
        assert f"({path.name})" in welcome, path.name


def test_steps_table():
    table = steps_table()
    assert [row[0] for row in table.rows] == [str(n) for n in range(1, 18)]
    assert "openssl genrsa -out kitty-ca.key 4096" in repr(table)
    assert "<table" in table._repr_html_()


# -- the sanitize file -----------------------------------------------------------------------------


def _sanitize_patterns() -> list[tuple[str, str]]:
    text = (Path(__file__).with_name("nbval-sanitize.cfg")).read_text()
    return re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)  # as nbval reads it


def _sanitize(text: str) -> str:
    for regex, replace in _sanitize_patterns():
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_file_hides_what_changes_between_runs(story):
    ws, server, client = story
    from kittylab.render.display import to_text

    first = to_text(server.record)
    assert server.record.serial_hex in first
    other = ws.issue("picture-server-2", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"])
    second = to_text(other.record).replace("picture-server-2", "picture-server")
    assert first != second
    assert _sanitize(first) == _sanitize(second)
    assert _sanitize(server.certificate.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.PEM).decode()) == (
        "-----BEGIN CERTIFICATE----- PEM -----END CERTIFICATE-----\n"
    )
    assert _sanitize("https://127.0.0.1:40123/ and /tmp/x/kitty-workspace/a.crt") == "https://127.0.0.1:PORT/ and kitty-workspace/a.crt"


# -- kittylab.ui.tutorial -----------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "kitty-workspace"


def test_prepare_recreates_earlier_steps_and_says_so(home, capsys):
    ws = prepare(15, home=home)
    said = capsys.readouterr().out
    assert said.startswith("Step 15, in kitty-workspace/: recreated")
    assert "kitty-ca (steps 1-3), picture-server (steps 4-8), eager-client (steps 11-14)" in said
    assert ws.verify(ws.find("picture-server").certificate, purpose="server").ok
    assert ws.verify(ws.find("eager-client").certificate, purpose="client").ok
    for name in ("kitty-ca.key", "kitty-ca.crt", "kitty-ca.crl", "picture-server.key", "eager-client.p12"):
        assert (home / name).is_file(), name
    assert (home / "eager-client.p12").stat().st_mode & 0o777 == 0o600
    ws.close()

    ws = prepare(REVOCATION, home=home)
    said = capsys.readouterr().out
    assert "kept kitty-ca (steps 1-3), picture-server (steps 4-8), eager-client (steps 11-14)" in said
    assert "recreated" not in said
    ws.close()


def test_prepare_twice_sets_the_earlier_run_aside(home, capsys):
    prepare(1, home=home).init_ca(CA_SUBJECT, key="p256")
    capsys.readouterr()
    ws = prepare(1, home=home)
    said = capsys.readouterr().out
    assert "an earlier run went past this point: moved it to kitty-workspace/earlier-runs/run-" in said
    assert not ws.has_ca
    (earlier,) = (home / "earlier-runs").iterdir()
    assert (earlier / "kitty-ca.key").is_file()
    ws.init_ca(CA_SUBJECT, key="p256")  # the step runs again as written
    ws.close()


def test_prepare_refuses_a_step_outside_the_story(home):
    with pytest.raises(KittylabError, match="not one of the story's steps"):
        prepare(SUMMARY + 1, home=home)


def test_openssl_side_by_side_agrees_and_disagrees(story, require):
    require("openssl")
    ws, server, client = story
    accepted = openssl_side_by_side(
        openssl.verify("eager-client.crt", "kitty-ca.crt", purpose="client"),
        workspace=ws,
        kittylab=ws.verify(client.certificate, purpose="client"),
    )
    assert accepted.ok and accepted.agrees
    assert "eager-client.crt: OK" in repr(accepted) and "they agree" in repr(accepted)
    assert 'class="kl-agree"' in accepted._repr_html_()
    refused = openssl_side_by_side(
        openssl.verify("picture-server.crt", "kitty-ca.crt", purpose="client"), workspace=ws, kittylab=True
    )
    assert refused.returncode == 2 and refused.agrees is False
    assert "they DISAGREE" in repr(refused) and "error 26" in repr(refused)


def test_openssl_output_never_shows_a_private_key(story, require):
    require("openssl")
    ws, _, _ = story
    shown = openssl_side_by_side("openssl pkey -in eager-client.key", workspace=ws)
    assert shown.ok
    assert "PRIVATE KEY" not in repr(shown) + shown._repr_html_()
    assert "[private key not shown]" in repr(shown)
    assert scrub_private_keys("a\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n") == "a\n[private key not shown]"


def test_openssl_side_by_side_runs_only_openssl(story):
    ws, _, _ = story
    with pytest.raises(KittylabError, match="not an openssl command"):
        openssl_side_by_side("rm -rf .", workspace=ws)


def test_workspace_files_show_secret_modes(story):
    ws, _, _ = story
    rows = {row[0]: row for row in workspace_files(ws).rows}
    assert rows["eager-client.p12"][1] == "0600" and "secret" in rows["eager-client.p12"][2]
    assert rows["kitty-ca.crt"][1] == "0644"


@pytest.fixture
def exercise_namespace(story):
    ws, server, client = story
    from types import SimpleNamespace

    from cryptography.hazmat.primitives import hashes

    from kittylab.net.client import curl_command

    return {
        "ws": ws,
        "client": client,
        "server_key": generate_key("p256"),
        "Subject": Subject,
        "make_csr": make_csr,
        "openssl": openssl,
        "curl_command": curl_command,
        "hashes": hashes,
        "server": SimpleNamespace(url="https://127.0.0.1:8443/"),
        "responder": SimpleNamespace(url="http://127.0.0.1:8888/"),
    }


@pytest.mark.parametrize("name", list(EXERCISES))
def test_each_exercise_accepts_its_solution_and_hints_otherwise(name, exercise_namespace):
    task = exercise(name)
    solved = task.check(eval(f"lambda: {task.solution}", exercise_namespace))  # noqa: S307 - our own solution text
    assert solved.right, solved
    unfinished = task.check(eval(f"lambda: {task.blank}", exercise_namespace))  # noqa: S307
    assert not unfinished.right and "Not finished yet" in repr(unfinished) and task.hint in repr(unfinished)
    wrong = task.check(lambda: None)
    assert not wrong.right and "Hint:" in repr(wrong)
    assert task.more and task.more != task.hint and task.more in repr(wrong)  # the second miss: a nearer hint
    assert "<details><summary>Show the solution</summary>" in wrong._repr_html_()
    assert "<details>" not in solved._repr_html_()


def test_the_notebooks_hand_out_each_exercise():
    code = "\n".join(_sources(_load(path), "code") for path in NOTEBOOKS)
    for task in EXERCISES.values():
        assert f'exercise("{task.name}").check(lambda: {task.blank})' in code, task.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_notebook_has_objectives_an_exercise_key_points_and_links(path):
    notebook = _load(path)
    markdown = _sources(notebook, "markdown")
    cells = [("".join(cell["source"]), cell["cell_type"]) for cell in notebook["cells"]]
    assert "### What you will learn" in cells[0][0], f"{path.name}: objectives in the first cell"
    assert 'exercise("' in _sources(notebook, "code"), f"{path.name}: no exercise"
    assert "### Key points" in markdown, f"{path.name}: no key points"
    last = cells[-1][0]
    assert ".ipynb)" in last and last.rstrip().endswith("→"), f"{path.name}: the last cell links on"
    if path != NOTEBOOKS[0]:
        assert last.startswith("←"), f"{path.name}: the last cell links back"


def test_the_welcome_and_the_summary_list_every_notebook():
    welcome = _sources(_load(STORY[0]), "markdown")
    summary = _sources(_load(NOTEBOOK_DIR / "07-summary.ipynb"), "markdown")
    for path in NOTEBOOKS[1:]:
        assert f"({path.name})" in welcome, path.name
    for path in NOTEBOOKS:
        if path.name[:1] != "0":
            assert f"({path.name})" in summary, path.name


def test_an_unknown_exercise_is_a_one_line_error():
    with pytest.raises(KittylabError, match="no exercise 'nope'"):
        exercise("nope")


# -- the forms the notebooks show, driven in the kernel --------------------------------------------


def test_subject_form_holds_the_articles_values_and_checks_edits():
    widgets = pytest.importorskip("kittylab.ui.widgets")
    form = widgets.SubjectForm(CA_SUBJECT)
    assert form.subject == CA_SUBJECT
    form.fields["o"].value = "Kitty Cats Inc"
    assert form.subject.o == "Kitty Cats Inc"
    form.fields["c"].value = "Germany"
    assert "c" in form.errors()
    with pytest.raises(KittylabError, match="country"):
        form.subject


def test_key_choice_holds_the_articles_ca_key():
    widgets = pytest.importorskip("kittylab.ui.widgets")
    choice = widgets.KeyChoice(key="rsa4096", days=7300)
    assert (choice.key.value, choice.days.value) == ("rsa4096", 7300)
    choice.key.value = "p256"
    assert generate_key(choice.key.value).curve.name == "secp256r1"


def test_p12_password_is_the_storys():
    assert P12_PASSWORD == "kitty-pass"
    assert shlex.split(STEPS[14].command)[4] == f"eager-client.p12:{P12_PASSWORD}"


def test_rerunning_a_lesson_keeps_the_ca_a_browser_imported(home, capsys):
    """Re-running 04 (or 02, 05) after 07 keeps kitty-ca and says what happened to the certificates
    a browser may have imported; only 01 makes a new CA, says so, and keeps one earlier run."""
    ws = prepare(SUMMARY, home=home)
    ca = ws.ca_record().fingerprint
    ws.close()
    capsys.readouterr()
    for step, said in ((11, "eager-client's certificate from it stays revoked"),
                       (4, "revoked picture-server's certificate from it (superseded)"),
                       (15, "issued a new eager-client.p12 from the same kitty-ca")):
        ws = prepare(step, home=home)
        out = capsys.readouterr().out
        assert said in out and "kept kitty-ca (steps 1-3)" in out, out
        assert ws.ca_record().fingerprint == ca and not (home / "earlier-runs").exists()
        if step == 15:
            assert ws.verify(ws.find("eager-client").certificate, purpose="client").ok  # 05 connects with it
        ws.close()
    for _ in range(3):
        ws = prepare(1, home=home)
        ws.init_ca(CA_SUBJECT, key="p256")
        ws.close()
    out = capsys.readouterr().out
    assert "This lesson makes a NEW kitty-ca with a new fingerprint" in out and ca[:23] in out
    assert "deleted 1 older earlier run(s) with their private keys" in out
    assert len(list((home / "earlier-runs").iterdir())) == EARLIER_RUNS_KEPT == 1
