"""Adapters for the public full-reference IQA databases TID2013, KADID-10k, CSIQ and LIVE (release 2).

Each reads the files exactly as their authors distribute them (after extraction); see
``docs/DATASETS.md`` for sources, score directions and where the files go.

- ``tid2013``: ``mos_with_names.txt`` (``MOS name`` per line; MOS 0-9, higher = better),
  ``distorted_images/iXX_YY_Z.bmp`` (XX reference 01-25, YY type 01-24, Z level 1-5; the letter
  case varies) and ``reference_images/IXX.BMP``.
- ``kadid10k``: ``dmos.csv`` (``dist_img,ref_img,dmos,var``) and ``images/IXX_YY_ZZ.png`` /
  ``images/IXX.png``. Despite its name the ``dmos`` column is a degradation-category rating from
  1 (very annoying) to 5 (imperceptible): higher = better quality.
- ``csiq``: ``csiq.DMOS.xlsx`` (sheet ``all_by_image``; columns ``image, dst_type, dst_lev,
  dmos``) or a CSV export of that sheet named ``csiq_dmos.csv``; ``src_imgs/<image>.png`` and
  ``dst_imgs/<type>/<image>.<TYPE>.<level>.png``. DMOS 0-1, higher = worse.
- ``live``: ``refnames_all.mat``, ``dmos_realigned.mat`` (``dmos_new``, ``orgs``; or ``dmos.mat``
  with ``dmos``, ``orgs``), folders ``jp2k`` (227 images), ``jpeg`` (233), ``wn``, ``gblur``,
  ``fastfading`` (174 each) holding ``img<k>.bmp``, and ``refimgs/``. DMOS about 0-100, higher =
  worse; entries flagged in ``orgs`` are the references themselves and are left out.

Example:
    >>> ds = open_dataset("kadid10k")
    >>> ds.samples("mos")[0]
    MOSSample(sample_id='gaussian-blur/i01_01_01', subset='gaussian-blur', ..., mos=4.57, level=1)
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .base import DATASETS, read_csv_header
from .mos import FileIndex, MOSDataset, MOSRow

__all__ = ["CSIQDataset", "KADID10kDataset", "LIVEDataset", "TID2013Dataset"]


def _number(text: Any) -> float:
    """``float(text)``, or NaN for empty or non-numeric text (rejected later as not finite)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


@DATASETS.register("tid2013")
class TID2013Dataset(MOSDataset):
    """TID2013 (Ponomarenko et al., 2015): 3000 images, 25 references x 24 types x 5 levels."""

    adapter = "tid2013"
    markers = ("mos_with_names.txt",)
    default_higher_is_better = True
    default_range = (0.0, 9.0)
    # Names follow the TID2013 readme's Table 1, in its numbering (YY in iXX_YY_Z.bmp).
    default_types = (
        "gaussian-noise",
        "color-noise",
        "correlated-noise",
        "masked-noise",
        "high-freq-noise",
        "impulse-noise",
        "quantization-noise",
        "gaussian-blur",
        "denoising",
        "jpeg",
        "jpeg2000",
        "jpeg-transmission",
        "jpeg2000-transmission",
        "pattern-noise",
        "block-distortion",
        "mean-shift",
        "contrast-change",
        "saturation-change",
        "multiplicative-noise",
        "comfort-noise",
        "noisy-compression",
        "color-quantization",
        "chromatic-aberration",
        "sparse-sampling",
    )
    layout = (
        "{home}/mos_with_names.txt (lines 'MOS file name'), {home}/distorted_images/i01_01_1.bmp "
        "... and {home}/reference_images/I01.BMP ... (tid2013.rar extracted as is)"
    )
    _NAME = re.compile(r"^i(\d{2})_(\d{2})_(\d)\.bmp$", re.IGNORECASE)

    def _rows(self, home: Path) -> list[MOSRow]:
        source = home / "mos_with_names.txt"
        dist_index = FileIndex([home / "distorted_images"])
        ref_index = FileIndex([home / "reference_images"])
        types = self._subset_names()
        rows = []
        for line, text in enumerate(source.read_text(encoding="latin-1").splitlines(), 1):
            fields = text.split()
            if not fields:
                continue
            match = self._NAME.match(fields[-1]) if len(fields) == 2 else None
            if match is None or not 1 <= int(match[2]) <= len(types):
                raise ValueError(
                    f"{source}, line {line}: expected 'MOS iXX_YY_Z.bmp' with a distortion type YY "
                    f"from 01 to {len(types)}, got {text.strip()!r}."
                )
            subset = types[int(match[2]) - 1]
            rows.append(
                MOSRow(
                    sample_id=f"{subset}/{Path(fields[1]).stem.lower()}",
                    subset=subset,
                    ref=ref_index.find(f"i{match[1]}.bmp"),
                    dist=dist_index.find(fields[1]),
                    score=_number(fields[0]),
                    level=int(match[3]),
                    source=source,
                    line=line,
                )
            )
        return rows


