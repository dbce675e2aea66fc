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
from ..pki.facts import Record
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


@dataclass(frozen=True)
class Due:
    """A certificate that needs renewing: its record and how long it has left (negative: expired)."""

    record: Record
    left: dt.timedelta

    @property
    def renewable(self) -> bool:
        """Renewed in bulk: server and client certificates (a CA is renewed by a person: renew NAME)."""
        return self.record.profile in PROFILES

    def describe(self) -> str:
        days = self.left.total_seconds() / 86400
        when = f"expired {-days:.0f} days ago" if days < 0 else f"expires in {days:.0f} days" if days >= 1 else (
            f"expires in {self.left.total_seconds() / 3600:.0f} hours"
        )
        return f"{self.record.name} ({self.record.profile}, serial {self.record.serial_hex}): {when}"


def due(workspace: Workspace, within: dt.timedelta | str, *, now: dt.datetime | None = None) -> list[Due]:
    """What expires within ``within`` (or already has) and is neither revoked nor renewed, soonest first.

    This is what a dashboard highlights and what ``kittylab expiring --within 30d`` prints.
    """
    window = parse_duration(within) if isinstance(within, str) else within
    now = now or dt.datetime.now(dt.timezone.utc)
    return [Due(record, record.not_after - now) for record in workspace.expiring(window, now=now)]


def renew_due(
    workspace: Workspace, within: dt.timedelta | str, *, new_key: bool = False, now: dt.datetime | None = None
) -> list[Issued]:
    """Renew every server and client certificate due within ``within`` (CAs are left to a person)."""
    return [
        workspace.renew(item.record.name, new_key=new_key, now=now)
        for item in due(workspace, within, now=now)
        if item.renewable
    ]
