"""nginx with `kittylab webconfig nginx`'s configuration: a real, unprivileged nginx on a loopback port."""

from __future__ import annotations

import pytest
from support.servers import WebServerChecks

from kittylab import KittylabError
from kittylab.net.webconfig import nginx_config, write_site
from kittylab.workspace import deploy

pytestmark = pytest.mark.nginx
KIND = "nginx"  # the web server the shared `web` fixture runs


class TestNginx(WebServerChecks):
    config_says = ("ssl_verify_client      on;", "ssl_crl                {crl};", "listen 127.0.0.1:9443 ssl;",
                   "-s reload")
    config_omits = "location /app/"  # no upstream, no proxy block


def test_nginx_config_needs_the_server_certificate(workspace, tmp_path):
    with pytest.raises(KittylabError, match="issue the server certificate first"):
        nginx_config(workspace, webroot=tmp_path)


def test_bad_upstream_is_refused(story, tmp_path):
    with pytest.raises(KittylabError, match="upstream"):
        nginx_config(story[0], webroot=tmp_path, upstream="ftp://x/y")


def test_the_config_text_writes_nothing_and_a_site_deploys_through_the_workspace(story, tmp_path):
    workspace = story[0]
    files = sorted(workspace.home.rglob("*"))
    log = len(workspace.audit_log())
    text = nginx_config(workspace, webroot=tmp_path / "site" / "www", port=9443)
    assert f"ssl_certificate_key {deploy.folder(workspace) / 'picture-server.key'};" in text
    assert sorted(workspace.home.rglob("*")) == files and len(workspace.audit_log()) == log
    assert not (tmp_path / "site").exists() and not deploy.configured(workspace)
    site = write_site("nginx", workspace, tmp_path / "site", port=9443)
    assert site.config.read_text() == text  # the same text, now with its files in place
    assert sorted(p.name for p in deploy.folder(workspace).iterdir()) == [
        "clients-of-kitty-ca.crl", "clients-of-kitty-ca.pem", "picture-server.fullchain.pem", "picture-server.key"]
    assert [entry.action for entry in workspace.audit_log()[log:]] == ["deploy"]
