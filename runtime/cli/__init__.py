"""The ``rillet`` command line: demo, run, serve, events, replay, draw, worker.

Holds the argument parser and commands (:mod:`.main`), the terminal views of events and targets
(:mod:`.views`) and the scale-out worker command (:mod:`.worker`). ``python -m rillet.runtime.cli``
runs it.

May import: every other subpackage of :mod:`rillet.runtime`, and :mod:`rillet.nodes` for the
demo's chain and for decoding component types: the one place where the runtime reaches up.
Optional extras (serve, redis) are imported only by the commands that need them.
"""
