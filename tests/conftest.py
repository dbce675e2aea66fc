"""Shared fixtures: a fresh workspace with a CA, the story's three characters, and system binaries."""

from __future__ import annotations

import os
import shutil
from typing import Callable

import pytest

from kittylab import Workspace

PASSWORD = "kitty-pass"
APT_HINT = {
    "nginx": "nginx",
    "apache2": "apache2",
    "chromium": "chromium",
    "certutil": "libnss3-tools",
    "pk12util": "libnss3-tools",
    "keytool": "default-jre-headless",
    "curl": "curl",
    "openssl": "openssl",
    "easyrsa": "easy-rsa",
}


def require_binary(name: str, *candidates: str) -> str:
    """The path of a system program; skip (or, in CI with KITTYLAB_REQUIRE_SYSTEM=1, fail) without it."""
    for candidate in (name, *candidates):
        path = shutil.which(candidate) or (candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else None)
        if path:
            return path
    package = APT_HINT.get(name, name)
    message = f"{name} is not installed (apt-get install {package})"
    if os.environ.get("KITTYLAB_REQUIRE_SYSTEM"):
        pytest.fail(f"{message}, and KITTYLAB_REQUIRE_SYSTEM is set: CI must install it")
    pytest.skip(message)


@pytest.fixture
def require() -> Callable[..., str]:
    """``require("nginx")`` returns the binary's path or skips the test with the apt package to install."""
    return require_binary


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    """An empty workspace with a CA (P-256, for speed; the article's RSA 4096 is tested on its own)."""
    ws = Workspace(tmp_path / "kitty-workspace")
    ws.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
    yield ws
    ws.close()


@pytest.fixture
def story(workspace):
    """The article's cast: kitty-ca, picture-server (localhost, 127.0.0.1) and eager-client with a p12."""
    server = workspace.issue("picture-server", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"])
    client = workspace.issue(
        "eager-client", profile="client", key="p256", email=["eager-client@kitty.test"], p12=True, p12_password=PASSWORD
    )
    return workspace, server, client
