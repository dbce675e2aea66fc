"""Fixtures of the guarantees' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from kittylab import Workspace


@pytest.fixture
def ca_home(tmp_path) -> Path:
    """The folder of a workspace with a P-256 kitty-ca (O=Kitty Inc, C=DE), closed: for tests that
    open it from other processes."""
    home = tmp_path / "kitty-workspace"
    with Workspace(home) as workspace:
        workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
    return home
