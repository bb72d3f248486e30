"""Adapter ``folder``: your own user study as CSV files with a header row.

2AFC rows: ``ref,p0,p1,h`` (``h`` = fraction preferring ``p1``). JND rows: ``p0,p1,same``
(``same`` = fraction saying "same"). Both accept optional ``subset`` (default ``all``) and ``id``
(default: the CSV line number) columns. Image paths are relative to the CSV's folder (absolute
paths work too). The task is inferred from the columns. Open a single CSV file, or a folder
holding ``2afc.csv`` and/or ``jnd.csv``. Sample ids are ``"<csv stem>/<subset>/<id>"``.

Example CSV (``study/2afc.csv``)::

    ref,p0,p1,h,subset
    images/ref1.png,images/a1.png,images/b1.png,0.8,faces

Example:
    >>> import numpy as np
    >>> from iqa_bench.datasets import open_dataset
    >>> from iqa_bench.images import write_png
    >>> for name in ("ref1", "a1", "b1"):
    ...     write_png(tmp_path / "study/images" / f"{name}.png", np.zeros((8, 8, 3), np.uint8))
    >>> _ = (tmp_path / "study/2afc.csv").write_text(
    ...     "ref,p0,p1,h,subset\\nimages/ref1.png,images/a1.png,images/b1.png,0.8,faces\\n"
    ... )
    >>> ds = open_dataset(tmp_path / "study")
    >>> ds.samples("2afc")[0].sample_id
    '2afc/faces/000002'
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..config import DatasetCard
from ..errors import DataNotFoundError, InputError
from .base import (
    Dataset,
    JNDSample,
    Sample,
    TwoAFCSample,
    read_csv_header,
    read_text,
    register_adapter,
)

#: Required then optional columns per task.
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "2afc": (("ref", "p0", "p1", "h"), ("subset", "id")),
    "jnd": (("p0", "p1", "same"), ("subset", "id")),
}
DEFAULT_SUBSET = "all"
#: The tasks this adapter reads (MOS CSVs belong to the ``mos-folder`` adapter).
TASKS = tuple(COLUMNS)


def _infer_task(columns: list[str], path: Path) -> str:
    says_2afc = "h" in columns or "ref" in columns
    says_jnd = "same" in columns
    if says_2afc == says_jnd:
        raise InputError(
            f"{path}: cannot tell the task from the header {','.join(columns)}; use ref,p0,p1,h "
            "for 2AFC or p0,p1,same for JND (optional columns: subset, id)."
        )
    task = "2afc" if says_2afc else "jnd"
    if path.stem in TASKS and path.stem != task:
        raise InputError(f"{path}: the file is named {path.name} but its columns are {task} ones.")
    required, optional = COLUMNS[task]
    missing = [c for c in required if c not in columns]
    unknown = [c for c in columns if c not in required + optional]
    if missing or unknown or len(set(columns)) != len(columns):
        problem = f"missing column {missing[0]!r}" if missing else f"unexpected columns {unknown}"
        if not missing and not unknown:
            problem = "a repeated column name"
        raise InputError(
            f"{path}: line 1 (header) has {problem}; {task} CSVs have columns "
            f"{','.join(required)} plus optional {','.join(optional)}."
        )
    return task


@register_adapter("folder", detect_rank=30)
class FolderDataset(Dataset):
    """Reads user-study CSVs; see the module docstring.

    Args:
        root: A ``.csv`` file, or a folder holding ``2afc.csv`` and/or ``jnd.csv``.
        card: A dataset card, or ``None`` when opened by path.
        split: Must be ``val``: folder datasets have no splits.
        skip_bad: Record rows with bad values or missing images in ``bad_samples`` instead of
            raising.

    Raises:
        DataNotFoundError: When no CSV is found, or an image file is missing (naming it and the
            CSV line).
        InputError: On a bad header, a file that is not UTF-8 text, or a bad value (naming the
            CSV file and the line number).

    Example:
        >>> import numpy as np
        >>> from iqa_bench.images import write_png
        >>> for name in ("a", "b"):
        ...     write_png(tmp_path / f"{name}.png", np.zeros((8, 8, 3), np.uint8))
        >>> _ = (tmp_path / "jnd.csv").write_text("p0,p1,same\\na.png,b.png,0.5\\n")
        >>> FolderDataset(tmp_path / "jnd.csv").subsets("jnd")
        ('all',)
    """

    def __init__(
        self,
        root: Path,
        card: DatasetCard | None = None,
        split: str = "val",
        skip_bad: bool = False,
    ) -> None:
        super().__init__(root, card=card, split=split, skip_bad=skip_bad)
        if card is None and self.root.is_file():
            self.name = self.root.stem

    def _csv_files(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        found = [
            self.root / f"{task}.csv" for task in TASKS if (self.root / f"{task}.csv").is_file()
        ]
        if not found:
            raise DataNotFoundError(
                f"no study CSV for dataset {self.name!r}: expected {self.root}/2afc.csv "
                f"(columns ref,p0,p1,h) and/or {self.root}/jnd.csv (columns p0,p1,same), with "
                "image paths relative to the CSV's folder."
            )
        return found

    def _load(self) -> dict[str, list[Sample]]:
        if self.split != "val":
            raise InputError(
                f"split {self.split!r}: folder datasets have no splits; use split='val' (default)."
            )
        loaded: dict[str, list[Sample]] = {}
        for path in self._csv_files():
            task, samples = self._read_csv(path)
            loaded[task] = samples
        return loaded

    @staticmethod
    def _sample(
        task: str, sample_id: str, subset: str, images: dict[str, Path], label: float
    ) -> Sample:
        if task == "2afc":
            return TwoAFCSample(sample_id, subset, images["ref"], images["p0"], images["p1"], label)
        return JNDSample(sample_id, subset, images["p0"], images["p1"], label)

    def _image(
        self, text: str, column: str, where: str, sample: tuple[str, str, str], csv_path: Path
    ) -> Path | None:
        sample_id, task, subset = sample
        if not text:
            self._reject(sample_id, csv_path, f"{where}: column {column!r} is empty", task, subset)
            return None
        image = Path(text).expanduser()
        image = image if image.is_absolute() else csv_path.parent / image
        if not image.is_file():
            self._reject(
                sample_id,
                image,
                f"image file missing (column {column!r}, {where} of {csv_path})",
                task,
                subset,
                error=DataNotFoundError,
            )
            return None
        return image

    def _fraction(
        self, text: str, column: str, where: str, sample: tuple[str, str, str], path: Path
    ) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            self._reject(
                sample[0],
                path,
                f"{where}: {column} = {text!r} is not a fraction in [0, 1]",
                *sample[1:],
            )
            return math.nan
        return value

    def _read_csv(self, path: Path) -> tuple[str, list[Sample]]:
        reader = csv.reader(io.StringIO(read_text(path), newline=""))
        header = next(reader, None)
        if not header:
            raise InputError(f"{path}: the file is empty; it needs a header row and data rows.")
        columns = [c.strip() for c in header]
        task = _infer_task(columns, path)
        # Blank lines (a spreadsheet's trailing rows) hold no sample, so skipping them drops none.
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
        if not rows:
            raise InputError(f"{path}: no data rows after the header.")
        by_subset: dict[str, list[Sample]] = {}
        first_line: dict[str, int] = {}
        for line, cells in rows:
            where = f"line {line}"
            if len(cells) != len(columns):
                raise InputError(
                    f"{path}: {where} has {len(cells)} fields, the header has {len(columns)}."
                )
            row = dict(zip(columns, (cell.strip() for cell in cells), strict=True))
            subset = row.get("subset") or DEFAULT_SUBSET
            sample_id = f"{path.stem}/{subset}/{row.get('id') or f'{line:06d}'}"
            if sample_id in first_line:
                raise InputError(
                    f"{path}: {where} repeats sample id {sample_id!r} of line "
                    f"{first_line[sample_id]}; ids must be unique within a subset."
                )
            first_line[sample_id] = line
            label_column = "h" if task == "2afc" else "same"
            label = self._fraction(
                row[label_column], label_column, where, (sample_id, task, subset), path
            )
            if math.isnan(label):
                continue  # recorded under skip_bad (otherwise it raised)
            images: dict[str, Path] = {}
            for column in ("ref", "p0", "p1") if task == "2afc" else ("p0", "p1"):
                image = self._image(row[column], column, where, (sample_id, task, subset), path)
                if image is None:
                    break  # one bad sample is recorded once, with its first problem
                images[column] = image
            else:
                by_subset.setdefault(subset, []).append(
                    self._sample(task, sample_id, subset, images, label)
                )
        return task, [sample for samples in by_subset.values() for sample in samples]

    @classmethod
    def is_layout(cls, path: Path) -> bool:
        """True for a 2AFC/JND ``.csv`` file or a folder holding ``2afc.csv``/``jnd.csv``."""
        if path.is_file():
            # A MOS CSV (with a ``dist`` column) or NIGHTS' data.csv belongs to other adapters.
            header = set(read_csv_header(path))
            return path.suffix.lower() == ".csv" and not header & {"dist", "left_path"}
        return any((path / f"{task}.csv").is_file() for task in TASKS)
