"""Colours for kittylab's HTML that follow JupyterLab's theme, light or dark.

Each is a CSS value built on JupyterLab's ``--jp-*`` variables, with a fallback for pages that
do not define them (nbconvert's HTML, GitHub, a plain browser): text stays readable (WCAG AA,
4.5:1) on the theme's background in JupyterLab Light and Dark (tests/notebooks/test_lab_browser.py
measures it). Signal colours (errors, success) are mixed with the theme's strongest text colour,
so the same red is darker on white and lighter on black. Status badges carry their own
background and are not themed.
"""

from __future__ import annotations

#: Body text, and the labels beside it (no grey: a grey label on a dark page is unreadable).
TEXT = "var(--jp-ui-font-color1, #222)"
#: The background of a card or table, as the notebook's own.
BACKGROUND = "var(--jp-layout-color1, #fff)"
#: A faint area: the empty part of a validity bar.
FAINT = "var(--jp-layout-color2, #e0e0e0)"
#: Lines between rows and around cards.
BORDER = "var(--jp-border-color2, #d0d0d0)"
STRONG_BORDER = "var(--jp-border-color1, #bdbdbd)"


def _readable(variable: str, fallback: str) -> str:
    return f"color-mix(in srgb, var({variable}, {fallback}) 65%, var(--jp-ui-font-color0, #000))"


#: A refusal or a mistake.
ERROR = _readable("--jp-error-color1", "#c62828")
#: Something that worked.
SUCCESS = _readable("--jp-success-color1", "#2e7d32")

#: The tones of a widget's one-line messages, as classes: ipywidgets' own colour option takes a
#: plain colour or one variable, and no variable is readable in both themes for red or green.
TONE_STYLE = (
    "<style>"
    f".kl-tone-error,.kl-tone-error *{{color:{ERROR} !important}}"
    f".kl-tone-ok,.kl-tone-ok *{{color:{SUCCESS} !important}}"
    "</style>"
)
