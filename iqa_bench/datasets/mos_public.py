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
  dmos``), a comma- or tab-separated export of that sheet (``csiq_dmos.csv``, ...), or the
  derived list ``csiq_label.txt``; ``src_imgs/<image>.png`` and
  ``dst_imgs/<type>/<image>.<TYPE>.<level>.png``. DMOS 0-1, higher = worse.
- ``live``: ``refnames_all.mat``, ``dmos_realigned.mat`` (``dmos_new``, ``orgs``; or ``dmos.mat``
  with ``dmos``, ``orgs``), folders ``jp2k`` (227 images), ``jpeg`` (233), ``wn``, ``gblur``,
  ``fastfading`` (174 each) holding ``img<k>.bmp``, and ``refimgs/``. Realigned DMOS, higher =
  worse, on a nominal 0-100 scale with values from -2.64 to 111.78 (kept as published); entries
  flagged in ``orgs`` are the references themselves and are left out.

Example:
    >>> ds = open_dataset("kadid10k")  # needs the data  # doctest: +SKIP
    >>> ds.samples("mos")[0]  # doctest: +SKIP
    MOSSample(sample_id='gaussian-blur/i01_01_01', subset='gaussian-blur', ..., mos=4.57, level=1)
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import DataNotFoundError, InputError
from .base import read_csv_header, read_text, register_adapter
from .mos import FileIndex, MOSDataset, MOSRow

__all__ = ["CSIQDataset", "KADID10kDataset", "LIVEDataset", "TID2013Dataset"]


