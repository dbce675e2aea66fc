"""Draw the gallery's cat pictures as small SVG files into kittylab/static/ (run ``python tools/make_cats.py``).

The pictures are made here rather than downloaded, so the package ships nothing it did not draw.
"""

from __future__ import annotations

from pathlib import Path

#: (file name, caption, fur, inner ear and nose, eyes, background, mood)
CATS = [
    ("ginger", "Ginger", "#f28c28", "#ffb7a5", "#3a7d44", "#fff3d6", "happy"),
    ("smokey", "Smokey", "#6b6f7a", "#f4a7b9", "#f5c518", "#e3ecf7", "sleepy"),
    ("snow", "Snow", "#f4f4f4", "#ffc4d0", "#3f8efc", "#dff5ea", "curious"),
    ("midnight", "Midnight", "#2b2b33", "#e58fa6", "#9be15d", "#efe4ff", "happy"),
    ("biscuit", "Biscuit", "#c8a27a", "#f7b2a0", "#6b4226", "#ffe8ec", "curious"),
    ("patches", "Patches", "#e9e4dc", "#ffb3c1", "#2e8b57", "#e6f7ff", "sleepy"),
]


def eyes(color: str, mood: str) -> str:
    if mood == "sleepy":
        return ('<path d="M68 104 q12 10 24 0 M108 104 q12 10 24 0" stroke="#222" stroke-width="4" '
                'fill="none" stroke-linecap="round"/>')
    size = 13 if mood == "curious" else 11
    return "".join(
        f'<ellipse cx="{x}" cy="100" rx="{size}" ry="{size + 3}" fill="{color}"/>'
        f'<ellipse cx="{x}" cy="100" rx="4" ry="{size}" fill="#111"/>'
        f'<circle cx="{x + 4}" cy="94" r="3" fill="#fff"/>'
        for x in (80, 120)
    )


def cat_svg(caption: str, fur: str, pink: str, eye: str, background: str, mood: str) -> str:
    mouth = "M90 134 q10 10 20 0" if mood == "happy" else "M94 134 q6 5 12 0"
    patch = '<path d="M100 62 q-34 4 -40 40 q20 -22 40 -20z" fill="#d9822b"/>' if caption == "Patches" else ""
    stripes = ('<path d="M88 60 l4 16 M100 58 v18 M112 60 l-4 16" stroke="#b85c12" stroke-width="5" '
               'stroke-linecap="round"/>') if caption == "Ginger" else ""
    whiskers = "".join(
        f'<path d="M{x1} {y1} L{x2} {y2}" stroke="#555" stroke-width="2" stroke-linecap="round"/>'
        for x1, y1, x2, y2 in ((78, 124, 40, 116), (78, 130, 40, 132), (122, 124, 160, 116), (122, 130, 160, 132))
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200" width="200" height="200">'
        f"<title>{caption}</title>"
        f'<rect width="200" height="200" rx="16" fill="{background}"/>'
        f'<path d="M46 84 L52 26 L90 60z M154 84 L148 26 L110 60z" fill="{fur}" stroke="#333" stroke-width="3"/>'
        f'<path d="M56 70 L59 40 L80 60z M144 70 L141 40 L120 60z" fill="{pink}"/>'
        f'<ellipse cx="100" cy="110" rx="62" ry="54" fill="{fur}" stroke="#333" stroke-width="3"/>'
        f"{patch}{stripes}{eyes(eye, mood)}"
        f'<path d="M94 120 h12 l-6 7z" fill="{pink}" stroke="#333" stroke-width="1.5"/>'
        f'<path d="{mouth}" stroke="#333" stroke-width="2.5" fill="none" stroke-linecap="round"/>'
        f"{whiskers}</svg>\n"
    )


def main() -> None:
    here = Path(__file__).resolve().parent.parent / "kittylab" / "static"
    for name, *drawing in CATS:
        (here / f"{name}.svg").write_text(cat_svg(*drawing))


if __name__ == "__main__":
    main()