@DATASETS.register("kadid10k")
class KADID10kDataset(MOSDataset):
    """KADID-10k (Lin, Hosu, Saupe, 2019): 10,125 images, 81 references x 25 types x 5 levels."""

    adapter = "kadid10k"
    markers = ("dmos.csv",)
    default_higher_is_better = True  # the "dmos" column is a 1-5 rating, 5 = imperceptible
    default_range = (1.0, 5.0)
    # Names follow the KADID-10k paper's list of distortions, in its numbering (YY).
    default_types = (
        "gaussian-blur",
        "lens-blur",
        "motion-blur",
        "color-diffusion",
        "color-shift",
        "color-quantization",
        "color-saturation-1",
        "color-saturation-2",
        "jpeg2000",
        "jpeg",
        "white-noise",
        "white-noise-color",
        "impulse-noise",
        "multiplicative-noise",
        "denoise",
        "brighten",
        "darken",
        "mean-shift",
        "jitter",
        "non-eccentricity-patch",
        "pixelate",
        "quantization",
        "color-block",
        "high-sharpen",
        "contrast-change",
    )
    layout = (
        "{home}/dmos.csv (columns dist_img,ref_img,dmos,var) and {home}/images/I01_01_01.png ... "
        "with the references {home}/images/I01.png ... (kadid10k.zip extracted as is)"
    )
    _NAME = re.compile(r"^i(\d{2})_(\d{2})_(\d{2})\.png$", re.IGNORECASE)

    @classmethod
    def locate(cls, root: Path) -> Path | None:
        """The folder whose ``dmos.csv`` has KADID-10k's ``dist_img`` column (root or one down)."""
        home = super().locate(root)
        if home is None or "dist_img" in read_csv_header(home / "dmos.csv"):
            return home
        return None

    def _rows(self, home: Path) -> list[MOSRow]:
        source = home / "dmos.csv"
        images = FileIndex([home / "images"])
        types = self._subset_names()
        rows = []
        with source.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"dist_img", "ref_img", "dmos"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f"{source}: header lacks {sorted(missing)}; KADID-10k's dmos.csv has columns "
                    "dist_img,ref_img,dmos,var."
                )
            for record in reader:
                line = reader.line_num
                name = (record["dist_img"] or "").strip()
                match = self._NAME.match(name)
                if match is None or not 1 <= int(match[2]) <= len(types):
                    raise ValueError(
                        f"{source}, line {line}: dist_img {name!r} is not IXX_YY_ZZ.png with a "
                        f"distortion type YY from 01 to {len(types)}."
                    )
                subset = types[int(match[2]) - 1]
                rows.append(
                    MOSRow(
                        sample_id=f"{subset}/{Path(name).stem.lower()}",
                        subset=subset,
                        ref=images.find((record["ref_img"] or "").strip()),
                        dist=images.find(name),
                        score=_number(record["dmos"]),
                        level=int(match[3]),
                        source=source,
                        line=line,
                    )
                )
        return rows


