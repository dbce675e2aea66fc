"""Revocation found online, end to end: certificates carry the URLs given to ``kittylab init``
(CRL Distribution Points, and Authority Information Access for OCSP and the issuer's certificate),
``kittylab publish`` and ``kittylab ocsp-serve`` run on loopback, and validators that know only the
root find the rest themselves: pyhanko-certvalidator (fetching allowed, revocation required) by
CRL and by OCSP, and ``openssl verify -crl_download``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from support.cli import run_cli, run_cli_steps
from support.oracles import pyhanko_verdict
from support.pki import openssl
from support.system import free_port


@contextlib.contextmanager
def running(home: Path, *command: str) -> Iterator[str]:
    """``kittylab --home HOME COMMAND...`` in the background until the block ends; yields its banner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITTYLAB_")}
    process = subprocess.Popen([sys.executable, "-m", "kittylab", "--home", str(home), *command],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def make(home: Path, *, crl: bool, ocsp: bool, publish_port: int, ocsp_port: int) -> None:
    base = f"http://127.0.0.1:{publish_port}"
    urls = ["--ca-issuers-url", f"{base}/kitty-root.crt"]
    urls += ["--crl-url", f"{base}/kitty-root.crl"] if crl else []
    urls += ["--ocsp-url", f"http://127.0.0.1:{ocsp_port}"] if ocsp else []
    run_cli_steps(
        ("init", "--cn", "kitty-root", "--key", "p256", *urls),
        ("init", "--cn", "kitty-issuing", "--intermediate-of", "kitty-root", "--key", "p256"),  # inherits the URLs
        ("issue", "client", "good-client", "--key", "p256", "--email", "good@kitty.test"),
        ("issue", "client", "gone-client", "--key", "p256", "--email", "gone@kitty.test"),
        ("revoke", "gone-client", "--reason", "key-compromise"),
        home=home,
    )


def verdicts(home: Path) -> list[tuple[bool, str]]:
    """pyhanko's verdicts on good-client and gone-client given only the root: the intermediate comes
    from AIA, each CRL from its CDP (or the OCSP responder's answer)."""
    root = (home / "kitty-root.crt").read_bytes()
    return [pyhanko_verdict((home / f"{who}-client.crt").read_bytes(), roots=[root], purpose="client", fetch=True)
            for who in ("good", "gone")]


def test_pyhanko_finds_the_crl_and_the_intermediate_by_the_urls(tmp_path):
    home, port = tmp_path / "ws", free_port()
    make(home, crl=True, ocsp=False, publish_port=port, ocsp_port=0)
    shown = run_cli("show", "good-client", home=home).out
    assert f"CRL:                 http://127.0.0.1:{port}/kitty-issuing.crl" in shown
    assert f"CA issuers:          http://127.0.0.1:{port}/kitty-issuing.crt" in shown
    with running(home, "publish", "--port", str(port)) as banner:
        assert banner.startswith(f"publishing at http://127.0.0.1:{port}"), banner
        good, gone = verdicts(home)
        assert good == (True, "accepted")
        assert gone[0] is False and "CRL indicates" in gone[1] and "compromised key" in gone[1], gone
        # A root names no CRL of its own (nothing above it signs one): its CRL is given, the intermediate's downloaded.
        chain = ["-CAfile", home / "kitty-root.crt", "-untrusted", home / "kitty-issuing.crt", "-CRLfile",
                 home / "kitty-root.crl"]
        accepted = openssl("verify", "-crl_check_all", "-crl_download", *chain, home / "good-client.crt")
        refused = openssl("verify", "-crl_check_all", "-crl_download", *chain, home / "gone-client.crt")
    assert accepted.returncode == 0, accepted.stderr
    assert refused.returncode != 0 and b"certificate revoked" in refused.stdout + refused.stderr


def test_pyhanko_asks_the_ocsp_responder_named_in_the_certificates(tmp_path):
    home, port, ocsp_port = tmp_path / "ws", free_port(), free_port()
    make(home, crl=False, ocsp=True, publish_port=port, ocsp_port=ocsp_port)
    assert f"OCSP:                http://127.0.0.1:{ocsp_port}" in run_cli("show", "gone-client", home=home).out
    with running(home, "publish", "--port", str(port)), running(home, "ocsp-serve", "--port", str(ocsp_port)) as banner:
        assert banner.startswith("OCSP responder for"), banner
        good, gone = verdicts(home)
    assert good == (True, "accepted")
    assert gone[0] is False and "OCSP response indicates" in gone[1] and "revoked" in gone[1], gone
