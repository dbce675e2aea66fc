"""The chain of trust as a small SVG drawing: the CA on top, what it issued below, revoked ones crossed out.

Drawn here as plain SVG text (no service, no JavaScript), so it shows in JupyterLab, in a saved
notebook and in a browser alike. Every name is XML-escaped: a certificate's subject is chosen by
whoever asked for it, and a common name such as ``<script>`` must stay text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from pathlib import Path

from .display import STATUS_COLOURS, record_status
from .store import Record

BOX_W, BOX_H = 168, 58
CA_W = 200
GAP_X, GAP_Y = 16, 34
PER_ROW = 5
MARGIN = 14
TRUNK_X = 6
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
    status = record_status(record, now=now)
    colour = STATUS_COLOURS.get(status, "#546e7a")
    faded = status in ("expired", "superseded", "revoked")
    fill = "#f3f3f3" if faded else "#ffffff"
    label = f"{record.profile} \u00b7 until {record.not_after:%Y-%m-%d}"
    parts = [
        f'<g class="kl-node kl-node-{escape(status)}" data-name="{escape(record.name)}" data-status="{escape(status)}">',
        f"<title>{escape(record.subject)} ({escape(status)}, serial {record.serial_hex})</title>",
        f'<rect x="{x}" y="{y}" width="{width}" height="{BOX_H}" rx="8" fill="{fill}" stroke="{colour}" stroke-width="2"/>',
        _icon(record.profile, x + 8, y + 12, colour),
        f'<text x="{x + 40}" y="{y + 22}" font-size="13" font-weight="600" fill="#222">{escape(_short(record.name))}</text>',
        f'<text x="{x + 40}" y="{y + 38}" font-size="10" fill="#555">{escape(label)}</text>',
        f'<text x="{x + 40}" y="{y + 51}" font-size="10" font-weight="600" fill="{colour}">{escape(status)}</text>',
    ]
    if status == "revoked":
        parts.append(
            f'<path class="kl-cross" d="M{x + 4} {y + 4} L{x + width - 4} {y + BOX_H - 4} '
            f'M{x + width - 4} {y + 4} L{x + 4} {y + BOX_H - 4}" stroke="{colour}" stroke-width="3" '
            f'stroke-linecap="round" opacity="0.8"/>'
        )
    parts.append("</g>")
    return "".join(parts)


def draw(ca: Record | None, leaves: list[Record], *, now: dt.datetime | None = None) -> SVG:
    """Draw a CA record and the records it issued (the layout; :func:`trust_diagram` picks the records)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    columns = max(1, min(PER_ROW, len(leaves)))
    rows = -(-len(leaves) // PER_ROW)
    width = max(MARGIN * 2 + columns * BOX_W + (columns - 1) * GAP_X, CA_W + 2 * MARGIN)
    height = MARGIN * 2 + BOX_H + rows * (BOX_H + GAP_Y)
    ca_x = (width - CA_W) / 2
    body: list[str] = []
    if ca is None:
        body.append(f'<text x="{MARGIN}" y="{MARGIN + 20}" font-size="13" fill="#555">no CA yet</text>')
    else:
        body.append(_node(ca, ca_x, MARGIN, CA_W, now))
    lines: list[str] = []
    for row in range(rows):
        top = MARGIN + BOX_H + GAP_Y + row * (BOX_H + GAP_Y)
        bus = top - GAP_Y / 2
        members = leaves[row * PER_ROW : (row + 1) * PER_ROW]
        centres = [MARGIN + i * (BOX_W + GAP_X) + BOX_W / 2 for i in range(len(members))]
        left = min(centres[0], width / 2) if row == 0 else TRUNK_X
        lines.append(f'<path d="M{left} {bus} H{max(centres[-1], width / 2)}"/>')
        lines += [f'<path d="M{c} {bus} V{top}"/>' for c in centres]
        for record, centre in zip(members, centres):
            body.append(_node(record, centre - BOX_W / 2, top, BOX_W, now))
    if rows:
        first_bus = MARGIN + BOX_H + GAP_Y / 2
        lines.insert(0, f'<path d="M{width / 2} {MARGIN + BOX_H} V{first_bus}"/>')
        if rows > 1:
            last_bus = first_bus + (rows - 1) * (BOX_H + GAP_Y)
            lines.insert(1, f'<path d="M{TRUNK_X} {first_bus} H{width / 2} M{TRUNK_X} {first_bus} V{last_bus}"/>')
    revoked = sum(1 for r in leaves if r.revoked_at is not None)
    title = f"Chain of trust of {ca.name}" if ca is not None else "Chain of trust"
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kl-trust" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" font-family="sans-serif" role="img">'
        f"<title>{escape(title)}</title>"
        f'<g class="kl-links" fill="none" stroke="#9e9e9e" stroke-width="1.5">{"".join(lines)}</g>'
        f'{"".join(body)}</svg>'
    )
    count = f"{len(leaves)} certificate{'s' if len(leaves) != 1 else ''}"
    summary = f"{title}: {count} issued, {revoked} revoked"
    return SVG(svg, summary)


def trust_diagram(workspace, *, filter: str = "", now: dt.datetime | None = None) -> SVG:  # noqa: A002
    """The workspace's CA and every certificate it issued; ``filter`` keeps names or subjects containing it."""
    records = workspace.records()
    ca = next((r for r in records if r.profile == "ca" and workspace.has_ca and r.name == workspace.ca_name), None)
    needle = filter.lower()
    leaves = [
        r
        for r in records
        if r is not ca and r.profile != "ca" and (needle in r.name.lower() or needle in r.subject.lower())
    ]
    return draw(ca, leaves, now=now)
