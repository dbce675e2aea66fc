"""System programs and loopback ports for tests: skip on a learner's laptop, fail in CI."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

from kittylab.ui.tutorial import free_port as free_port  # the one the notebooks use: tests start servers the same way

PASSWORD = "kitty-pass"
APT_HINT = {
    "nginx": "nginx",
    "apache2": "apache2",
    "chromium": "chromium",
    "firefox-esr": "firefox-esr",
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
    unavailable(f"{name} is not installed (apt-get install {package})", ci=": CI must install it")


def unavailable(message: str, *, ci: str = "") -> NoReturn:
    """Skip: the system lacks what ``message`` says; or, in CI (KITTYLAB_REQUIRE_SYSTEM=1), fail
    (``ci`` adds what CI must do)."""
    if os.environ.get("KITTYLAB_REQUIRE_SYSTEM"):
        pytest.fail(f"{message}, and KITTYLAB_REQUIRE_SYSTEM is set{ci}")
    pytest.skip(message)
