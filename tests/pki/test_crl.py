"""Revocation: reasons, CRLs published by the workspace, and the warning before a CRL expires."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kittylab import REASONS, KittylabError, load_crl
from kittylab.pki.crl import CRL_WARNING_DAYS, OPENSSL_REASONS, check_reason, crl_expiry_warning, crl_status

NOW = dt.datetime(2030, 6, 1, 12, tzinfo=dt.timezone.utc)


def test_reasons_are_rfc5280_and_have_openssl_names():
    assert set(REASONS) == set(OPENSSL_REASONS)
    assert {"key-compromise", "superseded", "cessation-of-operation"} <= set(REASONS)
    assert "remove-from-crl" not in REASONS
    with pytest.raises(KittylabError, match="unknown revocation reason 'lost'"):
        check_reason("lost")


def test_revoke_by_name_and_serial_republishes_the_crl(story):
    workspace, server, client = story
    first = workspace.current_crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    record = workspace.revoke("eager-client", reason="key-compromise")
    assert record.status() == "revoked" and record.reason == "key-compromise"
    crl = load_crl(workspace.crl_path)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == first + 1
    entry = crl.get_revoked_certificate_by_serial_number(client.record.serial)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    workspace.revoke(server.record.serial_hex)
    assert len(workspace.current_crl()) == 2
    with pytest.raises(KittylabError, match="already revoked"):
        workspace.revoke("eager-client")
    with pytest.raises(KittylabError, match="CA itself"):
        workspace.revoke("kitty-ca")


def test_crl_is_signed_with_aki_and_configurable_next_update(workspace):
    crl = workspace.publish_crl(next_update_days=3)
    assert crl.is_signature_valid(workspace.ca.certificate.public_key())
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == workspace.ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert dt.timedelta(days=2.99) < crl.next_update_utc - crl.last_update_utc <= dt.timedelta(days=3)
    assert workspace.publish_crl().next_update_utc - crl.last_update_utc <= dt.timedelta(days=3, minutes=1)


def test_load_crl_forms(workspace):
    crl = workspace.current_crl()
    assert load_crl(crl.public_bytes(serialization.Encoding.DER)) == crl
    with pytest.raises(KittylabError, match="not a certificate revocation list"):
        load_crl(b"junk")


def test_expiry_warning_ahead_of_time():
    assert crl_expiry_warning(NOW + dt.timedelta(days=20), now=NOW) is None
    assert "in 3 days" in crl_expiry_warning(NOW + dt.timedelta(days=3), now=NOW)
    assert "in 5 hours" in crl_expiry_warning(NOW + dt.timedelta(hours=5), now=NOW)
    assert "expired" in crl_expiry_warning(NOW - dt.timedelta(hours=1), now=NOW)
    assert "no CRL" in crl_expiry_warning(None)


@pytest.mark.parametrize("left", [dt.timedelta(days=CRL_WARNING_DAYS) + dt.timedelta(seconds=s) for s in (-1, 0, 1)])
def test_the_warning_and_the_status_agree_at_the_boundary(left):
    """Seven days before its next update a CRL is expiring, for the warning as for the card (one crl_status)."""
    status = crl_status(NOW + left, now=NOW)
    assert status == ("valid" if left > dt.timedelta(days=CRL_WARNING_DAYS) else "expiring")
    assert (crl_expiry_warning(NOW + left, now=NOW) is not None) == (status != "valid")
    assert crl_status(NOW, now=NOW) == "expired" and crl_status(None, now=NOW) == "valid"


def test_workspace_warns_about_its_crl(workspace):
    assert workspace.crl_warning() is None
    workspace.publish_crl(next_update_days=1)
    assert "expires" in workspace.crl_warning()
    assert "expired" in workspace.crl_warning(now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2))
    workspace.crl_path.unlink()
    assert "no CRL" in workspace.crl_warning()
