"""Atomic, verified downloads: stream to a temporary file, check the hash, then rename."""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from xnn.core.files import atomic_write

__all__ = ["DEFAULT_TIMEOUT", "DownloadError", "download", "pip_download"]

DEFAULT_TIMEOUT = 15.0  # seconds per blocking socket operation; a blocked network fails fast
_CHUNK = 1 << 20
_USER_AGENT = "xnn-datasets (python urllib)"


class DownloadError(OSError):
    """A download failed (network, HTTP status, truncation or hash mismatch); nothing was kept."""


def download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None,
             md5: str | None = None, progress: bool = True,
             timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Fetch ``url`` into ``dest`` atomically, verifying ``sha256`` and/or ``md5`` if given.

    The bytes go to a temporary file beside ``dest`` that is renamed into place only once the
    length and hashes check out; on any failure it is deleted and DownloadError is raised.
    """
    dest = Path(dest)
    expected = {name: value.lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}
    hashes = {name: hashlib.new(name) for name in expected}
    try:
        with atomic_write(dest) as file:  # renamed into place only if no error is raised here
            _stream(url, file, hashes, progress, timeout)
            for name, want in expected.items():
                got = hashes[name].hexdigest()
                if got != want:
                    raise DownloadError(f"{name} mismatch for {url}: expected {want}, got {got}")
    except DownloadError:
        raise
    except Exception as error:
        raise DownloadError(f"download of {url} failed: {type(error).__name__}: {error}") from error
    return dest


def pip_download(requirement: str, dest: str | os.PathLike[str], timeout: float = 900.0) -> Path:
    """``pip download`` one wheel of ``requirement`` (no dependencies, no build) into ``dest``."""
    dest = Path(dest)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               requirement, "-d", str(dest)]
    try:  # pip's own progress bar goes to our stderr when that is a real file
        sys.stderr.flush()
        stdout: int | None = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stdout = subprocess.DEVNULL
    result = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise DownloadError(f"`pip download {requirement}` exited with {result.returncode}: "
                            f"{tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise DownloadError(f"`pip download {requirement}` left {len(wheels)} wheels in {dest}")
    return wheels[0]


def _stream(url: str, file: Any, hashes: dict[str, Any], progress: bool, timeout: float) -> None:
    """Copy the body of ``url`` into ``file``, updating ``hashes``; raise if it comes up short."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        message = f"download of {url} failed: HTTP {error.code} {error.reason}"
        raise DownloadError(message) from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"download of {url} failed: {reason}") from error
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        bar = _progress_bar(total, url.rsplit("/", 1)[-1]) if progress else None
        received = 0
        try:
            while chunk := response.read(_CHUNK):
                file.write(chunk)
                for h in hashes.values():
                    h.update(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        except http.client.IncompleteRead as error:
            raise DownloadError(f"download of {url} truncated: connection closed after "
                                f"{received + len(error.partial)} of {total} bytes") from error
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received != total:
        raise DownloadError(f"download of {url} truncated: got {received} of {total} bytes")


def _progress_bar(total: int | None, name: str) -> Any:
    """A tqdm bar on stderr, or None when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, leave=False)
