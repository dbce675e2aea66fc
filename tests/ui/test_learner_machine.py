"""A learner's laptop: lessons run without nginx, Apache or easy-rsa, with kittylab standing in.

Each stand-in is checked both ways: with the real program (skips without it, fails in CI) and
with it out of reach, where the lesson must show the same thing and one line saying so.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from support.system import require_binary

from kittylab import Workspace, load_crl
from kittylab.net.webconfig import write_site
from kittylab.ui import sites, tutorial
from kittylab.ui.tutorial import build_old_ca, free_port, knock_without_certificate
from kittylab.workspace.openssldb import import_ca_directory

REFUSED = "the server refused the connection: no client certificate was sent"
SANITIZE = Path(__file__).resolve().parents[1] / "notebooks" / "nbval-sanitize.cfg"


def _missing(kind: str) -> str:
    raise tutorial.KittylabError(f"{kind} is not installed")


def _sanitized(text: str) -> str:
    """``text`` as nbval compares it: every section of the notebooks' sanitize file applied."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(SANITIZE)
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section].get("replace", ""), text)
    return text


def test_knocking_on_nginx_without_a_certificate(story, tmp_path):
    require_binary("nginx")
    workspace = story[0]
    site = write_site("nginx", workspace, tmp_path / "nginx", port=free_port())
    knock = knock_without_certificate(workspace, site)
    assert (knock.server, knock.answer, knock.stand_in) == ("nginx", REFUSED, None)
    # the lesson's text promises nginx's 400 page: the output names nginx and quotes the page's title
    assert repr(knock) == f'nginx answered: HTTP 400, an error page titled "400 No required SSL certificate was sent"\n{REFUSED}'


@pytest.mark.parametrize("kind", ["nginx", "apache"])
def test_without_the_web_server_the_picture_server_stands_in(story, tmp_path, monkeypatch, kind):
    workspace = story[0]
    monkeypatch.setattr(sites, "web_server_binary", _missing)
    site = write_site(kind, workspace, tmp_path / kind, port=free_port())
    knock = knock_without_certificate(workspace, site)
    assert (knock.server, knock.answer) == ("picture-server", REFUSED)
    assert repr(knock).startswith("picture-server answered: the TLS alert certificate_required\n")
    assert knock.stand_in.startswith(f"stand-in: {kind} is not installed here")
    assert "install" in knock.stand_in.split("to try", 1)[1]
    # nbval sees the same output as on a machine with the web server installed.
    assert _sanitized(repr(knock)) == REFUSED


def _imports_alike(old, home: Path) -> list[tuple]:
    workspace = Workspace(home)
    import_ca_directory(workspace, old.folder)
    assert {e.serial_number for e in workspace.current_crl()} == {e.serial_number for e in load_crl(old.crl)}
    return [(r.name, r.profile, r.status(), r.reason) for r in workspace.records()]


EXPECTED = [
    ("Kitty-Easy-CA", "ca", "valid", None),
    ("alice", "client", "revoked", "key-compromise"),
    ("www", "server", "valid", None),
]


def test_old_ca_with_easyrsa(tmp_path):
    require_binary("easyrsa", "/usr/share/easy-rsa/easyrsa")
    old = build_old_ca(tmp_path / "migration" / "old-ca")
    assert (old.tool, old.stand_in) == ("easy-rsa", None)
    assert _imports_alike(old, tmp_path / "migration") == EXPECTED


def test_old_ca_with_openssl_ca_when_easyrsa_is_missing(tmp_path, monkeypatch):
    require_binary("openssl")
    monkeypatch.setattr(tutorial, "find_easyrsa", lambda: None)
    old = build_old_ca(tmp_path / "migration" / "old-ca")
    assert old.tool == "openssl ca"
    assert old.stand_in.startswith("stand-in: easy-rsa is not installed here, so openssl ca")
    # easy-rsa's layout, so the lesson's paths and outputs are the same
    assert old.index == old.folder / "pki" / "index.txt" and old.ca_certificate.name == "ca.crt"
    assert [line.split("\t")[0] for line in old.index.read_text().splitlines()] == ["R", "V"]
    assert _imports_alike(old, tmp_path / "migration") == EXPECTED
    lines = repr(old).splitlines()
    assert _sanitized(repr(old)) == "\n".join(lines[:-1])


def _fake_openssl(folder: Path, says: str) -> Path:
    folder.mkdir()
    script = folder / "openssl"
    script.write_text(f"#!/bin/sh\necho '{says}'\n")
    script.chmod(0o755)
    return script


def _openssl_row(tmp_path) -> tuple[str, str, str]:
    table = tutorial.check_environment(workspace=tmp_path / "kitty-workspace")
    return next(row for row in table.rows if row[1] == "openssl command line")


def test_environment_check_names_the_openssl_that_runs(tmp_path, monkeypatch):
    script = _fake_openssl(tmp_path / "bin", "OpenSSL 3.0.13 30 Jan 2024 (Library: OpenSSL 3.0.13 30 Jan 2024)")
    monkeypatch.setenv("PATH", str(script.parent))
    assert _openssl_row(tmp_path) == ("✓", "openssl command line", f"OpenSSL version 3.0.13 at {script}")
    assert _sanitized(f"OpenSSL version 3.0.13 at {script}") == "OpenSSL version X at PATH/openssl"


@pytest.mark.parametrize("says", ["LibreSSL 3.3.6", "OpenSSL 1.1.1w  11 Sep 2023"])
def test_environment_check_warns_about_libressl_and_old_openssl(tmp_path, monkeypatch, says):
    script = _fake_openssl(tmp_path / "bin", says)
    monkeypatch.setenv("PATH", str(script.parent))
    mark, _, detail = _openssl_row(tmp_path)
    assert mark == "✗"
    assert f"{says.split()[0]} version {says.split()[1]} at {script}" in detail
    assert "needs OpenSSL 3" in detail and "conda install -c conda-forge openssl" in detail
