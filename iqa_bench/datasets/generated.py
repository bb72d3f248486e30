"""Install a generated dataset folder atomically (shared by the embedded generators, no torch).

A generator writes into a hidden sibling folder that is then renamed into place, so readers
never see a partial dataset and concurrent generators end with identical content.

Example:
    >>> root = install_generated(
    ...     tmp_path / "demo",
    ...     is_current=lambda r: (r / "done.txt").is_file(),
    ...     build=lambda staging: (staging / "done.txt").write_text("ok"),
    ... )
    >>> sorted(p.name for p in root.iterdir())
    ['done.txt']
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def install_generated(
    root: Path,
    is_current: Callable[[Path], bool],
    build: Callable[[Path], object],
    force: bool = False,
) -> Path:
    """Build a dataset into a staging folder and rename it to ``root``.

    Args:
        root: Destination folder.
        is_current: Whether a folder already holds what ``build`` would write (checked on
            ``root`` before building, and after losing a rename race).
        build: Writes the whole dataset into the folder it is given.
        force: Rebuild even when ``is_current(root)``.

    Returns:
        ``root``.
    """
    root = Path(root)
    if not force and is_current(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.generating-", dir=root.parent))
    try:
        build(staging)
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}-{staging.name[-8:]}"
            # Another process may have moved it away first; our rename below decides.
            with contextlib.suppress(FileNotFoundError):
                root.rename(old)
        try:
            staging.rename(root)
        except OSError:
            if not is_current(root):  # lost a race to a generator with other params
                raise
        for stale in root.parent.glob(f".{root.name}.old-{os.getpid()}-*"):
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return root
