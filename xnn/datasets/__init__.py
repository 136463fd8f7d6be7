"""Datasets as NumPy arrays: MNIST with a verified download and a local ``.npz`` cache."""

from __future__ import annotations

from xnn.datasets.download import DownloadError, download
from xnn.datasets.idx import read_idx, write_idx
from xnn.datasets.mnist import MnistError, default_cache_dir, fetch_mnist, load_mnist

__all__ = [
    "DownloadError",
    "MnistError",
    "default_cache_dir",
    "download",
    "fetch_mnist",
    "load_mnist",
    "read_idx",
    "write_idx",
]
