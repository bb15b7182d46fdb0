"""``python -m rillet.runtime.cli``: the ``rillet`` command."""

from rillet.runtime.cli.main import main

raise SystemExit(main())