def _number(text: Any) -> float:
    """``float(text)``, or NaN for empty or non-numeric text (rejected later as not finite)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


@register_adapter("tid2013", detect_rank=80)
class TID2013Dataset(MOSDataset):
    """TID2013 (Ponomarenko et al., 2015): 3000 images, 25 references x 24 types x 5 levels."""

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
                raise InputError(
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


@register_adapter("kadid10k", detect_rank=40)
class KADID10kDataset(MOSDataset):
    """KADID-10k (Lin, Hosu, Saupe, 2019): 10,125 images, 81 references x 25 types x 5 levels."""

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
        reader = csv.DictReader(io.StringIO(read_text(source), newline=""))
        missing = {"dist_img", "ref_img", "dmos"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(
                f"{source}: header lacks {sorted(missing)}; KADID-10k's dmos.csv has columns "
                "dist_img,ref_img,dmos,var."
            )
        for record in reader:  # DictReader passes over blank lines, which hold no sample
            line = reader.line_num
            name = (record["dist_img"] or "").strip()
            match = self._NAME.match(name)
            if match is None or not 1 <= int(match[2]) <= len(types):
                raise InputError(
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


#: Where the official CSIQ score file comes from (for errors about the derived files).
CSIQ_OFFICIAL = (
    "get the official csiq.DMOS.xlsx from the CSIQ database page of its authors (E. C. Larson, "
    "D. M. Chandler; https://s2.smu.edu/~eclarson/csiq.html at the time of writing) and put it "
    "in {home}, or save its sheet all_by_image there as csiq_dmos.csv"
)


@register_adapter("csiq", detect_rank=20)
class CSIQDataset(MOSDataset):
    """CSIQ (Larson and Chandler, 2010): 866 images, 30 references x 6 types x 4-5 levels.

    Score files, the first found wins: an export of the sheet ``all_by_image`` (comma- or
    tab-separated, see :attr:`EXPORTS`), ``csiq.DMOS.xlsx`` itself, or the widely copied
    derived list ``csiq_label.txt`` (``<image>.<TYPE>.<level>.png <dmos>`` per line). The
    derived list states neither the reference, type and level apart from the file name nor the
    score direction: they are read from the name, and the scores must lie in CSIQ's DMOS range
    0-1 and rise with the level (higher = worse), or it is refused with how to get the official
    file.
    """

    #: Exports of the sheet all_by_image (comma or tab separated, UTF-8 or Excel's UTF-16).
    EXPORTS: ClassVar[tuple[str, ...]] = (
        "csiq_dmos.csv",
        "csiq_dmos.tsv",
        "csiq_dmos.txt",
        "csiq.DMOS.txt",
    )
    LABEL_FILE = "csiq_label.txt"
    markers = ("csiq.DMOS.xlsx", *EXPORTS, LABEL_FILE)
    default_higher_is_better = False
    default_range = (0.0, 1.0)
    # Folder names under dst_imgs/, in the spreadsheet's dst_idx order (1-6).
    default_types = ("awgn", "jpeg", "jpeg2000", "fnoise", "blur", "contrast")
    #: dst_type spellings of the spreadsheet (and type tokens of file names) -> index (0-5).
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
        "{home}/csiq.DMOS.xlsx (or its sheet all_by_image saved as {home}/csiq_dmos.csv, comma "
        "or tab separated, columns image,dst_type,dst_lev,dmos; or the derived list "
        "{home}/csiq_label.txt), {home}/src_imgs/1600.png ... and "
        "{home}/dst_imgs/awgn/1600.AWGN.1.png ... (src_imgs.zip and dst_imgs.zip extracted into "
        "src_imgs/ and dst_imgs/)"
    )
    _REQUIRED = ("image", "dst_type", "dst_lev", "dmos")
    _LABEL = re.compile(
        r"^(?P<image>[^.\s]+)\.(?P<type>[A-Za-z0-9]+)\.(?P<level>\d+)(\.png)?$", re.I
    )

    def _table(self, home: Path) -> tuple[Path, list[list[str]], int]:
        """The score table, its file and the file line of table row 0 minus 1."""
        for name in self.EXPORTS:
            if (home / name).is_file():
                return home / name, self._export_rows(home / name), 1
        if (home / "csiq.DMOS.xlsx").is_file():
            return home / "csiq.DMOS.xlsx", self._xlsx_rows(home / "csiq.DMOS.xlsx"), 1
        return home / self.LABEL_FILE, self._label_rows(home / self.LABEL_FILE, home), 0

    def _export_rows(self, path: Path) -> list[list[str]]:
        text = read_text(path)
        # Excel's "Text (Tab delimited)" and "Unicode Text" exports separate cells by tabs.
        tables = [list(csv.reader(io.StringIO(text, newline=""), delimiter=d)) for d in ",\t"]
        return next((t for t in tables if _find_header(t, self._REQUIRED) is not None), tables[0])

    def _xlsx_rows(self, xlsx: Path) -> list[list[str]]:
        try:
            import openpyxl
            from openpyxl.utils.exceptions import InvalidFileException
        except ImportError:  # pragma: no cover - openpyxl is a declared dependency
            raise InputError(
                f"{xlsx}: reading .xlsx needs the package openpyxl (`pip install openpyxl`); or "
                f"save its sheet all_by_image as {xlsx.with_name('csiq_dmos.csv')}."
            ) from None
        try:
            book = openpyxl.load_workbook(xlsx, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise InputError(
                f"{xlsx}: not a readable .xlsx workbook ({type(exc).__name__}: {exc}); "
                f"{CSIQ_OFFICIAL.format(home=xlsx.parent)}."
            ) from None
        try:
            names = ["all_by_image"] if "all_by_image" in book.sheetnames else book.sheetnames
            for name in names:
                rows = [[_cell(v) for v in r] for r in book[name].iter_rows(values_only=True)]
                if _find_header(rows, self._REQUIRED) is not None:
                    return rows
        finally:
            book.close()
        raise InputError(
            f"{xlsx}: no sheet has a header row with {', '.join(self._REQUIRED)}; expected "
            "CSIQ's sheet all_by_image."
        )

    def _label_rows(self, path: Path, home: Path) -> list[list[str]]:
        """``csiq_label.txt`` as rows of the sheet's columns (header first)."""
        rows = [list(self._REQUIRED)]
        for line, text in enumerate(read_text(path).splitlines(), 1):
            fields = text.split()
            match = self._LABEL.match(fields[0]) if len(fields) == 2 else None
            if not fields:
                rows.append([""] * 4)  # keeps table rows on file lines
                continue
            if match is None or match["type"].lower() not in self.TYPE_INDEX:
                raise InputError(
                    f"{path}, line {line}: expected '<image>.<TYPE>.<level>.png <dmos>' with TYPE "
                    f"one of AWGN, JPEG, jpeg2000, fnoise, BLUR, contrast, got {text.strip()!r}. "
                    f"This derived list cannot be read; {CSIQ_OFFICIAL.format(home=home)}."
                )
            rows.append([match["image"], match["type"].lower(), match["level"], fields[1]])
        self._check_label_scores(path, home, rows[1:])
        return rows

    @staticmethod
    def _check_label_scores(path: Path, home: Path, rows: list[list[str]]) -> None:
        """Refuse a derived list whose scores are not CSIQ's DMOS (0-1, rising with the level)."""
        scores = [_number(r[3]) for r in rows if r[0]]
        outside = [v for v in scores if math.isfinite(v) and not 0.0 <= v <= 1.0]
        groups: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        for image, kind, level, score in (r for r in rows if r[0]):
            groups[image.lower(), kind].append((int(level), _number(score)))
        steps = [
            b[1] - a[1]
            for group in groups.values()
            for a, b in zip(sorted(group), sorted(group)[1:], strict=False)
            if math.isfinite(a[1]) and math.isfinite(b[1])
        ]
        # A distortion gets worse with its level, so DMOS (higher = worse) rises in most steps;
        # a list converted to quality scores (e.g. 1 - DMOS) falls in most.
        falling = sum(step < 0 for step in steps) > sum(step > 0 for step in steps)
        if outside or falling:
            problem = (
                f"{len(outside)} score(s) outside CSIQ's DMOS range 0-1 (e.g. {outside[0]})"
                if outside
                else f"the scores fall as the level rises in {sum(st < 0 for st in steps)} of "
                f"{len(steps)} level steps, so they are not DMOS (higher = worse)"
            )
            raise InputError(
                f"{path}: {problem}; this derived list has been rescaled or reoriented, so it "
                f"cannot be read: {CSIQ_OFFICIAL.format(home=home)}."
            )

    def _rows(self, home: Path) -> list[MOSRow]:
        source, table, shift = self._table(home)
        start = _find_header(table, self._REQUIRED)
        if start is None:
            raise InputError(
                f"{source}: no header row with columns {', '.join(self._REQUIRED)} in the first 50 "
                "rows; export CSIQ's sheet all_by_image with its header."
            )
        column = {c.strip().lower(): i for i, c in enumerate(table[start])}
        src, dst = home / "src_imgs", home / "dst_imgs"
        refs = FileIndex([src if src.is_dir() else home], recursive=True)
        dists = FileIndex([dst if dst.is_dir() else home], recursive=True)
        types = self._subset_names()
        rows = []
        for line, cells in enumerate(table[start + 1 :], start + 1 + shift):
            cells = cells + [""] * (max(column.values()) + 1 - len(cells))
            image = cells[column["image"]].strip()
            kind = cells[column["dst_type"]].strip().lower()
            if not image:
                if math.isfinite(_number(cells[column["dmos"]])):
                    # A score without its image is a sample that cannot be scored.
                    subset = types[self.TYPE_INDEX[kind]] if kind in self.TYPE_INDEX else ""
                    self._reject(
                        f"{source.name}/line-{line}",
                        source,
                        f"line {line}: a dmos value but no image name",
                        "mos",
                        subset,
                    )
                continue  # blank or note rows of the spreadsheet hold no sample
            level = cells[column["dst_lev"]].strip()
            if kind not in self.TYPE_INDEX or not level.isdigit():
                raise InputError(
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


@register_adapter("live", detect_rank=50)
class LIVEDataset(MOSDataset):
    """LIVE Image Quality Assessment Database release 2 (Sheikh et al., 2006): 779 images."""

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

    @staticmethod
    def _loadmat(path: Path, keys: tuple[str, ...], fix: str) -> dict[str, Any]:
        """``scipy.io.loadmat(path)``, refusing damaged files and missing keys by name."""
        from scipy.io import loadmat
        from scipy.io.matlab import MatReadError

        try:
            data = loadmat(path)
        except (MatReadError, OSError, ValueError, EOFError, TypeError) as exc:
            raise InputError(
                f"{path}: not a readable MATLAB .mat file ({type(exc).__name__}: {exc}); {fix}."
            ) from None
        missing = [k for k in keys if k not in data]
        if missing:
            raise InputError(
                f"{path} lacks {', '.join(map(repr, missing))} (has "
                f"{sorted(k for k in data if not k.startswith('__'))}); {fix}."
            )
        return data

    def _rows(self, home: Path) -> list[MOSRow]:
        realigned = bool(self.params["realigned"])
        file, key = ("dmos_realigned.mat", "dmos_new") if realigned else ("dmos.mat", "dmos")
        source = next((p / file for p in (home, self.root) if (p / file).is_file()), home / file)
        if not source.is_file():
            other = "false to use dmos.mat" if realigned else "true to use dmos_realigned.mat"
            raise DataNotFoundError(
                f"{source} not found: download {file} from the LIVE database page into {home}, "
                f"or set the card's params.realigned to {other}."
            )
        fix = f"copy {file} again from the LIVE database page (the file as distributed)"
        scores = self._loadmat(source, (key, "orgs"), fix)
        refnames = self._loadmat(
            home / "refnames_all.mat",
            ("refnames_all",),
            "extract databaserelease2.zip again (refnames_all.mat as distributed)",
        )
        dmos = np.asarray(scores[key], dtype=np.float64).ravel()
        orgs = np.asarray(scores["orgs"]).ravel()
        names = [
            str(np.asarray(n).ravel()[0]) for n in np.asarray(refnames["refnames_all"]).ravel()
        ]
        total = sum(self.FOLDER_SIZES)
        if not len(dmos) == len(orgs) == len(names) == total:
            raise InputError(
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
                    # The reference scored against itself: not a distorted image, so not a
                    # sample (LIVE's 982 entries hold 203 of them; 779 remain).
                    continue
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
