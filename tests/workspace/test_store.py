"""The SQLite store: records with status, one current certificate per name, and transactions."""

from __future__ import annotations

import datetime as dt

import pytest

from kittylab import CertificateAuthority, KittylabError, generate_key, make_csr
from kittylab.pki.facts import parse_serial, serial_hex
from kittylab.workspace.store import Store

CA = CertificateAuthority.create(
    "kitty-ca", key="p256", now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=60)
)
KEY = generate_key("p256")


def leaf(name="eager-client", **kwargs):
    return CA.sign(make_csr(KEY, name), profile="client", **kwargs)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "kittylab.sqlite3")
    yield store
    store.close()


def test_add_and_look_up(store):
    cert = leaf()
    with store.transaction():
        record = store.add("eager-client", "client", "kitty-ca", cert)
    assert record.certificate == cert and record.status() == "valid"
    assert store.current("eager-client") == store.by_serial(cert.serial_number) == store.latest("eager-client")
    assert record.serial_hex == serial_hex(cert.serial_number)
    assert record.fingerprint.count(":") == 31
    summary = record.as_dict()
    assert summary["status"] == "valid" and "pem" not in summary and "BEGIN" not in str(summary)


def test_one_current_certificate_per_name(store):
    with store.transaction():
        first = store.add("eager-client", "client", "kitty-ca", leaf())
    with pytest.raises(KittylabError, match="already has a current certificate"):
        with store.transaction():
            store.add("eager-client", "client", "kitty-ca", leaf())
    with store.transaction():
        store.mark_revoked(first.serial, when=dt.datetime.now(dt.timezone.utc), reason="superseded")
        store.add("eager-client", "client", "kitty-ca", leaf())
    assert [r.status() for r in store.records()] == ["revoked", "valid"]
    assert [r.serial for r in store.revoked("kitty-ca")] == [first.serial]


def test_a_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add("a", "client", "kitty-ca", leaf("a"))
            store.set_meta("crl_number", "9")
            raise RuntimeError("crash")
    assert store.records() == [] and store.get_meta("crl_number") is None


def test_status_by_dates(store):
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    with store.transaction():
        old = store.add("old", "client", "kitty-ca", leaf("old", days=2, now=past))
        superseded = store.add("s", "client", "kitty-ca", leaf("s"))
        store.mark_superseded(superseded.serial, by=old.serial)
    assert store.by_serial(old.serial).status() == "expired"
    assert store.by_serial(superseded.serial).status() == "superseded"
    assert store.by_serial(old.serial).status(now=past - dt.timedelta(days=1)) == "not-yet-valid"
    assert store.by_serial(superseded.serial).as_dict()["superseded_by"] == old.serial_hex


def test_expiring(store):
    with store.transaction():
        record = store.add("a", "client", "kitty-ca", leaf("a", days=10))
    assert record.status() == "expiring"


def test_serial_parsing():
    assert serial_hex(0xABC) == "0ABC"
    assert parse_serial("0x0a:bc") == 0xABC == parse_serial("0ABC")
    assert parse_serial("eager-client") is None and parse_serial("") is None


def test_not_a_database(tmp_path):
    path = tmp_path / "kittylab.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    store = Store(path)  # opening reads nothing yet
    with pytest.raises(KittylabError, match="is damaged .*nothing was written to it.*repair the workspace"):
        store.records()
    with pytest.raises(KittylabError, match="is damaged"):
        with store.transaction():
            pass
    assert path.read_bytes() == b"this is not sqlite" * 100
