"""The text kittylab writes for people and programs (web-server configs, the gallery, handouts,
cards, the dashboard and the tutorial's tables), as Jinja templates.

HTML and SVG templates escape every value (a participant named ``<script>`` sees those characters), the
way Python's :func:`html.escape` spells it (``&quot;``, ``&#x27;``): the notebooks' stored outputs,
which nbval compares, were written so. The configuration templates do not escape (they hold paths
and directives, checked before they get here).

Pieces of HTML that Python hands on (a card, a badge, a table) are macros, called with
:func:`macro`; the pieces several templates share are in ``macros.html``.
"""

from __future__ import annotations

import html
from functools import cache

import jinja2
from markupsafe import Markup

from . import theme


@jinja2.pass_eval_context
def _escaped(context: jinja2.nodes.EvalContext, value: object) -> object:
    if context.autoescape and not hasattr(value, "__html__"):
        return Markup(html.escape(str(value)))
    return value


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("kittylab.render", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "svg"), default_for_string=False),
        finalize=_escaped,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["theme"] = theme
    return environment


def render(template: str, /, **context: object) -> str:
    """Fill in ``template`` (a file in ``kittylab/render/templates``)."""
    return _environment().get_template(template).render(**context)


def macro(template: str, name: str, /, **arguments: object) -> str:
    """The HTML of macro ``name`` in ``template`` (a piece of a page: a card, a badge, a table)."""
    return str(getattr(_environment().get_template(template).module, name)(**arguments))
