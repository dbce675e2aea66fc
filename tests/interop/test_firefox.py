"""Firefox, as a learner's browser: Debian's firefox-esr, headless, with eager-client's p12 imported
into a fresh profile's NSS database (pk12util) and kitty-ca trusted there (certutil). It gets the
gallery from the picture-server, and is refused once the certificate is revoked.

No driver: Firefox's own ``--screenshot`` mode loads the page, and the picture-server says whom it
served (its log names the client's CN) and whom it refused and why. The screenshot goes to
test-artifacts/firefox/.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.system import PASSWORD, require_binary

from kittylab import Workspace
from kittylab.net.server import PictureServer
from kittylab.render.gallery import pictures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "firefox"
# No first-run pages, no chooser dialog for the client certificate (the pref the issue names).
USER_JS = """\
user_pref("security.default_personal_cert", "Select Automatically");
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.enabled", false);
"""


class ServedTo(logging.Handler):
    """The CNs the picture-server's request log names (``PEER CN "GET / HTTP/1.1" 200 -``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def firefox_profile(tmp_path):
    firefox = require_binary("firefox-esr", "firefox")
    certutil, pk12util = require_binary("certutil"), require_binary("pk12util")
    workspace = Workspace(tmp_path / "kitty-workspace")
    workspace.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")
    workspace.issue("picture-server", profile="server", key="p256", dns=["localhost"], ip=["127.0.0.1"])
    workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password=PASSWORD)
    profile = tmp_path / "profile"
    profile.mkdir()
    database = f"sql:{profile}"
    for argv in ([certutil, "-N", "-d", database, "--empty-password"],
                 [certutil, "-A", "-d", database, "-n", "kitty-ca", "-t", "C,,", "-i", str(workspace.ca_certificate_path)],
                 [pk12util, "-d", database, "-i", str(workspace.path("eager-client", "p12")), "-W", PASSWORD]):  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    (profile / "user.js").write_text(USER_JS)
    yield firefox, profile, workspace
    workspace.close()


def run_firefox(firefox: str, profile: Path, url: str, shot: Path, *, until, timeout: float = 60.0) -> int | None:
    """Firefox headless loads ``url`` and writes a screenshot; stopped early once ``until()`` is true
    (a refused page never finishes loading). Returns its exit code, None if it was stopped."""
    env = dict(os.environ, HOME=str(profile.parent), MOZ_HEADLESS="1")
    process = subprocess.Popen(
        [firefox, "--headless", "--no-remote", "--profile", str(profile), "--window-size=1200,900",
         "--screenshot", str(shot), url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return process.returncode
            if until():
                return None
            time.sleep(0.2)
        return None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)


def test_firefox_gets_the_gallery_and_is_refused_after_revocation(firefox_profile):
    firefox, profile, workspace = firefox_profile
    served = ServedTo()
    logger = logging.getLogger("kittylab.net.server")
    logger.addHandler(served)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with PictureServer(workspace) as server:
            url = server.url.replace("127.0.0.1", "localhost")
            shot = ARTIFACTS / "gallery.png"
            shot.unlink(missing_ok=True)
            assert run_firefox(firefox, profile, url, shot, until=lambda: False) == 0
            gets = [line for line in served.lines if " eager-client " in line and '"GET ' in line and '" 200 ' in line]
            assert len(gets) == 1 + len(pictures()), served.lines  # the page and every picture
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

            workspace.revoke("eager-client", reason="key-compromise")
            before = len(served.lines)
            refused = lambda: any(r.reason == "revoked" for r in server.refusals)  # noqa: E731
            run_firefox(firefox, profile, url, ARTIFACTS / "refused.png", until=refused)
            assert refused(), list(server.refusals)
            assert not [line for line in served.lines[before:] if '"GET ' in line], served.lines[before:]
    finally:
        logger.removeHandler(served)
        logger.setLevel(level)
