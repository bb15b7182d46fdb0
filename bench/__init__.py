"""rillet's benchmark suite: rillet, LangChain and the raw trio limit, side by side.

Run it with ``python -m bench`` (``--quick`` for a smoke run, ``--only 1,3`` for some
workloads, ``--json PATH`` for where the figures go; default ``bench/results/latest.json``).
Each workload is a module with ``NUMBER``, ``TITLE`` and ``run(config) -> list[Row]``:

1. :mod:`bench.streaming` — ``prompt | model | parser`` streaming: chunks/s, time to first chunk;
2. :mod:`bench.steps` — a chain of pass-through async generator steps: µs per chunk per step;
3. :mod:`bench.events` — ``astream_events(version="v2")`` and ``astream_log``: events/s;
4. :mod:`bench.concurrency` — many concurrent runs: runs/s, time to first chunk, RSS per run;
5. :mod:`bench.json_parsing` — ``JsonOutputParser`` over growing documents: growth exponent;
6. :mod:`bench.no_subscriber` — what the event machinery costs when nobody subscribes.

LangChain (``langchain-core``, the ``bench`` extra) is optional: without it its columns say
"not installed". ``python -m bench.profile --only 1,2,3,4`` shows where rillet's time goes in a
workload (top functions by self time). docs_performance.md explains every figure and ratio.
"""

from bench.harness import Config
from bench.report import Row

__all__ = ["Config", "Row"]
