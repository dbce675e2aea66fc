"""The text kittylab writes for people and programs (web-server configs, the gallery, handouts), as Jinja templates.

HTML templates escape every value (a participant named ``<script>`` sees those characters); the
configuration templates do not (they hold paths and directives, checked before they get here).
"""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("kittylab.render", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, /, **context: object) -> str:
    """Fill in ``template`` (a file in ``kittylab/render/templates``)."""
    return _environment().get_template(template).render(**context)
