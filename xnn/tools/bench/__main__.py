"""``python -m xnn.tools.bench``: the same as ``xnn bench``."""

import sys

from xnn.tools.bench import main

sys.exit(main())
