"""Java's keytool reads both p12 flavours (old Java and keystores want the legacy one)."""

from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from support.system import PASSWORD


@pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
def test_keytool_lists_the_p12(workspace, require, legacy):
    keytool = require("keytool")
    issued = workspace.issue("eager-client", profile="client", key="p256", p12=True, p12_password=PASSWORD,
                             legacy_p12=legacy)
    done = subprocess.run(
        [keytool, "-list", "-v", "-storetype", "PKCS12", "-keystore", str(issued.files["p12"]), "-storepass", PASSWORD],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Alias name: eager-client" in done.stdout
    assert "Entry type: PrivateKeyEntry" in done.stdout
    assert "Certificate chain length: 2" in done.stdout
    fingerprint = issued.certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    assert f"SHA256: {fingerprint}" in done.stdout
    wrong = subprocess.run(
        [keytool, "-list", "-storetype", "PKCS12", "-keystore", str(issued.files["p12"]), "-storepass", "wrong-pass"],
        capture_output=True, text=True, timeout=120,
    )
    assert wrong.returncode != 0
