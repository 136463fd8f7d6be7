"""``python -m xnn ...`` is the ``xnn`` command."""

import sys

from xnn.tools.cli import main

sys.exit(main())
