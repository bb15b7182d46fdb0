"""The shape of the public API: public paths for public names, and handles with no public
constructor.

A class defined in ``rillet/graphs/lambdas.py`` and exported by ``rillet.graphs`` reports
``rillet.graphs.RunnableLambda`` in reprs, tracebacks and docs, as trio's names do: the
package rewrites ``__module__`` of what it exports with :func:`fixup_module_metadata`. Pickle
finds the class under that path too (the package exports it), and the wire registry is keyed by
class name, so neither changes. :func:`defined_in` still knows the module that defines a name
(the layout and docstring tests use it).

Handles that users receive but never build (``RunHandle``, ``WorkerRun``, ``Subscription``)
use :class:`NoPublicConstructor`, as trio's do: calling the class raises ``TypeError``; the
library makes them with the private ``_create`` classmethod.

>>> from rillet.graphs import RunnableLambda
>>> RunnableLambda.__module__, defined_in(RunnableLambda)
('rillet.graphs', 'rillet.graphs.lambdas')
"""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Mapping
from typing import NoReturn, TypeVar

__all__ = ["NoPublicConstructor", "defined_in", "fixup_module_metadata"]

T = TypeVar("T")


class NoPublicConstructor(ABCMeta):
    """A metaclass for classes only the library instantiates (``cls._create(...)``).

    >>> class Handle(metaclass=NoPublicConstructor):
    ...     pass
    >>> Handle()
    Traceback (most recent call last):
    ...
    TypeError: ...Handle has no public constructor; it is handed out by the library
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} has no public constructor; it "
                        f"is handed out by the library")

    def _create(cls: type[T], *args: object, **kwargs: object) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]

# (public module, qualname) -> the module that defines it, for names rewritten here.
_DEFINED_IN: dict[tuple[str, str], str] = {}


def fixup_module_metadata(module_name: str, namespace: Mapping[str, object]) -> None:
    """Set ``__module__`` of every class and function named in ``namespace["__all__"]`` to
    ``module_name``, when it is defined in a private module of the same layer
    (``rillet.runtime.*`` for ``rillet.runtime.lowlevel``).

    Call it at the end of a package ``__init__``: ``fixup_module_metadata(__name__, globals())``.
    A parent package runs after its subpackages, so a name it exports again gets the parent's
    (shorter) path; a name already given a public path keeps it.
    """
    names = namespace.get("__all__", ())
    assert isinstance(names, (list, tuple))
    prefix = ".".join(module_name.split(".")[:2]) + "."
    for name in names:
        obj = namespace.get(name)  # a lazily provided name (module __getattr__) is not there
        if obj is None:
            continue
        current = getattr(obj, "__module__", None)
        if not isinstance(obj, type) and not callable(obj):
            continue
        if not isinstance(current, str) or not current.startswith(prefix):
            continue
        if getattr(obj, "__name__", None) != name:  # an alias: its own name stays its path
            continue
        qualname = str(getattr(obj, "__qualname__", name))
        _DEFINED_IN[(module_name, qualname)] = _DEFINED_IN.pop((current, qualname), current)
        obj.__module__ = module_name


def defined_in(obj: object) -> str:
    """The module that defines ``obj``, also after its ``__module__`` was made public."""
    module = getattr(obj, "__module__", "")
    qualname = getattr(obj, "__qualname__", "")
    return _DEFINED_IN.get((module, qualname), module)
