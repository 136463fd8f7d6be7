"""``xnn.datasets``, the public path of :mod:`xnn.data`: MNIST and the IDX reader/writer."""

from xnn.data import *  # noqa: F403
from xnn.data import __all__  # noqa: F401
