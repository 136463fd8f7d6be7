"""Run the xnn benchmarks from a checkout: ``python benchmarks/run.py [--quick] [--help]``.

The same as ``xnn bench``; this checkout's xnn is used even when another one is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xnn.tools.bench import main  # after pointing sys.path at this checkout

if __name__ == "__main__":
    sys.exit(main())
