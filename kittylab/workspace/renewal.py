"""Renewal: certificates age, keys do not (the article). What is due, and renewing it.

:meth:`Workspace.renew` makes one new certificate (same key, or a new one) and marks the old
one superseded; :meth:`Workspace.expiring` lists what is due. Here: reading "30d" or "12h"
as people type it, and renewing everything due in one go, as a cron job would.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ..errors import KittylabError
from ..pki.facts import EXPIRING_DAYS, Record, when
from ..pki.profiles import PROFILES
from .workspace import Issued, Workspace

_DURATION = re.compile(r"^\s*(\d+)\s*([dhw]?)\s*\Z", re.IGNORECASE)
_UNITS = {"": "days", "d": "days", "h": "hours", "w": "weeks"}


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``2w`` or a bare number of days, as a timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise KittylabError(f"bad duration {text!r}: give days or hours such as 30d, 12h or 2w")
    return dt.timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def _left(delta: dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    if days < 0:
        return f"expired {-days:.0f} days ago" if days <= -1 else f"expired {-delta.total_seconds() / 3600:.0f} hours ago"
    return f"expires in {days:.0f} days" if days >= 1 else f"expires in {delta.total_seconds() / 3600:.0f} hours"


@dataclass(frozen=True)
class Due:
    """A certificate that needs renewing: its record and how long it has left (negative: expired)."""

    record: Record
    left: dt.timedelta
    #: The window it was found in (``expiring --within``).
    window: dt.timedelta = dt.timedelta(days=EXPIRING_DAYS)

    @property
    def renew_from(self) -> dt.datetime:
        """When ``renew --expiring`` takes it: the window before its end, but never before the last third
        of its life, so that a certificate shorter than the window is not renewed again on every run."""
        lifetime = self.record.not_after - self.record.not_before
        return self.record.not_after - min(self.window, lifetime / 3)

    @property
    def renewable(self) -> bool:
        """Renewed in bulk now: a server or client certificate (a CA is renewed by a person: renew NAME)
        past :attr:`renew_from`."""
        return self.record.profile in PROFILES and self.left <= self.record.not_after - self.renew_from

    def describe(self) -> str:
        text = f"{self.record.name} ({self.record.profile}, serial {self.record.serial_hex}): {_left(self.left)}"
        if self.record.profile in PROFILES and not self.renewable:
            text += f" (renewing what is due takes it from {when(self.renew_from)}, the last third of its life)"
        return text

    def as_dict(self) -> dict:
        return dict(self.record.as_dict(), kind="certificate", seconds_left=int(self.left.total_seconds()))


@dataclass(frozen=True)
class CrlDue:
    """A CA's CRL that expires within the window (or has, or was never published): servers that check
    it refuse every client once it has expired."""

    ca: str
    next_update: dt.datetime | None
    left: dt.timedelta | None

    def describe(self) -> str:
        if self.next_update is None:
            return f"CRL of {self.ca}: not published yet: publish it"
        return (f"CRL of {self.ca}: {_left(self.left)} (next update {when(self.next_update)}):"
                " publish a new one")

    def as_dict(self) -> dict:
        return {"kind": "crl", "name": self.ca, "ca": self.ca,
                "next_update": self.next_update.isoformat() if self.next_update else None,
                "seconds_left": int(self.left.total_seconds()) if self.left is not None else None,
                "status": "missing" if self.left is None else "expired" if self.left.total_seconds() <= 0 else "expiring"}


def due(workspace: Workspace, within: dt.timedelta | str, *, now: dt.datetime | None = None) -> list[Due]:
    """What expires within ``within`` (or already has) and is neither revoked nor renewed, soonest first.

    This is what a dashboard highlights and what ``kittylab expiring --within 30d`` prints.
    """
    window = parse_duration(within) if isinstance(within, str) else within
    now = now or dt.datetime.now(dt.timezone.utc)
    return [Due(record, record.not_after - now, window) for record in workspace.expiring(window, now=now)]


def due_crls(workspace: Workspace, within: dt.timedelta | str, *, now: dt.datetime | None = None) -> list[CrlDue]:
    """The CRLs that still matter (:meth:`Workspace.crl_answerable`) and expire within ``within``, soonest first."""
    window = parse_duration(within) if isinstance(within, str) else within
    now = now or dt.datetime.now(dt.timezone.utc)
    found = []
    for name in workspace.crl_answerable(now=now):
        crl = workspace.current_crl(name)
        if crl is None:
            found.append(CrlDue(name, None, None))
        elif crl.next_update_utc - now <= window:
            found.append(CrlDue(name, crl.next_update_utc, crl.next_update_utc - now))
    return sorted(found, key=lambda item: item.next_update or now - dt.timedelta(days=36500))


def renew_due(
    workspace: Workspace, within: dt.timedelta | str, *, new_key: bool = False, now: dt.datetime | None = None
) -> list[Issued]:
    """Renew every server and client certificate due within ``within`` (CAs are left to a person)."""
    return [
        workspace.renew(item.record.name, new_key=new_key, now=now)
        for item in due(workspace, within, now=now)
        if item.renewable
    ]
