"""A disk cache of decoded images, so later runs on a dataset skip PNG decoding entirely.

Each runner chunk's decoded images are stored as uint8 ``.npy`` arrays (one per image field,
shape (n, H, W, 3)) and read back memory-mapped. The key covers the task, the chunk's image
paths and their identity, sizes and modification times (:func:`.store.file_stamps`), so a changed
file is decoded again. Chunks whose images differ in size, and chunks where a sample failed to
decode (``--skip-bad``), are not cached: they are decoded each time, so a failure is never
replayed as data.

Example:
    >>> cache = DecodeCache(Path("~/.cache/iqa-bench/decoded").expanduser())  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import images
from .store import file_stamps


class DecodeCache:
    """Decoded-image chunks under ``root``.

    Args:
        root: Cache folder (created on first save).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def key(
        self,
        task: str,
        samples: Sequence,
        positions: Sequence[int],
        fields: Sequence[str],
        load_size: int | None = None,
    ) -> str:
        """Identity of a chunk: task, decoding rules, load size, positions, its files' stamps."""
        digest = hashlib.sha256(task.encode())
        digest.update(f"\0decoding={images.DECODING_VERSION}\n".encode())
        if load_size is not None:  # None keeps the keys of entries cached before load sizes
            digest.update(f"\0load_size={load_size}\n".encode())
        for p in positions:
            for stamp in file_stamps(getattr(samples[p], field) for field in fields):
                digest.update(f"{p}\0{stamp}\n".encode())
        return digest.hexdigest()

    def _folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def load(self, key: str) -> tuple[list[int], dict[str, np.ndarray], list] | None:
        """(positions, images by field (memory-mapped), failed) of a cached chunk, else None."""
        folder = self._folder(key)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            images = {f: np.load(folder / f"{f}.npy", mmap_mode="r") for f in meta["fields"]}
        except (OSError, ValueError, KeyError):
            return None  # a torn entry is decoded again, not trusted
        if meta.get("failed"):
            return None  # written by older versions: a failure is retried, not replayed
        return meta["positions"], images, []

    def save(
        self, key: str, positions: list[int], images: dict[str, np.ndarray], failed: list
    ) -> None:
        """Store a chunk atomically (written to a temporary folder, then renamed); a chunk with
        failed samples is not stored."""
        folder = self._folder(key)
        if failed or folder.exists():
            return
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        try:
            for field, array in images.items():
                np.save(tmp / f"{field}.npy", np.ascontiguousarray(array))
            meta = {"positions": positions, "fields": list(images), "failed": failed}
            (tmp / "meta.json").write_text(json.dumps(meta))
            os.replace(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a full disk costs speed, not the run
