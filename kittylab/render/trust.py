"""The chain of trust as a small SVG drawing: the CA on top, what it issued below, revoked ones crossed out.

Intermediate CAs hang below their parent, indented, with what they issued below them.

Drawn here as plain SVG text (no service, no JavaScript), so it shows in JupyterLab, in a saved
notebook and in a browser alike. Every name is XML-escaped: a certificate's subject is chosen by
whoever asked for it, and a common name such as ``<script>`` must stay text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from pathlib import Path

from ..pki.facts import Record
from .display import STATUS_COLOURS

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


def _icon(profile: str, x: float, y: float, colour: str) -> str:
    """A small picture of what the certificate is for: a seal for a CA, a rack for a server, a person for a client."""
    if profile == "ca":
        return (
            f'<g class="kl-icon kl-icon-ca"><circle cx="{x + 12}" cy="{y + 12}" r="10" fill="{colour}"/>'
            f'<path d="M{x + 6} {y + 20} l-3 10 l6 -3 l3 5 l3 -10z M{x + 18} {y + 20} l3 10 l-6 -3 l-3 5 l-3 -10z" '
            f'fill="{colour}"/><circle cx="{x + 12}" cy="{y + 12}" r="5" fill="#fff"/></g>'
        )
    if profile == "server":
        racks = "".join(
            f'<rect x="{x + 2}" y="{y + 3 + 9 * i}" width="20" height="7" rx="2" fill="{colour}"/>'
            f'<circle cx="{x + 18}" cy="{y + 6.5 + 9 * i}" r="1.5" fill="#fff"/>'
            for i in range(3)
        )
        return f'<g class="kl-icon kl-icon-server">{racks}</g>'
    return (
        f'<g class="kl-icon kl-icon-client"><circle cx="{x + 12}" cy="{y + 8}" r="6" fill="{colour}"/>'
        f'<path d="M{x + 1} {y + 28} q0 -13 11 -13 q11 0 11 13z" fill="{colour}"/></g>'
    )


def _node(record: Record, x: float, y: float, width: float, now: dt.datetime) -> str:
    status = record.status(now=now)
    colour = STATUS_COLOURS.get(status, "#546e7a")
    faded = status in ("expired", "superseded", "revoked")
    fill = "#f3f3f3" if faded else "#ffffff"
    kind = record.profile if record.profile != "ca" else "root CA" if record.issuer == record.name else "intermediate CA"
    label = f"{kind} \u00b7 until {record.not_after:%Y-%m-%d}"
    parts = [
        f'<g class="kl-node kl-node-{escape(status)}" data-name="{escape(record.name)}" data-status="{escape(status)}">',
        f"<title>{escape(record.subject)} ({escape(status)}, serial {record.serial_hex})</title>",
        f'<rect x="{x}" y="{y}" width="{width}" height="{BOX_H}" rx="8" fill="{fill}" stroke="{colour}" stroke-width="2"/>',
        _icon(record.profile, x + 8, y + 12, colour),
        f'<text x="{x + 40}" y="{y + 22}" font-size="13" font-weight="600" fill="#222">{escape(_short(record.name))}</text>',
        f'<text x="{x + 40}" y="{y + 38}" font-size="10" fill="#555">{escape(label)}</text>',
        f'<text x="{x + 40}" y="{y + 51}" font-size="10" font-weight="600" fill="{colour}">{escape(status)}</text>',
    ]
    if status == "revoked":  # drawn under the name and dates, faint enough to leave them readable
        parts.insert(3,
            f'<path class="kl-cross" d="M{x + 4} {y + 4} L{x + width - 4} {y + BOX_H - 4} '
            f'M{x + width - 4} {y + 4} L{x + 4} {y + BOX_H - 4}" stroke="{colour}" stroke-width="3" '
            f'stroke-linecap="round" opacity="0.3"/>'
        )
    parts.append("</g>")
    return "".join(parts)


@dataclass
class _Layout:
    """Boxes and connector lines placed so far, and how far right they reach."""

    now: dt.datetime
    boxes: list[str]
    lines: list[str]
    right: float = 0.0

    def node(self, record: Record, x: float, y: float, width: float) -> None:
        self.boxes.append(_node(record, x, y, width, self.now))
        self.right = max(self.right, x + width)


def _place(ca: Record, children: dict[str, list[Record]], layout: _Layout, depth: int, top: float) -> float:
    """Draw ``ca`` at ``top``, its leaves in rows below it and the CAs it signed further below,
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
        layout.lines.append(f'<path d="M{trunk} {bus} H{centres[-1]}"/>')
        for record, centre in zip(leaves[start : start + PER_ROW], centres):
            layout.lines.append(f'<path d="M{centre} {bus} V{y}"/>')
            layout.node(record, centre - BOX_W / 2, y, BOX_W)
        y += BOX_H + GAP_Y
    for sub in sub_cas:
        bus = y - GAP_Y / 2
        layout.lines.append(f'<path d="M{trunk} {bus} H{x0 + INDENT + CA_W / 2} V{y}"/>')
        y = _place(sub, children, layout, depth + 1, y)
    if bus is not None:
        layout.lines.append(f'<path d="M{trunk} {top + BOX_H} V{bus}"/>')
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
        layout.boxes.append(f'<text x="{MARGIN}" y="{MARGIN + 20}" font-size="13" fill="#555">no CA yet</text>')
        y += BOX_H + GAP_Y
    width = max(layout.right + MARGIN, CA_W + 2 * MARGIN)
    height = y - GAP_Y + MARGIN
    issued = [r for r in records if r not in roots]
    revoked = sum(1 for r in issued if r.revoked_at is not None)
    title = f"Chain of trust of {', '.join(r.name for r in roots)}" if roots else "Chain of trust"
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kl-trust" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" font-family="sans-serif" role="img">'
        f"<title>{escape(title)}</title>"
        f'<g class="kl-links" fill="none" stroke="#9e9e9e" stroke-width="1.5">{"".join(layout.lines)}</g>'
        f'{"".join(layout.boxes)}</svg>'
    )
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
