"""Adapter for NIGHTS (DreamSim paper, Fu et al. 2023): 2AFC triplets of Stable Diffusion images.

Layout (``nights.zip`` extracted as is; about 58 GB unzipped)::

    <root>/nights/data.csv
    <root>/nights/ref/000/000.png             reference
    <root>/nights/distort/000/000_0.png       left candidate
    <root>/nights/distort/000/000_1.png       right candidate

``data.csv`` has one row per triplet with at least the columns ``id, left_vote, right_vote,
ref_path, left_path, right_path, split`` (paths relative to the CSV's folder) and optionally
``votes`` and ``is_imagenet`` (plus others such as ``prompt``, which are ignored).

Conventions (documented in ``docs/DATASETS.md``):

- **p0 = left, p1 = right**, so the judgment ``h`` (fraction of people who found p1 closer to the
  reference) is ``right_vote / (left_vote + right_vote)``. This holds whether the votes are counts
  or fractions; DreamSim scores with the ``right_vote`` fraction in exactly this role.
- **Splits** are NIGHTS' own ``train``, ``val`` and ``test`` (``--split test`` for the paper's
  headline numbers; ``val`` is the CLI default).
- **Subsets**: ``imagenet`` and ``no-imagenet`` from the ``is_imagenet`` column (DreamSim reports
  its test set this way), or ``all`` when the column is absent. "Avg" in the reports is the plain
  mean over the two subsets, whereas DreamSim's "total" weights them by size.
- **Vote filter**: like DreamSim, only triplets with ``votes >= min_votes`` (card param, default
  6) are kept when a ``votes`` column exists; how many were dropped is in ``dropped_low_votes``.
- ``sample_id`` is ``"<split>/<subset>/<id>"``.

Example:
    >>> ds = open_dataset("nights", split="test")  # needs the data  # doctest: +SKIP
    >>> ds.subsets("2afc")  # doctest: +SKIP
    ('imagenet', 'no-imagenet')
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from ..config import DatasetCard
from ..download import DEFAULT_STALL_TIMEOUT, DownloadError, parse_archive_specs
from ..errors import DataNotFoundError, InputError
from ..settings import DATA_ENV
from .base import (
    Dataset,
    Sample,
    TwoAFCSample,
    card_params,
    read_csv_header,
    read_text,
    register_adapter,
)

__all__ = ["NIGHTSDataset"]

REQUIRED = ("id", "left_vote", "right_vote", "ref_path", "left_path", "right_path", "split")
SPLITS = ("train", "val", "test")
DEFAULT_MIN_VOTES = 6
_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f"}


def _subset(row: dict[str, str], has_flag: bool) -> str:
    """``imagenet``/``no-imagenet`` from ``is_imagenet``, ``all`` without it, ``""`` if unclear."""
    if not has_flag:
        return "all"
    flag = (row.get("is_imagenet") or "").strip().lower()
    return "imagenet" if flag in _TRUE else "no-imagenet" if flag in _FALSE else ""


@register_adapter("nights", detect_rank=70)
class NIGHTSDataset(Dataset):
    """Reads NIGHTS' ``data.csv`` and image folders; see the module docstring.

    Args:
        root: The folder holding ``data.csv`` (or one sub-folder of it, e.g. ``nights/``).
        card: The dataset card (its ``params.min_votes`` sets the vote filter), or ``None``.
        split: ``train``, ``val`` or ``test``.
        skip_bad: Record rows with missing images or bad votes in ``bad_samples`` instead of
            raising.

    Attributes:
        dropped_low_votes: Triplets of the split left out because ``votes < min_votes``.

    Raises:
        DataNotFoundError: When ``data.csv`` is missing (saying where it goes and how to download
            it), or an image is missing (naming it and the CSV line).
        InputError: On an unknown split, a bad header or a bad vote (naming the CSV line).
    """

    def __init__(
        self,
        root: Path,
        card: DatasetCard | None = None,
        split: str = "val",
        skip_bad: bool = False,
    ) -> None:
        params = card_params(card, {"min_votes": DEFAULT_MIN_VOTES}, "nights")
        self.min_votes = int(params["min_votes"])
        self.dropped_low_votes = 0
        if split not in SPLITS:
            raise InputError(f"split {split!r}: NIGHTS has the splits {', '.join(SPLITS)}.")
        super().__init__(root, card=card, split=split, skip_bad=skip_bad)

    @classmethod
    def locate(cls, root: Path) -> Path | None:
        """The folder holding ``data.csv``: ``root`` or one of its direct sub-folders."""
        root = Path(root)
        if not root.is_dir():
            return None
        subfolders = sorted(e.path for e in os.scandir(root) if e.is_dir())
        for folder in [root, *map(Path, subfolders)]:
            if "left_path" in read_csv_header(folder / "data.csv"):
                return folder
        return None

    @classmethod
    def is_layout(cls, path: Path) -> bool:
        """True for a folder (or its direct sub-folder) holding NIGHTS' ``data.csv``."""
        return cls.locate(path) is not None

    @classmethod
    def install_hint(cls, root: Path, card: DatasetCard | None) -> str:
        """Where the extracted files go, and how to download them."""
        layout = (
            f"expected {root}/nights/data.csv (or {root}/data.csv) with ref/000/000.png and "
            "distort/000/000_0.png, 000_1.png ... beside it (nights.zip extracted as is)."
        )
        if card is None or not card.download:
            return layout
        specs = parse_archive_specs(card.download, f"dataset card {card.name!r}")
        urls = ", ".join(spec.url for spec in specs if spec.default)
        return (
            f"{layout} Download with `iqa-bench download {card.name}` (about 58 GB unzipped) or "
            f"by hand: {urls} extracted into {root}. To keep data elsewhere set {DATA_ENV} or "
            f"pass --data-root (the dataset lives in <data root>/{card.name}/)."
        )

    @classmethod
    def prepare(
        cls,
        root: Path,
        card: DatasetCard,
        parts: Any = None,
        progress: bool = True,
        force: bool = False,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    ) -> Path:
        """Download and extract ``nights.zip`` unless ``data.csv`` is already there."""
        if not force and cls.locate(root) is not None:
            return Path(root)
        try:
            return super().prepare(root, card, parts, progress, force, stall_timeout)
        except DownloadError as exc:
            raise DownloadError(f"{exc} Or: {cls.install_hint(root, card)}") from exc

    def _votes(self, row: dict[str, str], line: int, path: Path) -> tuple[float, str]:
        try:
            left, right = float(row["left_vote"]), float(row["right_vote"])
        except ValueError:
            left = right = math.nan
        if not (math.isfinite(left) and math.isfinite(right)) or min(left, right) < 0:
            return math.nan, f"line {line}: left_vote/right_vote must be non-negative numbers"
        if left + right <= 0:
            return math.nan, f"line {line}: left_vote + right_vote is 0, so no judgment exists"
        return right / (left + right), ""

    def _split_rows(self, path: Path) -> tuple[list[tuple[int, dict[str, str]]], bool]:
        """The rows of this split with their line numbers, and whether ``is_imagenet`` exists.

        Rows of no known split are rejected: they would otherwise vanish from every run.
        """
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
        if missing:
            raise InputError(
                f"{path}: line 1 (header) lacks {missing}; NIGHTS' data.csv has columns "
                f"{','.join(REQUIRED)} (plus votes, is_imagenet, prompt, ...)."
            )
        has_flag = "is_imagenet" in (reader.fieldnames or ())
        records = []
        width = len(reader.fieldnames or ())
        for row in reader:
            if None in row or None in row.values():  # DictReader's marks of extra/missing fields
                fields = width + len(row.get(None) or ()) - sum(v is None for v in row.values())
                raise InputError(
                    f"{path}: line {reader.line_num} has {fields} fields, the header has {width}; "
                    "quote fields that contain commas."
                )
            split = (row.get("split") or "").strip()
            if split == self.split:
                records.append((reader.line_num, row))
            elif split not in SPLITS:
                subset = _subset(row, has_flag)
                self._reject(
                    f"{split or '(none)'}/{subset or 'unknown'}/{row['id']}",
                    path,
                    f"line {reader.line_num}: split {split!r} is none of {', '.join(SPLITS)}",
                    "2afc",
                    subset,
                )
        return records, has_flag

    def _load(self) -> dict[str, list[Sample]]:
        home = self.locate(self.root)
        if home is None:
            raise DataNotFoundError(
                f"no NIGHTS data for dataset {self.name!r} in {self.root}: "
                f"{self.install_hint(self.root, self.card)}"
            )
        path = home / "data.csv"
        records, has_flag = self._split_rows(path)
        by_subset: dict[str, list[TwoAFCSample]] = {}
        first_line: dict[str, int] = {}
        for line, row in records:
            votes = (row.get("votes") or "").strip()
            if votes:
                try:
                    enough = float(votes) >= self.min_votes
                except ValueError:
                    raise InputError(
                        f"{path}: line {line}: votes {votes!r} is not a number."
                    ) from None
                if not enough:
                    self.dropped_low_votes += 1
                    continue
            subset = _subset(row, has_flag)
            sample_id = f"{self.split}/{subset or 'unknown'}/{row['id']}"
            if sample_id in first_line:
                raise InputError(
                    f"{path}: line {line} repeats id {row['id']!r} of line {first_line[sample_id]}; "
                    "ids must be unique."
                )
            first_line[sample_id] = line
            h, reason = self._votes(row, line, path)
            if not subset:
                flag = row.get("is_imagenet")
                reason = f"line {line}: is_imagenet {flag!r} is neither true nor false"
            if reason:
                self._reject(sample_id, path, reason, "2afc", subset)
                continue
            files = [home / row[c] for c in ("ref_path", "left_path", "right_path")]
            absent = next((f for f in files if not f.is_file()), None)
            if absent is not None:
                self._reject(
                    sample_id,
                    absent,
                    f"image file missing (line {line} of {path})",
                    "2afc",
                    subset,
                    error=DataNotFoundError,
                )
                continue
            by_subset.setdefault(subset, []).append(TwoAFCSample(sample_id, subset, *files, h))
        if not by_subset and not self.bad_samples:
            raise InputError(
                f"{path}: no triplets of split {self.split!r} with votes >= {self.min_votes}; "
                f"the splits are {', '.join(SPLITS)}."
            )
        order = [s for s in ("imagenet", "no-imagenet", "all") if s in by_subset]
        return {"2afc": [s for subset in order for s in by_subset[subset]]}
