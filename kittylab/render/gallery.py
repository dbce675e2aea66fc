"""The cat gallery: the page picture-server shows a client it let in, and the pictures on it.

The same page is served by kittylab's own server and, with server-side include directives in
place of the greeting's values, by nginx and Apache (:mod:`kittylab.net.webconfig`).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Mapping

import markupsafe

from .templates import render


@functools.lru_cache(maxsize=1)
def pictures() -> tuple[tuple[str, str], ...]:
    """The gallery's pictures shipped with kittylab: (file name, caption), in display order."""
    folder = resources.files("kittylab") / "static"
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith((".svg", ".png")))
    return tuple((name, name.rsplit(".", 1)[0].capitalize()) for name in names)


@functools.lru_cache(maxsize=32)
def picture_bytes(name: str) -> bytes | None:
    """The bytes of a shipped picture, or None if ``name`` is not one (so no path can escape)."""
    if name not in {file for file, _ in pictures()}:
        return None
    return (resources.files("kittylab") / "static" / name).read_bytes()


CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png"}

_STYLE = """
.kl-gallery{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;color:#2d2a32;
 background:#faf7f2;max-width:980px;margin:0 auto;padding:24px 28px;border-radius:18px}
.kl-gallery header h1{margin:0 0 4px;font-size:2em}
.kl-gallery header p{margin:0 0 18px;color:#6b6470}
.kl-gallery .kl-greeting{background:#fff;border-radius:14px;padding:14px 20px;margin-bottom:22px;
 box-shadow:0 2px 8px rgba(60,40,20,.12);border-left:6px solid #f28c28}
.kl-gallery .kl-greeting h2{margin:0 0 8px;font-size:1.4em}
.kl-gallery .kl-greeting dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
.kl-gallery .kl-greeting dt{color:#6b6470;white-space:nowrap}
.kl-gallery .kl-greeting dd{margin:0;font-family:ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}
.kl-gallery .kl-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:16px}
.kl-gallery figure{margin:0;background:#fff;border-radius:14px;padding:8px;box-shadow:0 2px 8px rgba(60,40,20,.12)}
.kl-gallery figure img{display:block;width:100%;height:auto;border-radius:10px}
.kl-gallery figcaption{text-align:center;font-weight:600;padding-top:6px}
.kl-gallery footer{margin-top:20px;color:#5e5763;font-size:.85em}
"""


def gallery_page(
    greeting: Mapping[str, str], *, server_name: str, ca_name: str, directives: bool = False, picture_path: str = "/static/"
) -> str:
    """The gallery page: title, a greeting naming the client, and the grid of pictures.

    ``greeting`` holds ``cn``, ``serial``, ``not_after``, ``issuer`` and ``subject``. Its values are
    escaped, unless ``directives`` is set: then they are server-side include directives that nginx
    or Apache fill in per request (see :mod:`kittylab.net.webconfig`), so all three servers show the
    same page.
    """
    if directives:
        greeting = {key: markupsafe.Markup(value) for key, value in greeting.items()}
    return render("gallery.html", greeting=greeting, server_name=server_name, ca_name=ca_name, style=_STYLE,
                  pictures=pictures(), picture_path=picture_path)


