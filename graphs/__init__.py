"""The Runnable API: compose steps with ``|``, run them with invoke / stream / batch / events.

>>> from rillet.graphs import RunnableLambda, RunnableParallel
>>> chain = RunnableLambda(lambda x: x + 1) | {"double": lambda x: x * 2, "same": lambda x: x}
>>> chain.invoke(1)
{'double': 4, 'same': 2}
"""

import typing as _typing

from rillet.graphs.base import Runnable
from rillet.graphs.binding import RunnableBinding
from rillet.graphs.branch import RunnableBranch
from rillet.graphs.coerce import coerce_to_runnable
from rillet.graphs.config import RunnableConfig, ensure_config, merge_configs
from rillet.graphs.draw import DrawableGraph
from rillet.graphs.graph import Graph, GraphError
from rillet.graphs.lambdas import RunnableGenerator, RunnableLambda, chain
from rillet.graphs.parallel import RunnableParallel
from rillet.graphs.passthrough import RunnableAssign, RunnablePassthrough, RunnablePick
from rillet.graphs.remote import RemoteRunnable
from rillet.graphs.retry import RunnableRetry, RunnableWithFallbacks
from rillet.graphs.sequence import RunnableSequence
from rillet.runtime.lowlevel import fixup_module_metadata as _fixup_module_metadata

__all__ = [
    "DrawableGraph",
    "Graph",
    "GraphError",
    "RemoteRunnable",
    "Runnable",
    "RunnableAssign",
    "RunnableBinding",
    "RunnableBranch",
    "RunnableConfig",
    "RunnableGenerator",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "RunnablePick",
    "RunnableRetry",
    "RunnableSequence",
    "RunnableWithFallbacks",
    "chain",
    "coerce_to_runnable",
    "ensure_config",
    "merge_configs",
]

_fixup_module_metadata(__name__, globals())

if _typing.TYPE_CHECKING:
    from rillet.runtime.lowlevel import Launchable

    # mypy checks that every Runnable is what the engine runs.
    _RUNNABLES_LAUNCH: type[Launchable] = Runnable
