"""Shared machinery of the full-reference MOS/DMOS adapters (``tid2013``, ``kadid10k``, ``csiq``,
``live``, ``mos-folder``): card parameters, score direction, finding the data, install hints.

A MOS dataset has one task, ``"mos"``, whose samples are :class:`~.base.MOSSample` records grouped by
distortion type (the subset). Scores are kept exactly as published; ``mos_higher_is_better`` says
whether a higher score means better quality (MOS) or worse quality (DMOS), and the statistics orient
them explicitly (never with ``abs()``). MOS datasets have no splits: every image is scored.

Card ``params`` understood by every MOS adapter (defaults come from the adapter, so a dataset
opened by path without a card behaves the same):

- ``higher_is_better``: True for MOS, False for DMOS.
- ``score_range``: ``[low, high]``, the nominal score scale (for reports; not enforced).
- ``distortion_column``: where the distortion type comes from (documentation only).
- ``distortion_types``: subset names in the dataset's numbering order.
- ``how_to_obtain``: for datasets without automatic download, where and how to request the data.

Example:
    >>> ds = open_dataset("tid2013")  # needs the data  # doctest: +SKIP
    >>> ds.tasks(), ds.mos_higher_is_better, ds.mos_range  # doctest: +SKIP
    (('mos',), True, (0.0, 9.0))
"""

from __future__ import annotations

import math
import os
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..config import DatasetCard
from ..download import DEFAULT_STALL_TIMEOUT, DownloadError, parse_archive_specs
from ..errors import DataNotFoundError, InputError
from ..settings import DATA_ENV
from .base import Dataset, MOSSample, Sample, entry_is_file, subset_order
from .base import card_params as merge_card_params

__all__ = ["NO_SPLIT", "FileIndex", "MOSDataset", "MOSRow"]

#: Split names accepted by MOS datasets (they have none; ``val`` is the CLI default).
NO_SPLIT = ("val", "all", "test")
_COMMON_PARAMS = (
    "higher_is_better",
    "score_range",
    "distortion_column",
    "distortion_types",
    "how_to_obtain",
)


@dataclass(frozen=True)
class MOSRow:
    """One scored image as read from a score file, before its files are checked.

    Attributes:
        sample_id: Unique id (see :class:`~.base.MOSSample`).
        subset: Distortion type name.
        ref: Reference image path (may not exist: the adapter checks and reports it).
        dist: Distorted image path (likewise).
        score: The published score.
        level: Distortion level or ``None``.
        source: The score file the row comes from.
        line: Its line (or entry) number there, for error messages.
        unit: ``"line"``, or ``"entry"`` for a ``.mat`` file.
    """

    sample_id: str
    subset: str
    ref: Path
    dist: Path
    score: float
    level: int | None
    source: Path
    line: int
    unit: str = "line"

    @property
    def where(self) -> str:
        """``"<score file>, line N"``."""
        return f"{self.source}, {self.unit} {self.line}"


class FileIndex:
    """Case-insensitive file lookup below a folder (TID2013 mixes ``i01_..bmp`` and ``I01_..BMP``).

    Args:
        folders: Folders to index; files directly inside, or also below with ``recursive``.
        recursive: Index sub-folders too.

    Example:
        >>> (tmp_path / "i25.bmp").touch()
        >>> FileIndex([tmp_path]).find("I25.BMP").name
        'i25.bmp'
    """

    def __init__(self, folders: Iterable[Path], recursive: bool = False) -> None:
        self._files: dict[str, Path] = {}
        folders = [Path(f) for f in folders]
        self._first = folders[0] if folders else Path(".")
        for folder in folders:
            if not Path(folder).is_dir():
                continue
            for path in self._walk(Path(folder), recursive):
                self._files.setdefault(path.name.lower(), path)

    @staticmethod
    def _walk(folder: Path, recursive: bool) -> Iterator[Path]:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry_is_file(entry):
                yield Path(entry.path)
            elif recursive and entry.is_dir():
                yield from FileIndex._walk(Path(entry.path), recursive)

    def find(self, name: str, expected: Path | None = None) -> Path:
        """The file called ``name`` (any letter case); if absent, where it was expected.

        Args:
            name: File name.
            expected: Path to report when absent (default: ``name`` in the first folder).
        """
        return self._files.get(name.lower(), expected or self._first / name)

    def __len__(self) -> int:
        return len(self._files)


