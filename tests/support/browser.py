"""Debian's Chromium through Playwright for browser tests (never ``playwright install``).

``sync_playwright()`` starts Playwright once Chromium and the playwright package are there (it skips
the test without them, and fails in CI: KITTYLAB_REQUIRE_SYSTEM=1); ``launch_chromium(playwright)``
starts the browser with the flags the house uses, or a browser context on a profile folder of its
own; ``chromium()`` does both and closes them on exit. Screenshots go below ``ARTIFACTS``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.system import require_binary

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@contextlib.contextmanager
def sync_playwright() -> Iterator:
    """Playwright's sync API, started; skip (in CI: fail) without Debian's Chromium, skip without playwright."""
    require_binary("chromium", CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        yield playwright


def launch_chromium(playwright, *, profile: Path | None = None, **options):
    """Debian's Chromium, headless, with the house flags: a Browser; or, given a ``profile`` folder
    (Chromium's user data), a BrowserContext on it. ``options`` (such as ``env``) go to Playwright.
    Both close on leaving a ``with`` block."""
    settings = {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True, **options}
    if profile is None:
        return playwright.chromium.launch(**settings)
    return playwright.chromium.launch_persistent_context(str(profile), **settings)


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's Chromium (a Playwright Browser), closed with its Playwright on exit; skips as ``sync_playwright``."""
    with sync_playwright() as playwright, launch_chromium(playwright) as browser:
        yield browser
