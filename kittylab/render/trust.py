"""The chain of trust as a small SVG drawing: the CA on top, what it issued below, revoked ones crossed out.

Intermediate CAs hang below their parent, indented, with what they issued below them.

Plain SVG (no service, no JavaScript), so it shows in JupyterLab, in a saved notebook and in a
browser alike. This module places every box, line and shape; the template ``trust.svg`` draws them,
escaping every value (a certificate's subject is chosen by whoever asked for it, and a common name
such as ``<script>`` must stay text).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ..pki.facts import Record
from .display import STATUS_COLOURS
from .templates import render

BOX_W, BOX_H = 168, 58
CA_W = 200
GAP_X, GAP_Y = 16, 34
PER_ROW = 5
MARGIN = 14
INDENT = 40
TRUNK_OFFSET = 20
NAME_CHARS = 17


@dataclass(frozen=True)
class SVG:
    """An SVG drawing: shows itself in Jupyter (``_repr_svg_``); ``.svg`` is the text."""

    svg: str
    summary: str

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return self.summary

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.svg, encoding="utf-8")
        return path


def _short(text: str, limit: int = NAME_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _icon(profile: str, x: float, y: float) -> dict:
    """Where the shapes of a small picture of what the certificate is for go (its corner at ``x``, ``y``):
    a seal for a CA, a rack for a server, a person for a client."""
    if profile == "ca":
        return {"kind": "ca", "cx": x + 12, "cy": y + 12,
                "ribbons": f"M{x + 6} {y + 20} l-3 10 l6 -3 l3 5 l3 -10z M{x + 18} {y + 20} l3 10 l-6 -3 l-3 5 l-3 -10z"}
    if profile == "server":
        return {"kind": "server", "racks": [(x + 2, y + 3 + 9 * i, x + 18, y + 6.5 + 9 * i) for i in range(3)]}
    return {"kind": "client", "cx": x + 12, "cy": y + 8, "body": f"M{x + 1} {y + 28} q0 -13 11 -13 q11 0 11 13z"}


def _box(record: Record, x: float, y: float, width: float, now: dt.datetime) -> dict:
    """What the template draws for ``record`` at ``x``, ``y``: its words, colours and every coordinate."""
    status = record.status(now=now)
    colour = STATUS_COLOURS.get(status, "#546e7a")
    faded = status in ("expired", "superseded", "revoked")
    kind = record.profile if record.profile != "ca" else "root CA" if record.issuer == record.name else "intermediate CA"
    cross = (f"M{x + 4} {y + 4} L{x + width - 4} {y + BOX_H - 4} M{x + width - 4} {y + 4} L{x + 4} {y + BOX_H - 4}"
             if status == "revoked" else None)
    return {
        "status": status, "name": record.name, "short": _short(record.name), "subject": record.subject,
        "serial": record.serial_hex, "label": f"{kind} \u00b7 until {record.not_after:%Y-%m-%d}",
        "colour": colour, "fill": "#f3f3f3" if faded else "#ffffff",
        "x": x, "y": y, "width": width, "height": BOX_H, "cross": cross, "icon": _icon(record.profile, x + 8, y + 12),
        "text_x": x + 40, "rows": (y + 22, y + 38, y + 51),
    }


@dataclass
class _Layout:
    """Boxes and connector lines placed so far, and how far right they reach."""

    now: dt.datetime
    boxes: list[dict]
    lines: list[str]
    right: float = 0.0

    def node(self, record: Record, x: float, y: float, width: float) -> None:
        self.boxes.append(_box(record, x, y, width, self.now))
        self.right = max(self.right, x + width)


def _place(ca: Record, children: dict[str, list[Record]], layout: _Layout, depth: int, top: float) -> float:
    """Place ``ca`` at ``top``, its leaves in rows below it and the CAs it signed further below,
    indented, joined by a trunk; return where the next block starts."""
    x0 = MARGIN + depth * INDENT
    layout.node(ca, x0, top, CA_W)
    trunk = x0 + TRUNK_OFFSET
    below = children.get(ca.name, [])
    leaves = [r for r in below if r.profile != "ca"]
    sub_cas = [r for r in below if r.profile == "ca"]
    y = top + BOX_H + GAP_Y
    bus = None
    for start in range(0, len(leaves), PER_ROW):
        bus = y - GAP_Y / 2
        centres = [x0 + INDENT + i * (BOX_W + GAP_X) + BOX_W / 2 for i in range(len(leaves[start : start + PER_ROW]))]
        layout.lines.append(f"M{trunk} {bus} H{centres[-1]}")
        for record, centre in zip(leaves[start : start + PER_ROW], centres):
            layout.lines.append(f"M{centre} {bus} V{y}")
            layout.node(record, centre - BOX_W / 2, y, BOX_W)
        y += BOX_H + GAP_Y
    for sub in sub_cas:
        bus = y - GAP_Y / 2
        layout.lines.append(f"M{trunk} {bus} H{x0 + INDENT + CA_W / 2} V{y}")
        y = _place(sub, children, layout, depth + 1, y)
    if bus is not None:
        layout.lines.append(f"M{trunk} {top + BOX_H} V{bus}")
    return y


def draw(records: list[Record], *, now: dt.datetime | None = None) -> SVG:
    """Draw the CAs among ``records`` (roots on top) with what each issued below it."""
    layout = _Layout(now or dt.datetime.now(dt.timezone.utc), [], [])
    cas = {r.name: r for r in records if r.profile == "ca"}
    children: dict[str, list[Record]] = {}
    for record in records:
        if record.issuer in cas and record.issuer != record.name:
            children.setdefault(record.issuer, []).append(record)
    roots = [r for r in cas.values() if r.issuer == r.name or r.issuer not in cas]
    y = MARGIN
    for root in roots:
        y = _place(root, children, layout, 0, y)
    if not roots:
        y += BOX_H + GAP_Y  # room for "no CA yet"
    width = max(layout.right + MARGIN, CA_W + 2 * MARGIN)
    height = y - GAP_Y + MARGIN
    issued = [r for r in records if r not in roots]
    revoked = sum(1 for r in issued if r.revoked_at is not None)
    title = f"Chain of trust of {', '.join(r.name for r in roots)}" if roots else "Chain of trust"
    svg = render("trust.svg", width=f"{width:g}", height=f"{height:g}", title=title, lines=layout.lines,
                 boxes=layout.boxes, empty={"x": MARGIN, "y": MARGIN + 20})
    count = f"{len(issued)} certificate{'s' if len(issued) != 1 else ''}"
    return SVG(svg, f"{title}: {count} issued, {revoked} revoked")


def trust_diagram(workspace, *, filter: str = "", now: dt.datetime | None = None) -> SVG:  # noqa: A002
    """The workspace's CAs and every certificate they issued; ``filter`` keeps the leaves whose
    name or subject contains it (the CAs are always drawn)."""
    needle = filter.lower()
    records = [
        r
        for r in workspace.records()
        if r.profile == "ca" or needle in r.name.lower() or needle in r.subject.lower()
    ]
    return draw(records, now=now)
