"""Apache with `kittylab webconfig apache`'s configuration: a real apache2 in the foreground on a loopback port."""

from __future__ import annotations

import pytest
from support.servers import WebServerChecks

from kittylab import KittylabError
from kittylab.net.webconfig import apache_config

pytestmark = pytest.mark.apache
KIND = "apache"  # the web server the shared `web` fixture runs


class TestApache(WebServerChecks):
    config_says = ("SSLVerifyClient require", "SSLCARevocationFile {crl}", "SSLCARevocationCheck chain", "-k graceful")
    config_omits = "mod_proxy"  # no upstream, no proxy modules


def test_apache_modules_dir_can_be_given(story, tmp_path):
    text = apache_config(story[0], webroot=tmp_path, server_root=tmp_path, modules_dir="/opt/httpd/modules")
    assert "LoadModule ssl_module /opt/httpd/modules/mod_ssl.so" in text


def test_unknown_web_server_kind(story, tmp_path):
    from kittylab.net.webconfig import write_site

    with pytest.raises(KittylabError, match="unknown web server"):
        write_site("lighttpd", story[0], tmp_path)


def test_apache_config_is_written_without_apache_installed(story, tmp_path, monkeypatch):
    """A learner's laptop has no Apache: the configuration is still written, with Debian's module
    folder and a line saying where to change it (only running Apache needs the modules)."""
    from kittylab.net import webconfig

    monkeypatch.setattr(webconfig, "APACHE_MODULE_DIRS", (str(tmp_path / "nowhere"), str(tmp_path / "elsewhere")))
    site = webconfig.write_site("apache", story[0], tmp_path / "apache", port=9443)
    text = site.config.read_text()
    assert f"LoadModule ssl_module {tmp_path / 'nowhere'}/mod_ssl.so" in text
    assert "No mod_ssl.so was found" in text
    assert "SSLVerifyClient require" in text
