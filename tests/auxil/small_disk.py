"""A small file system of its own (tmpfs) that a test can fill to the last byte and free again."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

_CHUNK = b"\0" * 65536


class SmallDisk:
    """``root`` is a fresh tmpfs of ``size_mb``; ``fill()`` takes every free byte, ``free()``
    gives them back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._filler = root / "filler"

    def fill(self) -> None:
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                try:
                    os.write(fd, _CHUNK if _free(self.root) >= len(_CHUNK) else b"\0")
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    return
        finally:
            os.close(fd)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)


def _free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


@contextlib.contextmanager
def small_disk(root: Path, size_mb: int = 16) -> Iterator[SmallDisk]:
    """Mount it (the tests run as root, as CI does; a test that needs it fails without it)."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(root)],
        check=True,
        capture_output=True,
    )
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False, capture_output=True)
