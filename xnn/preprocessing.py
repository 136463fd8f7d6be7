"""``xnn.preprocessing``, the public path of :mod:`xnn.data.preprocessing`."""

from xnn.data.preprocessing import accuracy, one_hot, standardize

__all__ = ["accuracy", "one_hot", "standardize"]
