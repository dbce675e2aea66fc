"""Makes notebooks/conftest.py import as ``notebooks.conftest``, not as a second ``conftest``
beside tests/conftest.py (the tests import helpers from that one by name)."""
