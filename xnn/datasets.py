"""``xnn.datasets``, the public path of :mod:`xnn.data`: MNIST and the IDX reader/writer."""

from xnn.data import (
    DownloadError,
    MnistError,
    default_cache_dir,
    download,
    fetch_mnist,
    load_mnist,
    read_idx,
    write_idx,
)

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
