"""Shared fixtures: a fresh workspace with a CA, the story's three characters, and system binaries."""

from __future__ import annotations

from typing import Callable

import pytest
from support.cli import clean_environment
from support.servers import build_cast, running_site
from support.system import PASSWORD, require_binary

from kittylab import Workspace


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


# -- the mTLS cast, one per test module (building it costs key generations and p12 files) ----



@pytest.fixture(scope="module")
def cast(tmp_path_factory):
    """One cast per test module: building it costs a few key generations and p12 files."""
    cast = build_cast(tmp_path_factory.mktemp("cast"))
    yield cast
    cast.workspace.close()


@pytest.fixture(scope="module")
def server(cast):
    """kittylab's picture-server for the cast, on a free loopback port."""
    from kittylab.net.server import PictureServer

    with PictureServer(cast.workspace, handshake_timeout=2) as running:
        yield running


@pytest.fixture(scope="module")
def web(request, cast):
    """The module's web server (its ``KIND``, nginx or apache) running the generated configuration."""
    with running_site(request.module.KIND, cast) as running:
        yield running


@pytest.fixture
def terminal_env(tmp_path) -> dict[str, str]:
    """The environment of a terminal session on the workspace ``tmp_path/kitty-workspace``, without any
    KITTYLAB_ secret (for the prompts run_in_terminal answers)."""
    return clean_environment({"KITTYLAB_HOME": str(tmp_path / "kitty-workspace")})

