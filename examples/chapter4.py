"""The experiments of Chapter 4 on MNIST: ``python examples/chapter4.py --all`` (see --help).

The same as the ``xnn chapter4`` command; this file shows it is only a call into xnn.
"""

import sys

from xnn.tools.cli import main

if __name__ == "__main__":
    sys.exit(main(["chapter4", *sys.argv[1:]]))
