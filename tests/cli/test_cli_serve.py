"""`kittylab serve`, `kittylab fetch` and `kittylab webconfig` on the command line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from support.system import PASSWORD

from kittylab.cli.main import main


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n")
    return path


def kittylab(cast, *argv: str) -> int:
    return main(["--home", str(cast.workspace.home), *argv])


def test_fetch_prints_the_body_and_the_identity(cast, server, password_file, capfdbinary):
    code = kittylab(cast, "fetch", server.url + "whoami", "--p12", str(cast.client.files["p12"]),
                    "--password-file", str(password_file))
    out, err = capfdbinary.readouterr()
    assert code == 0
    assert b'"cn": "eager-client"' in out
    err_text = err.decode()
    assert "200 OK from CN=picture-server,O=Kitty Inc,C=DE over TLSv1.3" in err_text
    assert "curl equivalent: curl " in err_text and f"$(head -n1 {password_file})" in err_text
    assert PASSWORD not in err_text


@pytest.mark.parametrize(
    "who, reason",
    [("revoked", "certificate revoked"), ("none", "no client certificate was sent"), ("stranger", "unknown CA"),
     ("expired", "certificate expired")],
)
def test_fetch_refused_exits_non_zero_with_the_reason(cast, server, capfd, who, reason):
    argv = ["fetch", server.url]
    given = cast.credentials(who)
    if given:
        argv += ["--key", str(given["key"]), "--cert", str(given["cert"])]
    code = kittylab(cast, *argv)
    out, err = capfd.readouterr()
    assert code == 1 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("kittylab: error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"kittylab: error: the server refused the connection: {reason}")
    assert "Traceback" not in err


def test_fetch_errors_are_one_line(cast, server, password_file, capfd, tmp_path):
    cases = [
        (["fetch", server.url, "--p12", str(tmp_path / "missing.p12"), "--password-file", str(password_file)],
         "p12 file not found"),
        (["fetch", server.url, "--p12", str(cast.client.files["p12"])], "the p12 needs its password"),
        (["fetch", server.url, "--ca", str(cast.other_ca), "--p12", str(cast.client.files["p12"]),
          "--password-file", str(password_file)], "server certificate not trusted"),
    ]
    for argv, message in cases:
        assert kittylab(cast, *argv) == 1
        err = capfd.readouterr().err
        assert f"kittylab: error: {message}" in err and "Traceback" not in err


def test_fetch_not_found_is_a_failure(cast, server, password_file, capfd):
    assert kittylab(cast, "fetch", server.url + "nothing", "--p12", str(cast.client.files["p12"]),
                    "--password-file", str(password_file)) == 1
    assert "404 Not Found" in capfd.readouterr().err


def test_webconfig_writes_a_complete_site(cast, tmp_path, capfd):
    for kind, name in (("nginx", "nginx.conf"), ("apache", "apache.conf")):
        out = tmp_path / kind / name
        assert kittylab(cast, "webconfig", kind, "--out", str(out), "--port", "9443") == 0
        stdout, stderr = capfd.readouterr()
        assert f"wrote {out.resolve()}" in stdout
        assert ("-s reload" if kind == "nginx" else "-k graceful") in stderr
        assert "9443" in out.read_text()
        assert (out.parent / "www" / "index.html").exists() and (out.parent / "www" / "static" / "ginger.svg").exists()


def test_webconfig_to_stdout(cast, tmp_path, capfd):
    assert kittylab(cast, "webconfig", "nginx", "--webroot", str(tmp_path / "www")) == 0
    out, err = capfd.readouterr()
    assert out.startswith("# nginx configuration for picture-server")
    assert "ssl_verify_client      on;" in out
    assert "save this configuration with --out FILE" in err
    assert (tmp_path / "www" / "whoami.json").exists()


def test_webconfig_with_an_ocsp_responder(cast, tmp_path, capfd):
    out = tmp_path / "ocsp" / "nginx.conf"
    assert kittylab(cast, "webconfig", "nginx", "--out", str(out), "--ocsp", "http://127.0.0.1:8888") == 0
    text = out.read_text()
    assert "ssl_ocsp_responder     http://127.0.0.1:8888;" in text and "ssl_crl " not in text


def test_webconfig_without_a_ca(tmp_path, capfd):
    assert main(["--home", str(tmp_path / "empty"), "webconfig", "apache"]) == 1
    err = capfd.readouterr().err
    assert err.startswith("kittylab: error: no workspace at") and "kittylab init" in err and len(err.strip().splitlines()) == 1


def test_bad_port_is_a_usage_error(cast, capfd):
    with pytest.raises(SystemExit) as exit_:
        kittylab(cast, "serve", "--port", "99999")
    assert exit_.value.code == 2
    assert "is not a port number" in capfd.readouterr().err


def test_serve_runs_until_stopped(cast, password_file):
    """`kittylab serve --port 0` in its own process: it prints its URL, serves, logs refusals, stops on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kittylab", "--home", str(cast.workspace.home), "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while not any("picture-server at" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, lines
            lines.append(process.stderr.readline())
        url = re.search(r"picture-server at (https://127\.0\.0\.1:\d+/)", "".join(lines)).group(1)
        assert kittylab(cast, "fetch", url, "--p12", str(cast.client.files["p12"]),
                        "--password-file", str(password_file)) == 0
        assert kittylab(cast, "fetch", url, "--key", str(cast.revoked.files["key"]), "--cert",
                        str(cast.revoked.files["crt"])) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    assert process.returncode == 0
    assert re.search(r"refused 127\.0\.0\.1:\d+: revoked", rest)
    assert "stopped: 1 requests served, 1 connections refused" in rest


def test_the_try_hint_names_a_p12_the_workspace_holds(workspace, tmp_path):
    """A roster workspace has no eager-client.p12: serve's hint names a participant's p12."""
    from kittylab.cli.servers import client_p12
    from kittylab.workshop.roster import issue_roster

    assert client_p12(workspace) is None
    (tmp_path / "r.csv").write_text("name,email\nAda Lovelace,ada@kitty.test\n")
    issue_roster(workspace, tmp_path / "r.csv", url="https://localhost:8443/", workers=1, progress=False)
    assert client_p12(workspace) == workspace.path("ada-lovelace", "p12") and client_p12(workspace).exists()
    workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password="pw-pw-pw-pw")
    assert client_p12(workspace) == workspace.path("eager-client", "p12")
    workspace.revoke("eager-client")
    assert client_p12(workspace) == workspace.path("ada-lovelace", "p12")  # never a revoked one


@pytest.mark.parametrize("days, usable", [((-400, -370), False), ((10, 400), False), ((-10, 10), True)])
def test_the_try_hint_names_only_a_client_certificate_that_works_now(workspace, monkeypatch, days, usable):
    """An expired or not yet valid client's p12 would be refused by the server: the hint skips it (an expiring one works)."""
    from kittylab.cli.servers import client_p12
    from kittylab.workspace.workspace import Workspace

    workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password="pw-pw-pw-pw")
    now = dt.datetime.now(dt.timezone.utc)
    moved = dataclasses.replace(workspace.current("eager-client"), not_before=now + dt.timedelta(days=days[0]),
                                not_after=now + dt.timedelta(days=days[1]))
    assert moved.usable is usable and (moved.status() in ("valid", "expiring")) is usable
    monkeypatch.setattr(Workspace, "current", lambda self, name: moved)
    monkeypatch.setattr(Workspace, "current_of", lambda self, profile, limit=-1: [moved])
    assert client_p12(workspace) == (workspace.path("eager-client", "p12") if usable else None)
