"""nginx with `kittylab webconfig nginx`'s configuration: a real, unprivileged nginx on a loopback port."""

from __future__ import annotations

import pytest
from support.servers import WebServerChecks

from kittylab import KittylabError
from kittylab.net.webconfig import nginx_config

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
