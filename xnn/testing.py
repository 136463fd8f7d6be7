"""``xnn.testing``, the public path of :mod:`xnn.tools.testing`: comparisons, gradients, parity."""

from xnn.tools.testing import *  # noqa: F403
from xnn.tools.testing import __all__  # noqa: F401
