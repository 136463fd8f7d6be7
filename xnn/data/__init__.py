"""Datasets as NumPy arrays: MNIST with a verified download and a local ``.npz`` cache."""

from __future__ import annotations

from xnn.data.download import DownloadError, download
from xnn.data.idx import read_idx, write_idx
from xnn.data.mnist import MnistError, default_cache_dir, fetch_mnist, load_mnist

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
