"""The gallery in a real browser: Debian's Chromium through Playwright, with eager-client's p12.

Two ways in. Playwright's ``client_certificates`` option (its own proxy does the client side of TLS),
and Chromium's own TLS stack with the p12 imported into an NSS database in a private HOME, as a
user's browser has it: the stronger proof. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from support.browser import ARTIFACTS, launch_chromium, sync_playwright
from support.system import PASSWORD

from kittylab.render.gallery import pictures

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def playwright(cast):
    """Playwright with Debian's Chromium; its Node side trusts kitty-ca for the proxy's connection."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODE_EXTRA_CA_CERTS", str(cast.ca))
        with sync_playwright() as playwright:
            yield playwright


@pytest.fixture(scope="module")
def browser(playwright):
    with launch_chromium(playwright) as browser:
        yield browser


def p12_of(cast, flavour: str) -> Path:
    return cast.credentials("valid" if flavour == "modern" else "legacy")["p12"]


def assert_gallery_shown(page, cast, issued=None) -> None:
    issued = issued or cast.client
    assert page.locator(".kl-cn").inner_text() == issued.name
    assert page.locator(".kl-serial").inner_text() == issued.record.serial_hex
    widths = page.evaluate("Array.from(document.images).map(image => image.complete ? image.naturalWidth : 0)")
    assert len(widths) == len(pictures()) and all(width > 0 for width in widths), widths


def assert_not_shown(page, url: str) -> None:
    """The page does not render: navigation fails with a TLS error, or what shows has no greeting."""
    from playwright.sync_api import Error

    try:
        page.goto(url, timeout=20_000)
    except Error as error:
        assert "ERR_" in str(error) or "net::" in str(error) or "SSL" in str(error), str(error)
        return
    assert page.locator(".kl-greeting").count() == 0


# -- Playwright's client_certificates (its own proxy does the client side) ----------------------


@contextlib.contextmanager
def playwright_page(browser, server, p12: Path) -> Iterator:
    """A page in a fresh browser context whose requests to the server carry the p12's certificate."""
    with browser.new_context(client_certificates=[
        {"origin": server.url.rstrip("/"), "pfxPath": str(p12), "passphrase": PASSWORD}
    ]) as context:
        yield context.new_page()


def show_gallery(page, server, cast, *, issued=None, screenshot: str | None = None) -> None:
    assert page.goto(server.url, timeout=20_000).status == 200
    assert_gallery_shown(page, cast, issued)
    if screenshot:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)


@pytest.mark.parametrize("flavour", ["modern", "legacy"])
def test_playwright_client_certificate_shows_the_gallery(browser, cast, server, flavour):
    with playwright_page(browser, server, p12_of(cast, flavour)) as page:
        show_gallery(page, server, cast, screenshot=f"gallery-playwright-{flavour}.png")


def test_playwright_revoked_client_is_turned_away(browser, cast, server):
    issued = cast.issue_client("browser-revoked")
    with playwright_page(browser, server, issued.files["p12"]) as page:
        show_gallery(page, server, cast, issued=issued)
    cast.workspace.revoke("browser-revoked")
    before = len(server.refusals)
    with playwright_page(browser, server, issued.files["p12"]) as page:
        assert_not_shown(page, server.url)
    assert "revoked" in {refusal.reason for refusal in list(server.refusals)[before:]}


# -- Chromium's own TLS stack, the p12 in an NSS database ---------------------------------------


def nss_profile(directory: Path, cast, origin: str, p12: Path | None) -> tuple[dict, Path]:
    """A private HOME whose NSS database trusts kitty-ca (and holds the p12, if given), and a profile
    that picks the certificate issued by kitty-ca for ``origin`` without asking."""
    from support.system import require_binary

    certutil, pk12util = require_binary("certutil"), require_binary("pk12util")
    database = directory / ".pki" / "nssdb"
    database.mkdir(parents=True)
    nss = f"sql:{database}"

    def run(*command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr or result.stdout

    run(certutil, "-N", "-d", nss, "--empty-password")
    run(certutil, "-A", "-d", nss, "-n", "kitty-ca", "-t", "C,,", "-i", str(cast.ca))
    if p12 is not None:
        run(pk12util, "-i", str(p12), "-W", PASSWORD, "-d", nss)
    profile = directory / "chromium-profile"
    (profile / "Default").mkdir(parents=True)
    choice = {"setting": {"filters": [{"ISSUER": {"CN": "kitty-ca"}}]}}
    preferences = {"profile": {"content_settings": {"exceptions": {"auto_select_certificate": {f"{origin},*": choice}}}}}
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    return {**os.environ, "HOME": str(directory)}, profile


@contextlib.contextmanager
def nss_page(playwright, directory: Path, cast, server, p12: Path | None) -> Iterator:
    """A page in Chromium launched with its own NSS database (in a private HOME) holding the p12."""
    env, profile = nss_profile(directory, cast, server.url.rstrip("/"), p12)
    with launch_chromium(playwright, profile=profile, env=env) as context:
        yield context.new_page()


@pytest.mark.parametrize("flavour", ["modern", "legacy"])
def test_chromium_own_tls_with_p12_in_nss(playwright, cast, server, tmp_path, flavour):
    before = server.requests_served
    with nss_page(playwright, tmp_path, cast, server, p12_of(cast, flavour)) as page:
        show_gallery(page, server, cast, screenshot=f"gallery-chromium-nss-{flavour}.png")
    assert server.requests_served >= before + 1 + len(pictures())  # Chromium itself came, no proxy between


def test_chromium_without_a_certificate_sees_no_gallery(playwright, cast, server, tmp_path):
    before = len(server.refusals)
    with nss_page(playwright, tmp_path, cast, server, None) as page:
        assert_not_shown(page, server.url)
    assert "no certificate" in {refusal.reason for refusal in list(server.refusals)[before:]}


def test_chromium_revoked_certificate_sees_no_gallery(playwright, cast, server, tmp_path):
    issued = cast.issue_client("nss-revoked")
    with nss_page(playwright, tmp_path / "before", cast, server, issued.files["p12"]) as page:
        show_gallery(page, server, cast, issued=issued)
    cast.workspace.revoke("nss-revoked")
    before = len(server.refusals)
    with nss_page(playwright, tmp_path / "after", cast, server, issued.files["p12"]) as page:
        assert_not_shown(page, server.url)
    assert "revoked" in {refusal.reason for refusal in list(server.refusals)[before:]}
