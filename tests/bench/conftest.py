"""``bench/`` is not an installed package: make the repository root importable for its tests.

``python -m pytest`` (CI) puts the working directory on ``sys.path`` already; plain ``pytest``
does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
