"""``xnn.schedules``, the public path of :mod:`xnn.train.schedules`: learning-rate schedules."""

from xnn.train.schedules import *  # noqa: F403
from xnn.train.schedules import __all__  # noqa: F401
