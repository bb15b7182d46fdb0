"""The Runnable API: compose steps with ``|``, run them with invoke / stream / batch / events.

>>> from graphs import RunnableLambda, RunnableParallel
>>> chain = RunnableLambda(lambda x: x + 1) | {"double": lambda x: x * 2, "same": lambda x: x}
>>> chain.invoke(1)
{'double': 4, 'same': 2}
"""

from graphs.base import Runnable, coerce_to_runnable
from graphs.binding import RunnableBinding
from graphs.branch import RunnableBranch
from graphs.config import RunnableConfig, ensure_config, merge_configs
from graphs.draw import DrawableGraph
from graphs.graph import Graph, GraphError
from graphs.lambdas import RunnableGenerator, RunnableLambda, chain
from graphs.parallel import RunnableParallel
from graphs.passthrough import RunnableAssign, RunnablePassthrough, RunnablePick
from graphs.retry import RunnableRetry, RunnableWithFallbacks
from graphs.sequence import RunnableSequence

__all__ = [
    "DrawableGraph",
    "Graph",
    "GraphError",
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