def _cell(value: Any) -> str:
    """A spreadsheet cell as text: ``1600.0`` -> ``"1600"``, ``None`` -> ``""``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def _find_header(rows: list[list[str]], required: tuple[str, ...]) -> int | None:
    for index, row in enumerate(rows[:50]):
        if set(required) <= {c.strip().lower() for c in row}:
            return index
    return None


@DATASETS.register("csiq")
class CSIQDataset(MOSDataset):
    """CSIQ (Larson and Chandler, 2010): 866 images, 30 references x 6 types x 4-5 levels."""

    adapter = "csiq"
    markers = ("csiq.DMOS.xlsx", "csiq_dmos.csv")
    default_higher_is_better = False
    default_range = (0.0, 1.0)
    # Folder names under dst_imgs/, in the spreadsheet's dst_idx order (1-6).
    default_types = ("awgn", "jpeg", "jpeg2000", "fnoise", "blur", "contrast")
    #: dst_type spellings of the spreadsheet -> index into the types (0-5).
    TYPE_INDEX: ClassVar[dict[str, int]] = {
        "noise": 0,
        "awgn": 0,
        "jpeg": 1,
        "jpeg 2000": 2,
        "jpeg2000": 2,
        "f noise": 3,
        "fnoise": 3,
        "blur": 4,
        "contrast": 5,
    }
    layout = (
        "{home}/csiq.DMOS.xlsx (or its sheet all_by_image saved as {home}/csiq_dmos.csv, columns "
        "image,dst_type,dst_lev,dmos), {home}/src_imgs/1600.png ... and "
        "{home}/dst_imgs/awgn/1600.AWGN.1.png ... (src_imgs.zip and dst_imgs.zip extracted into "
        "src_imgs/ and dst_imgs/)"
    )
    _REQUIRED = ("image", "dst_type", "dst_lev", "dmos")

    def _table(self, home: Path) -> tuple[Path, list[list[str]]]:
        xlsx, csv_path = home / "csiq.DMOS.xlsx", home / "csiq_dmos.csv"
        if csv_path.is_file():
            with csv_path.open(newline="", encoding="utf-8-sig") as fh:
                return csv_path, [list(r) for r in csv.reader(fh)]
        try:
            import openpyxl
        except ImportError:  # pragma: no cover - openpyxl is a declared dependency
            raise ValueError(
                f"{xlsx}: reading .xlsx needs the package openpyxl (`pip install openpyxl`); or "
                f"save its sheet all_by_image as {csv_path}."
            ) from None
        book = openpyxl.load_workbook(xlsx, read_only=True, data_only=True)
        try:
            names = ["all_by_image"] if "all_by_image" in book.sheetnames else book.sheetnames
            for name in names:
                rows = [[_cell(v) for v in r] for r in book[name].iter_rows(values_only=True)]
                if _find_header(rows, self._REQUIRED) is not None:
                    return xlsx, rows
        finally:
            book.close()
        raise ValueError(
            f"{xlsx}: no sheet has a header row with {', '.join(self._REQUIRED)}; expected "
            "CSIQ's sheet all_by_image."
        )

    def _rows(self, home: Path) -> list[MOSRow]:
        source, table = self._table(home)
        start = _find_header(table, self._REQUIRED)
        if start is None:
            raise ValueError(
                f"{source}: no header row with columns {', '.join(self._REQUIRED)} in the first 50 "
                "rows; export CSIQ's sheet all_by_image with its header."
            )
        column = {c.strip().lower(): i for i, c in enumerate(table[start])}
        src, dst = home / "src_imgs", home / "dst_imgs"
        refs = FileIndex([src if src.is_dir() else home], recursive=True)
        dists = FileIndex([dst if dst.is_dir() else home], recursive=True)
        types = self._subset_names()
        rows = []
        for line, cells in enumerate(table[start + 1 :], start + 2):
            cells = cells + [""] * (max(column.values()) + 1 - len(cells))
            image = cells[column["image"]].strip()
            if not image:
                continue  # blank or trailing rows of the spreadsheet
            kind = cells[column["dst_type"]].strip().lower()
            level = cells[column["dst_lev"]].strip()
            if kind not in self.TYPE_INDEX or not level.isdigit():
                raise ValueError(
                    f"{source}, line {line}: dst_type {kind!r} / dst_lev {level!r} not understood; "
                    f"dst_type is one of {sorted(self.TYPE_INDEX)}, dst_lev an integer."
                )
            folder = self.default_types[self.TYPE_INDEX[kind]]
            subset = types[self.TYPE_INDEX[kind]]
            name = f"{image}.{folder}.{level}.png"
            rows.append(
                MOSRow(
                    sample_id=f"{subset}/{image.lower()}.{folder}.{level}",
                    subset=subset,
                    ref=refs.find(f"{image}.png", src / f"{image}.png"),
                    dist=dists.find(name, dst / folder / name),
                    score=_number(cells[column["dmos"]]),
                    level=int(level),
                    source=source,
                    line=line,
                )
            )
        return rows


@DATASETS.register("live")
class LIVEDataset(MOSDataset):
    """LIVE Image Quality Assessment Database release 2 (Sheikh et al., 2006): 779 images."""

    adapter = "live"
    markers = ("refnames_all.mat",)
    default_higher_is_better = False
    default_range = (0.0, 100.0)
    default_types = ("jp2k", "jpeg", "wn", "gblur", "fastfading")
    #: Images per folder, in the order of the entries of dmos(.mat) and refnames_all.mat.
    FOLDER_SIZES: ClassVar[tuple[int, ...]] = (227, 233, 174, 174, 174)
    extra_params: ClassVar[dict[str, Any]] = {"realigned": True}
    layout = (
        "{home}/refnames_all.mat, {home}/dmos_realigned.mat (or dmos.mat with params.realigned: "
        "false), {home}/refimgs/*.bmp and {home}/jp2k, jpeg, wn, gblur, fastfading holding "
        "img1.bmp ... (databaserelease2 extracted as is, dmos_realigned.mat added beside it)"
    )

    def _rows(self, home: Path) -> list[MOSRow]:
        from scipy.io import loadmat

        realigned = bool(self.params["realigned"])
        file, key = ("dmos_realigned.mat", "dmos_new") if realigned else ("dmos.mat", "dmos")
        source = next((p / file for p in (home, self.root) if (p / file).is_file()), home / file)
        if not source.is_file():
            other = "false to use dmos.mat" if realigned else "true to use dmos_realigned.mat"
            raise FileNotFoundError(
                f"{source} not found: download {file} from the LIVE database page into {home}, "
                f"or set the card's params.realigned to {other}."
            )
        scores = loadmat(source)
        if key not in scores or "orgs" not in scores:
            raise ValueError(f"{source} lacks {key!r} or 'orgs' (has {sorted(scores)}).")
        dmos = np.asarray(scores[key], dtype=np.float64).ravel()
        orgs = np.asarray(scores["orgs"]).ravel()
        names = [
            str(np.asarray(n).ravel()[0])
            for n in np.asarray(loadmat(home / "refnames_all.mat")["refnames_all"]).ravel()
        ]
        total = sum(self.FOLDER_SIZES)
        if not len(dmos) == len(orgs) == len(names) == total:
            raise ValueError(
                f"{source} and {home / 'refnames_all.mat'} hold {len(dmos)}, {len(orgs)} and "
                f"{len(names)} entries; LIVE release 2 has {total} (jp2k 227, jpeg 233, wn, "
                "gblur, fastfading 174 each)."
            )
        types = self._subset_names()
        refs = FileIndex([home / "refimgs"])
        rows, entry = [], 0
        for folder, subset, size in zip(self.default_types, types, self.FOLDER_SIZES, strict=True):
            images = FileIndex([home / folder])
            for k in range(1, size + 1):
                entry += 1
                if orgs[entry - 1]:
                    continue  # the reference itself, scored against itself
                rows.append(
                    MOSRow(
                        sample_id=f"{subset}/img{k}",
                        subset=subset,
                        ref=refs.find(names[entry - 1]),
                        dist=images.find(f"img{k}.bmp"),
                        score=float(dmos[entry - 1]),
                        level=None,
                        source=source,
                        line=entry,
                        unit="entry",
                    )
                )
        return rows
