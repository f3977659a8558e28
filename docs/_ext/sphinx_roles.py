"""A griffe extension for the docs build: Sphinx cross-reference roles as code.

The docstrings name other objects the Sphinx way (``:class:`~pkg.Name```),
which reads well in ``help()`` and in editors. mkdocstrings renders Markdown,
so each role becomes inline code showing what Sphinx would show: the last
part of the path after a ``~``, the whole path otherwise.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj):`(~?)([^`]+)`")


def _shown(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    target = target.strip()
    name = target.rsplit(".", 1)[-1] if tilde else target.lstrip(".")
    return f"`{name}`"


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring's Sphinx roles before mkdocstrings parses it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_shown, obj.docstring.value)
