"""A workshop CA made with ``init --permit-dns/--permit-email`` is closed to IP addresses too.

Name constraints bind only the name types they list (RFC 5280 4.2.1.10): a CA permitted only DNS and
email names could still certify any IP address, so init excludes 0.0.0.0/0 and ::/0 unless told
otherwise (CA/Browser Forum Baseline Requirements 7.1.2.5).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from support.cli import run_cli, run_cli_steps
from support.pki import forged_leaf, openssl

from kittylab import Workspace
from kittylab.pki.constraints import name_constraints_of

WORKSHOP_CA = ("init", "--cn", "workshop-ca", "--key", "p256", "--permit-dns", "workshop.test", "--permit-email", "kitty.test")


def test_a_workshop_ca_refuses_ip_addresses(tmp_path):
    home = tmp_path / "ws"
    (made,) = run_cli_steps(WORKSHOP_CA, home=home)
    assert "excluded: IP:0.0.0.0/0, IP:::/0" in made.out and "IP addresses excluded" in made.out

    refused = run_cli("issue", "server", "x", "--key", "p256", "--ip", "1.1.1.1", home=home)
    assert refused.code == 1 and "IP:1.1.1.1 is excluded by the name constraints of CN=workshop-ca" in refused.err
    assert run_cli("issue", "server", "www", "--key", "p256", "--dns", "pictures.workshop.test", home=home).code == 0

    # A leaf for 1.1.1.1 signed with the CA's key behind kittylab's back: OpenSSL refuses it (error 48, excluded subtree violation).
    with Workspace(home) as workspace:
        ca = workspace.ca_record().certificate
    key = load_pem_private_key((home / "workshop-ca.key").read_bytes(), None)
    _, crt = forged_leaf(ca, key, "ipsite", ip=["1.1.1.1"], folder=tmp_path)
    done = openssl("verify", "-CAfile", home / "workshop-ca.crt", "-verify_ip", "1.1.1.1", crt)
    assert done.returncode != 0 and b"error 48 at 0 depth lookup: excluded subtree violation" in done.stdout + done.stderr, done


def test_ip_addresses_stay_open_only_when_asked(tmp_path):
    run_cli_steps(("init", "--cn", "lab-ca", "--key", "p256", "--permit-dns", "lab.test", "--exclude-ip", "10.0.0.0/8"),
                  home=tmp_path / "ws")
    with Workspace(tmp_path / "ws") as workspace:
        constraints = name_constraints_of(workspace.ca_record().certificate)
    assert [str(tree.value) for tree in constraints.excluded_subtrees] == ["10.0.0.0/8"]
    assert run_cli("issue", "server", "y", "--key", "p256", "--ip", "192.0.2.1", home=tmp_path / "ws").code == 0
    assert run_cli("issue", "server", "z", "--key", "p256", "--ip", "10.1.2.3", home=tmp_path / "ws").code == 1
