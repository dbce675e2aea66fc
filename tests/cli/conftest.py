"""The command line's tests share one workspace fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import run_cli_steps

#: ``home``'s CA unless a module asks for another: kitty-ca, with an organization and a country.
KITTY_CA = ("--o", "Kitty Inc", "--c", "DE")


@pytest.fixture
def home(request, tmp_path) -> Path:
    """``tmp_path/ws``, made by ``kittylab init --key p256`` (P-256, for speed) with the CA kitty-ca (Kitty Inc, DE).

    A module wanting other init options parametrizes it:
    ``pytestmark = pytest.mark.parametrize("home", [("--cn", "acme-ca")], indirect=True)``.
    """
    home = tmp_path / "ws"
    run_cli_steps(("init", "--key", "p256", *getattr(request, "param", KITTY_CA)), home=home)
    return home
