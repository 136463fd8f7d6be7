"""``python -m xnn.bench``: the same as ``xnn bench``."""

import sys

from xnn.bench import main

sys.exit(main())
