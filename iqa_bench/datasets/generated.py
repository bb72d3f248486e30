"""Generated datasets: atomic installation of a generated folder and the adapter base class of
the embedded sets (`synthetic`, `equal-mse`), read with the BAPPS adapter (no torch).

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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from ..config import DatasetCard
from ..errors import InputError
from ..registry import suggest
from .bapps import BAPPSDataset


def merge_params(
    dataset: str, defaults: Mapping[str, object], params: Mapping[str, object] | None
) -> dict:
    """A generator's card ``params`` over its ``defaults`` (lists and tuples copied as lists).

    Raises:
        InputError: On a key ``defaults`` lacks, naming close matches and the allowed keys.

    Example:
        >>> merge_params("demo", {"size": 8, "subsets": ["a"]}, {"size": 16})
        {'size': 16, 'subsets': ['a']}
    """
    merged = dict(defaults)
    for key, value in (params or {}).items():
        if key not in defaults:
            raise InputError(
                f"{dataset} dataset: unknown param {key!r}.{suggest(key, list(defaults))} "
                f"Allowed: {', '.join(defaults)}."
            )
        merged[key] = list(value) if isinstance(value, (list, tuple)) else value
    return merged


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


class GeneratedBAPPSDataset(BAPPSDataset):
    """A dataset generated offline into the BAPPS layout and read with the BAPPS adapter.

    ``open_dataset(name)`` generates it into ``root`` first if missing or stale (:meth:`generate`,
    which calls the subclass's ``generator(root, params, force=...)``); the constructor only
    reads. ``synthetic`` is always True: the judgments are constructed, not collected.
    """

    #: ``generator(root, params, force=False) -> root``; a ``staticmethod`` in the subclass.
    generator: ClassVar[Callable[..., Path]]

    def __init__(
        self,
        root: Path,
        card: DatasetCard | None = None,
        split: str = "val",
        skip_bad: bool = False,
    ) -> None:
        super().__init__(root, card=card, split=split, skip_bad=skip_bad)
        self.synthetic = True

    @classmethod
    def generate(cls, root: Path, card: DatasetCard) -> None:
        """Generate the data into ``root`` unless it is there with the card's parameters."""
        cls.generator(Path(root), card.params)

    @classmethod
    def is_layout(cls, path: Path) -> bool:
        """Never claims a path: a generated folder opened by path is read by ``bapps``."""
        return False

    @classmethod
    def default_parts(cls, card: DatasetCard, split: str) -> list[str] | None:
        """No parts: the data is generated."""
        return None

    @classmethod
    def prepare(
        cls,
        root: Path,
        card: DatasetCard,
        parts: Iterable[str] | None = None,
        progress: bool = True,
        force: bool = False,
        stall_timeout: float | None = None,
    ) -> Path:
        """Generate the data (nothing is downloaded); ``parts`` must be empty."""
        if parts:
            raise InputError(
                f"dataset {card.name!r} is generated, it has no download parts; drop {list(parts)}."
            )
        return cls.generator(Path(root), card.params, force=force)