class MOSDataset(Dataset):
    """Base of the MOS adapters: reads ``_rows`` from the data folder and checks every file.

    Subclasses set the class attributes and implement :meth:`_rows`.

    Args:
        root: The dataset folder (the data may also sit in one sub-folder of it, as archives
            often extract into ``<root>/<name>/``).
        card: The dataset card, or ``None`` when opened by path.
        split: Ignored apart from validation: MOS datasets have no splits (``val``, ``all`` and
            ``test`` all mean every image).
        skip_bad: Record rows with missing images or bad scores in ``bad_samples`` instead of
            raising.

    Raises:
        DataNotFoundError: When the score file is missing (the message says which files go where
            and how to obtain them), or an image is missing (naming it and the score-file line).
        InputError: On an unknown split or card parameter, or a malformed score file.
    """

    #: File names (any of them) identifying the folder that holds the data.
    markers: ClassVar[tuple[str, ...]] = ()
    default_higher_is_better: ClassVar[bool] = True
    default_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    #: Subset names in the dataset's own numbering order (type 1 first).
    default_types: ClassVar[tuple[str, ...]] = ()
    #: Adapter-specific card parameters and their defaults.
    extra_params: ClassVar[dict[str, Any]] = {}
    #: What the data folder must hold, with ``{home}`` for its path (for error messages).
    layout: ClassVar[str] = ""

    def __init__(
        self,
        root: Path,
        card: DatasetCard | None = None,
        split: str = "val",
        skip_bad: bool = False,
    ) -> None:
        if split not in NO_SPLIT:
            raise InputError(
                f"split {split!r}: MOS datasets have no splits (every image is scored); use "
                "split='val' (the default) or 'all'."
            )
        self.params = self.card_params(card)
        self.mos_higher_is_better = bool(self.params["higher_is_better"])
        score_range = self.params["score_range"]
        self.mos_range = tuple(float(v) for v in score_range) if score_range else None
        super().__init__(root, card=card, split="all", skip_bad=skip_bad)

    # -- card parameters -----------------------------------------------------------------------

    @classmethod
    def card_params(cls, card: DatasetCard | None) -> dict[str, Any]:
        """The adapter's parameters: class defaults overridden by the card's ``params``.

        Raises:
            InputError: On an unknown key or a value of the wrong kind, naming the card.
        """
        params: dict[str, Any] = {
            "higher_is_better": cls.default_higher_is_better,
            "score_range": list(cls.default_range),
            "distortion_column": "",
            "distortion_types": list(cls.default_types),
            "how_to_obtain": "",
            **cls.extra_params,
        }
        params = merge_card_params(card, params, cls.adapter)
        where = f"dataset card {card.name!r}" if card is not None else cls.adapter
        if not isinstance(params["higher_is_better"], bool):
            raise InputError(
                f"{where}: params.higher_is_better must be true (MOS: higher = better) or false "
                f"(DMOS: higher = worse), got {params['higher_is_better']!r}."
            )
        rng = params["score_range"]
        if (
            not isinstance(rng, list | tuple)
            or len(rng) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in rng)
            or not rng[0] < rng[1]
        ):
            raise InputError(f"{where}: params.score_range must be [low, high] with low < high.")
        types = params["distortion_types"]
        if cls.default_types and (
            not isinstance(types, list | tuple) or len(types) != len(cls.default_types)
        ):
            raise InputError(
                f"{where}: params.distortion_types must list {len(cls.default_types)} names, "
                f"one per distortion type in the dataset's numbering order."
            )
        return params

    # -- finding the data ----------------------------------------------------------------------

    @classmethod
    def locate(cls, root: Path) -> Path | None:
        """The folder holding the data: ``root`` or one of its direct sub-folders (sorted)."""
        root = Path(root)
        if not root.is_dir():
            return None
        candidates = [root] + sorted(
            (Path(e.path) for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")),
            key=lambda p: p.name,
        )
        for folder in candidates:
            if any((folder / marker).is_file() for marker in cls.markers):
                return folder
        return None

    @classmethod
    def is_layout(cls, path: Path) -> bool:
        """True for a folder (or its direct sub-folder) holding one of :attr:`markers`."""
        return bool(cls.markers) and path.is_dir() and cls.locate(path) is not None

    @classmethod
    def install_hint(cls, root: Path, card: DatasetCard | None) -> str:
        """Which files go where, and how to download or request them."""
        layout = "expected " + cls.layout.format(home=root) + "."
        if card is None:
            return layout
        params = cls.card_params(card)
        where = (
            f" To keep data elsewhere set {DATA_ENV} or pass --data-root / data_root (the "
            f"dataset lives in <data root>/{card.name}/)."
        )
        if not card.download:
            obtain = " ".join(str(params["how_to_obtain"]).split())
            return (
                f"{layout} {card.name} cannot be downloaded automatically: {obtain} Put the "
                f"extracted files in {root} (or one sub-folder of it).{where}"
            )
        specs = parse_archive_specs(card.download, f"dataset card {card.name!r}")
        by_hand = "; ".join(
            f"{spec.url} extracted into {root / spec.extract_to if spec.extract_to else root}"
            for spec in specs
            if spec.default
        )
        return (
            f"{layout} Download with `iqa-bench download {card.name}` or "
            f"open_dataset({card.name!r}, download=True); or by hand: {by_hand}.{where}"
        )

    @classmethod
    def prepare(
        cls,
        root: Path,
        card: DatasetCard,
        parts: Iterable[str] | None = None,
        progress: bool = True,
        force: bool = False,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    ) -> Path:
        """Download and extract the card's archives unless the data is already there.

        Raises:
            DataNotFoundError: For a dataset without downloads whose files are missing; the
                message says where to request them and where to put them.
            DownloadError: On network failures; the message also says where extracted files go.
            InputError: On a verification or extraction failure.
        """
        if not force and cls.locate(root) is not None:
            return Path(root)
        if not card.download:
            raise DataNotFoundError(
                f"no {card.name} data in {root}: {cls.install_hint(root, card)}"
            )
        try:
            return super().prepare(root, card, parts, progress, force, stall_timeout)
        except DownloadError as exc:
            raise DownloadError(
                f"{exc} Or, for {card.name}: {cls.install_hint(root, card)}"
            ) from exc

    # -- reading -------------------------------------------------------------------------------

    @abstractmethod
    def _rows(self, home: Path) -> list[MOSRow]:
        """Parse the score file(s) in ``home`` into rows (files are checked by the caller)."""

    def _subset_names(self) -> tuple[str, ...]:
        return tuple(str(t) for t in self.params["distortion_types"])

    def _home(self) -> Path | None:
        return self.locate(self.root)

    def _load(self) -> dict[str, list[Sample]]:
        home = self._home()
        if home is None:
            raise DataNotFoundError(
                f"no {self.name} data in {self.root}: {self.install_hint(self.root, self.card)}"
            )
        by_subset: dict[str, list[MOSSample]] = {}
        seen: dict[str, str] = {}
        for row in self._rows(home):
            if row.sample_id in seen:
                raise InputError(
                    f"{row.where}: sample {row.sample_id!r} repeats {seen[row.sample_id]}; every "
                    "distorted image must be listed once."
                )
            seen[row.sample_id] = row.where
            if not math.isfinite(row.score):
                reason = f"{row.unit} {row.line}: score {row.score!r} is not a finite number"
                self._reject(row.sample_id, row.source, reason, "mos", row.subset)
                continue
            missing = next((p for p in (row.ref, row.dist) if not p.is_file()), None)
            if missing is not None:
                self._reject(
                    row.sample_id,
                    missing,
                    f"image file missing ({row.where}; expected layout: "
                    f"{self.layout.format(home=home)})",
                    "mos",
                    row.subset,
                    error=DataNotFoundError,
                )
                continue
            by_subset.setdefault(row.subset, []).append(
                MOSSample(row.sample_id, row.subset, row.ref, row.dist, row.score, row.level)
            )
        if not by_subset and not self.bad_samples:
            raise InputError(f"{home}: the score file lists no images.")
        order = subset_order(by_subset, self._subset_names())
        return {"mos": [s for subset in order for s in by_subset[subset]]}
