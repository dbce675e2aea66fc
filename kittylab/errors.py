"""The one error type kittylab raises for anything a user can fix."""

from __future__ import annotations


class KittylabError(ValueError):
    """A problem with the user's input or workspace, with a one-line message that says what to fix.

    Everything kittylab rejects (a malformed subject, a bad CSR, a wrong password, a file that is
    not a certificate, a name that would escape the workspace) ends in this type, so that the
    command line and the notebooks can show one clear line instead of a traceback.

    The message speaks the core's words. ``fix`` names the remedy as an action (``"init"``,
    ``"issue-server"``, ...) with its ``details``; each edge turns it into its own words: the
    command line into a command and its flags (:data:`kittylab.cli.options.FIXES`), so that a
    notebook user is never told to pass ``--home``.
    """

    def __init__(self, message: str, *, fix: str | None = None, **details: str) -> None:
        super().__init__(" ".join(str(message).split()))
        self.fix = fix
        self.details = details


def check_choice(value: str, choices, what: str) -> str:
    """Return ``value`` if it is one of ``choices``, else a one-line error naming ``what`` it is and each choice."""
    if value not in choices:
        listed = " or ".join(choices) if len(choices) == 2 else "one of " + ", ".join(choices)
        raise KittylabError(f"unknown {what} {value!r}: choose {listed}")
    return value
