"""Finding a space's data files and caching their compact forms (the data folder itself is
``narnas.files.default_data_dir``)."""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from narnas.files import atomic_write_bytes, default_data_dir

from .errors import DataFileError

__all__ = ["cache_path", "resolve_data_file", "save_npz_cache"]


def resolve_data_file(path, *, env_var: str, default_names: Sequence[str], what: str,
                      where: str, flag: str = "--data") -> Path:
    """Find a data file: the explicit path, then ``$env_var``, then the default data folder.

    Raises DataFileError naming the file, where to get it and the three ways to point to it.
    """
    folder = default_data_dir()
    if path is None:
        path = os.environ.get(env_var) or None
    candidates = [Path(path).expanduser()] if path else [folder / n for n in default_names]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise DataFileError(
        f"{what} not found (looked for {tried}); get it from {where}, then pass {flag} PATH, "
        f"set {env_var}, or put it in {folder}")


def cache_path(source: Path, suffix: str) -> Path:
    """Where the compact form of ``source`` is cached in the data folder.

    The name carries a digest of the source's absolute path, size, modification time and
    (for a file) its contents, so a file of the same name in another folder, or a file
    rewritten in place, never reads another file's cache. Checksumming costs ~0.1 s per
    500 MB; re-parsing an official file costs minutes.
    """
    source = Path(source).resolve()
    stat = source.stat()
    identity = hashlib.sha1(f"{source}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    if source.is_file():
        identity.update(_content_checksum(source))
    return default_data_dir() / f"{source.name.split('.')[0]}-{identity.hexdigest()[:12]}{suffix}"


def _content_checksum(path: Path) -> bytes:
    import google_crc32c
    checksum = google_crc32c.Checksum()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            checksum.update(chunk)
    return checksum.digest()


def save_npz_cache(path: Path, arrays: dict) -> None:
    """Atomically save a cache npz; a read-only folder is not an error (it only costs time)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass
