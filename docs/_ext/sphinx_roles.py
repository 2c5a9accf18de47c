"""A griffe extension for the API reference: Sphinx roles in docstrings become code.

The package's docstrings name other objects the Sphinx way (``:func:`install```,
``:class:`~muckrack_hmr.api.HMR```), which Markdown would print as is; the reference
shows them as inline code (``install``, ``HMR``).
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def plain(text: str) -> str:
    """``:role:`~a.b.c``` -> ```c```, ``:role:`a.b``` -> ```a.b```."""

    def code(match: re.Match[str]) -> str:
        target = match.group(1)
        if match.group(0).split("`", 1)[1].startswith("~"):
            target = target.rsplit(".", 1)[-1]
        return f"`{target}`"

    return ROLE.sub(code, text)


class SphinxRoles(Extension):  # type: ignore[misc]
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
