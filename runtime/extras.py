"""Optional extras: a missing one is named in one line, never shown as a traceback.

>>> require_extra("serve", "json", what="this example")   # present: returns quietly
>>> try:
...     require_extra("serve", "no_such_module_xyz", what="rillet serve")
... except MissingExtraError as error:
...     print(error)
rillet serve needs the serve extra: pip install 'rillet[serve]'
"""

from __future__ import annotations

import importlib.util

from rillet.runtime.errors import MissingExtraError

__all__ = ["require_extra"]


def require_extra(extra: str, *modules: str, what: str) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` unless every module can be imported.

    Args:
        extra: the name in ``pip install 'rillet[<extra>]'``.
        modules: top-level modules the feature imports.
        what: the feature, as the user called it (``"rillet serve"``).
    """
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(extra=extra, what=what, module=module)
