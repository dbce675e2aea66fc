"""Notebook 04 with a learner's own values in the form: the CN names every file that follows, and
the Email field goes into the request's SAN. The notebook's code cells run here, in order, with
the form filled in between, as a learner would type before running the next cell."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509

from kittylab import load_csr, load_p12

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04-eager-client.ipynb"


def test_the_forms_values_are_used_by_every_step(tmp_path, monkeypatch):
    monkeypatch.setenv("KITTYLAB_HOME", str(tmp_path / "kitty-workspace"))
    monkeypatch.chdir(tmp_path)
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    scope: dict = {"display": lambda *objects: None}
    for source in cells:
        exec(compile(source, str(NOTEBOOK), "exec"), scope)  # noqa: S102 - the notebook's own cells
        if "client_form" in scope and "typed" not in scope:  # the learner fills the form in
            scope["client_form"].fields["cn"].value = "my-laptop"
            scope["client_form"].fields["email"].value = "me@kitty.test"
            scope["typed"] = True
    home = tmp_path / "kitty-workspace"
    for suffix in ("key", "csr", "crt", "p12"):
        assert (home / f"my-laptop.{suffix}").exists(), suffix
    assert not (home / "eager-client.csr").exists() and not (home / "eager-client.crt").exists()
    csr = load_csr(home / "my-laptop.csr")
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.RFC822Name) == ["me@kitty.test"]  # fmt: skip
    bundle = load_p12(home / "my-laptop.p12", password="kitty-pass")
    assert bundle.key.public_key() == load_csr(home / "my-laptop.csr").public_key()
    assert bundle.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "my-laptop"
