"""Adapter ``mos-folder``: your own full-reference quality study as one CSV file.

Columns (header row required): ``ref`` and ``dist`` (image paths, relative to the CSV's folder or
absolute), exactly one score column, and optionally ``type`` (distortion type, default ``all``),
``level`` (integer) and ``id`` (default: the CSV line number). The score column's name states its
direction, so it is never guessed:

- ``mos``: higher = better quality;
- ``dmos``: higher = worse quality;
- ``score``: direction given by a dataset card's ``params.higher_is_better``.

Open the CSV itself, a folder holding ``mos.csv``, or a card with ``adapter: mos-folder`` whose
``params.csv`` names the file inside ``<data root>/<name>/``. ``params.score_range`` sets the
nominal scale (default: the observed minimum and maximum). Sample ids are
``"<csv stem>/<type>/<id>"``.

Example CSV (``study/mos.csv``)::

    ref,dist,dmos,type,level
    refs/a.png,dist/a_blur_1.png,12.5,blur,1

Example:
    >>> import numpy as np
    >>> from iqa_bench.datasets import open_dataset
    >>> from iqa_bench.images import write_png
    >>> for name in ("refs/a.png", "dist/a_blur_1.png"):
    ...     write_png(tmp_path / "study" / name, np.zeros((8, 8, 3), np.uint8))
    >>> _ = (tmp_path / "study/mos.csv").write_text(
    ...     "ref,dist,dmos,type,level\\nrefs/a.png,dist/a_blur_1.png,12.5,blur,1\\n"
    ... )
    >>> ds = open_dataset(tmp_path / "study/mos.csv")
    >>> ds.mos_higher_is_better, ds.subsets("mos")
    (False, ('blur',))
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, ClassVar

from ..config import DatasetCard
from ..errors import DataNotFoundError, InputError
from .base import read_csv_header, read_text, register_adapter
from .mos import MOSDataset, MOSRow

__all__ = ["MOSFolderDataset"]

SCORE_COLUMNS = {"mos": True, "dmos": False, "score": None}
OPTIONAL = ("type", "level", "id")
DEFAULT_CSV = "mos.csv"


def _is_mos_csv(path: Path) -> bool:
    header = set(read_csv_header(path))
    return {"ref", "dist"} <= header and bool(header & set(SCORE_COLUMNS))


@register_adapter("mos-folder", detect_rank=60)
class MOSFolderDataset(MOSDataset):
    """Reads a user's MOS/DMOS CSV; see the module docstring.

    Raises:
        DataNotFoundError: When the CSV or an image is missing (naming it and the CSV line).
        InputError: On a bad header, an undecidable or contradicting score direction, a bad
            value (naming the CSV line) or a repeated sample id.
    """

    markers = (DEFAULT_CSV,)
    extra_params: ClassVar[dict[str, Any]] = {"csv": DEFAULT_CSV}
    layout = (
        "a CSV with columns ref,dist and one of mos (higher = better), dmos (higher = worse) or "
        "score (direction from the card's params.higher_is_better), optional type,level,id, at "
        "{home} (a .csv file, or a folder holding mos.csv)"
    )

    def __init__(
        self,
        root: Path,
        card: DatasetCard | None = None,
        split: str = "val",
        skip_bad: bool = False,
    ) -> None:
        self._card_direction = card is not None and "higher_is_better" in card.params
        self._csv = self._csv_path(Path(root), card)
        self._header = self._check_header(self._csv)
        super().__init__(root, card=card, split=split, skip_bad=skip_bad)
        if card is None and Path(root).is_file():
            self.name = Path(root).stem

    @classmethod
    def _csv_path(cls, root: Path, card: DatasetCard | None) -> Path:
        if root.is_file():
            return root
        name = str((card.params if card is not None else {}).get("csv", DEFAULT_CSV))
        path = root / name
        if not path.is_file():
            raise DataNotFoundError(
                f"no MOS CSV for dataset {card.name if card else root.name!r}: expected {path} "
                f"({cls.layout.format(home=path)})."
            )
        return path

    @staticmethod
    def _check_header(path: Path) -> list[str]:
        header = read_csv_header(path)
        scores = [c for c in header if c in SCORE_COLUMNS]
        unknown = [c for c in header if c not in ("ref", "dist", *SCORE_COLUMNS, *OPTIONAL)]
        problem = ""
        if "ref" not in header or "dist" not in header:
            problem = "it needs columns ref and dist"
        elif len(scores) != 1:
            problem = f"it needs exactly one score column (mos, dmos or score), has {scores}"
        elif unknown or len(set(header)) != len(header):
            problem = f"unexpected or repeated columns {unknown or header}"
        if problem:
            raise InputError(
                f"{path}: line 1 (header) {','.join(header)!r}: {problem}. MOS CSVs have columns "
                f"ref,dist,<mos|dmos|score> plus optional {','.join(OPTIONAL)}."
            )
        return header

    @classmethod
    def card_params(cls, card: DatasetCard | None) -> dict[str, Any]:
        params = super().card_params(card)
        params["score_range"] = list((card.params if card else {}).get("score_range", []))
        return params

    def _score_column(self) -> tuple[str, bool]:
        column = next(c for c in self._header if c in SCORE_COLUMNS)
        implied = SCORE_COLUMNS[column]
        given = self.params["higher_is_better"] if self._card_direction else None
        if implied is None and given is None:
            raise InputError(
                f"{self._csv}: the score column 'score' has no direction; rename it to mos "
                "(higher = better) or dmos (higher = worse), or open it through a dataset card "
                "with params.higher_is_better."
            )
        if implied is not None and given is not None and implied != given:
            raise InputError(
                f"{self._csv}: column {column!r} means higher_is_better={implied}, but the card "
                f"says {given}; rename the column to 'score' or fix the card."
            )
        return column, implied if implied is not None else bool(given)

    def _rows(self, home: Path) -> list[MOSRow]:
        column, higher = self._score_column()
        self.mos_higher_is_better = higher
        path, rows = self._csv, []
        reader = csv.reader(io.StringIO(read_text(path), newline=""))
        next(reader)
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # a blank line holds no sample
            if len(cells) != len(self._header):
                raise InputError(
                    f"{path}: line {line} has {len(cells)} fields, the header has "
                    f"{len(self._header)}."
                )
            row = dict(zip(self._header, (c.strip() for c in cells), strict=True))
            subset = row.get("type") or "all"
            level = row.get("level") or ""
            if level and not level.lstrip("-").isdigit():
                raise InputError(f"{path}: line {line}: level {level!r} is not an integer.")
            try:
                score = float(row[column])
            except ValueError:
                score = math.nan
            rows.append(
                MOSRow(
                    sample_id=f"{path.stem}/{subset}/{row.get('id') or f'{line:06d}'}",
                    subset=subset,
                    ref=self._image(row["ref"]),
                    dist=self._image(row["dist"]),
                    score=score,
                    level=int(level) if level else None,
                    source=path,
                    line=line,
                )
            )
        scores = [r.score for r in rows if math.isfinite(r.score)]
        if not self.params["score_range"] and scores and min(scores) < max(scores):
            self.mos_range = (min(scores), max(scores))
        return rows

    def _image(self, text: str) -> Path:
        image = Path(text).expanduser()
        return image if image.is_absolute() else self._csv.parent / image

    def _home(self) -> Path | None:
        return self._csv.parent

    @classmethod
    def locate(cls, root: Path) -> Path | None:
        """The CSV's folder: ``root``'s parent for a CSV file, else ``root`` if it holds mos.csv."""
        root = Path(root)
        if root.is_file():
            return root.parent
        return root if (root / DEFAULT_CSV).is_file() else None

    @classmethod
    def prepare(
        cls,
        root: Path,
        card: DatasetCard,
        parts: Any = None,
        progress: bool = True,
        force: bool = False,
        stall_timeout: float | None = None,
    ) -> Path:
        """Nothing to download: checks that the card's CSV is in ``root``.

        Raises:
            DataNotFoundError: Naming the expected CSV and its columns.
        """
        cls._csv_path(Path(root), card)
        return Path(root)

    @classmethod
    def is_layout(cls, path: Path) -> bool:
        """True for a MOS CSV file or a folder holding one named ``mos.csv``."""
        path = Path(path)
        if path.is_file():
            return path.suffix.lower() == ".csv" and _is_mos_csv(path)
        return (path / DEFAULT_CSV).is_file() and _is_mos_csv(path / DEFAULT_CSV)
