"""The workshop: a whole class issued, handed out and revoked from a roster."""
