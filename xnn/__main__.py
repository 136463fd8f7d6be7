"""``python -m xnn ...`` is the ``xnn`` command."""

import sys

from xnn.cli import main

sys.exit(main())
