"""Adapter for the BAPPS layout (LPIPS paper): ``2afc/<split>/<subset>`` and ``jnd/val/<subset>``.

Layout (file stems are zero-padded, e.g. ``000000``)::

    <root>/2afc/<split>/<subset>/{ref,p0,p1}/NNNNNN.png  judge/NNNNNN.npy  (fraction preferring p1)
    <root>/jnd/val/<subset>/{p0,p1}/NNNNNN.png           same/NNNNNN.npy   (fraction saying "same")

Judgment files hold one number in [0, 1] (numpy writes them with shape (1,); any one-element
array is read, as the reference loaders reshape it). Images are not decoded here.

Example:
    >>> from iqa_bench.datasets.bapps_layout import make_bapps_layout
    >>> root = make_bapps_layout(tmp_path / "study", {"cnn": 3, "traditional": 4}, {"cnn": 2})
    >>> BAPPSDataset(root).subsets("2afc")  # the paper's order, not the folders'
    ('traditional', 'cnn')
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from ..config import DatasetCard
from ..download import parse_archive_specs
from ..errors import DataNotFoundError, InputError
from ..settings import DATA_ENV
from .base import (
    Dataset,
    JNDSample,
    Sample,
    TwoAFCSample,
    card_params,
    entry_is_file,
    read_marker,
    register_adapter,
    subset_order,
)

#: Subset order of the BAPPS paper's tables; unknown subsets follow alphabetically.
PAPER_ORDER: dict[str, tuple[str, ...]] = {
    "val": ("traditional", "cnn", "superres", "deblur", "color", "frameinterp"),
    "train": ("traditional", "cnn", "mix"),
    "jnd": ("traditional", "cnn"),
}
#: The LPIPS reference loader's ``load_size``: every image goes through
#: ``transforms.Resize(64)`` (PIL bilinear) before scoring. The E-LPIPS authors report that the
#: archives store the 64x64 patches upscaled to 256x256 (nearest neighbour; a few 252x252).
REFERENCE_LOAD_SIZE = 64
TWOAFC_ROLES = (("ref", ".png"), ("p0", ".png"), ("p1", ".png"), ("judge", ".npy"))
JND_ROLES = (("p0", ".png"), ("p1", ".png"), ("same", ".npy"))


_NPY_MAGIC = b"\x93NUMPY"
_NPY_V1_MAGIC = _NPY_MAGIC + b"\x01\x00"
# The header numpy writes for a C-order one-dimensional array, padded with spaces to a newline.
_NPY_1D_HEADER = re.compile(
    rb"\{'descr': '([<>|=]?[a-z]\d+)', 'fortran_order': False, 'shape': \((\d+),\), \} *\n"
)


def _not_npy_reason(data: bytes) -> str:
    """Why ``data`` (a file's first bytes) is not a ``.npy`` file, and what to do about it."""
    if not data:
        what = "the file is empty (0 bytes)"
    else:
        text = data.lstrip()[:1] in (b"<", b"{") or data.lstrip()[:5].isascii()
        what = f"it starts with {data[:24]!r}" + (
            ", which is text (e.g. an HTML error page saved in place of the file)" if text else ""
        )
    return (
        f"not a NumPy array file ({what}; .npy files start with b'\\x93NUMPY'). Re-download "
        "the archive that held it (for a named dataset: `iqa-bench download <name> --force`) "
        "and extract it again"
    )


def read_small_npy(path: Path | str) -> np.ndarray:
    """``np.load(path, allow_pickle=False)`` for a small one-dimensional numeric ``.npy`` file.

    ``np.load`` parses every header with ``ast.literal_eval``, about 130 us a file; BAPPS val has
    46k judgment files and train 150k+, so opening a dataset spent seconds there. Headers numpy
    writes for such arrays are matched directly (about 20 us); any other file (other versions,
    shapes, Fortran order, object dtypes, damaged files) goes through ``np.load`` unchanged;
    pickles are never loaded.

    Raises:
        InputError: When the file does not start with the ``.npy`` signature (an HTML error page
            saved under the name, an empty file), naming the file and how to re-download it.

    Example:
        >>> np.save(tmp_path / "000000.npy", np.array([0.8]))
        >>> read_small_npy(tmp_path / "000000.npy")
        array([0.8])
    """
    with open(path, "rb") as f:
        data = f.read(1025)  # judgment files are ~136 bytes; anything longer goes to np.load
    if not data.startswith(_NPY_MAGIC):
        # np.load would try pickle and suggest allow_pickle=True: wrong advice, never taken here.
        raise InputError(f"{path}: {_not_npy_reason(data)}")
    if data.startswith(_NPY_V1_MAGIC) and len(data) <= 1024:
        start = 10 + int.from_bytes(data[8:10], "little")
        header = _NPY_1D_HEADER.fullmatch(data, 10, start)
        if header is not None:
            dtype = np.dtype(header.group(1).decode("ascii"))
            count = int(header.group(2))
            if dtype.kind in "fiub" and len(data) == start + count * dtype.itemsize:
                return np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return np.load(path, allow_pickle=False)


def _judgment_or_reason(path: Path) -> tuple[float, str]:
    """The judgment in ``path`` and ``""``, or ``nan`` and what is wrong with the file."""
    try:
        array = read_small_npy(path)
    except InputError as exc:
        return math.nan, f"judgment file is {str(exc).removeprefix(f'{path}: ')}"
    except (OSError, ValueError, EOFError) as exc:
        return math.nan, f"unreadable judgment file ({exc})"
    # The reference loaders reshape whatever they load to (1, 1, 1): any one-number array will do.
    if array.size != 1 or array.dtype.kind not in "fiu":
        return math.nan, (
            f"judgment must be a numeric array holding one number (shape (1,)), got dtype "
            f"{array.dtype} and shape {array.shape}"
        )
    value = float(array.reshape(-1)[0])
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        return math.nan, f"judgment {value} is not a fraction in [0, 1]"
    return value, ""


def read_judgment(path: Path) -> float:
    """Read a BAPPS judgment ``.npy`` (one number in [0, 1], normally shape (1,)) as a float.

    Raises:
        InputError: Naming the file, if it is unreadable, not a ``.npy`` file, has another shape,
            is NaN or out of range.

    Example:
        >>> np.save(tmp_path / "000000.npy", np.array([0.8]))
        >>> read_judgment(tmp_path / "000000.npy")
        0.8
    """
    value, reason = _judgment_or_reason(Path(path))
    if reason:
        raise InputError(f"{path}: {reason}.")
    return value


def manual_install_hint(root: Path, card: DatasetCard | None, split: str) -> str:
    """Where extracted BAPPS files go, and how to download them (for missing-data errors)."""
    layout = (
        f"expected {root}/2afc/{split}/<subset>/{{ref,p0,p1}}/000000.png with "
        f"{root}/2afc/{split}/<subset>/judge/000000.npy, and/or {root}/jnd/val/<subset>/{{p0,p1}}"
        "/000000.png with .../same/000000.npy."
    )
    if card is None or not card.download:
        return layout
    specs = parse_archive_specs(card.download, f"dataset card {card.name!r}")
    needed = BAPPSDataset.default_parts(card, split) or [spec.part for spec in specs]
    by_hand = "; ".join(
        f"{spec.url} extracted into {root / spec.extract_to if spec.extract_to else root}"
        for spec in specs
        if spec.part in needed
    )
    return (
        f"{layout} Download with `iqa-bench download {card.name}` or "
        f"open_dataset({card.name!r}, download=True); or by hand: {by_hand}. To keep data "
        f"elsewhere set {DATA_ENV} or pass --data-root / data_root (the dataset lives in "
        f"<data root>/{card.name}/)."
    )


@register_adapter("bapps", detect_rank=10)
class BAPPSDataset(Dataset):
    """Reads a folder in BAPPS layout; see the module docstring.

    Args:
        root: The folder holding ``2afc/`` and/or ``jnd/``.
        card: The dataset card, or ``None`` when opened by path. For a ``bapps`` card,
            ``params.load_size`` (default 64, :data:`REFERENCE_LOAD_SIZE`) sets
            :attr:`load_size`: images are resized as the reference loader does before scoring
            (None keeps the native size, as for a folder opened by path).
        split: The 2AFC split (``val`` or ``train``).
        skip_bad: Record incomplete triplets and invalid judgments in ``bad_samples`` instead of
            raising ``ValueError``.

    Raises:
        DataNotFoundError: When neither ``2afc/<split>`` nor ``jnd/val`` exists (the message says
            where files go and how to download them), or a non-``val`` split is missing.
        InputError: On mismatched file stems across ``ref``/``p0``/``p1``/``judge`` (naming the
            folder and the first missing stem) or an invalid judgment file (naming it).

    Example:
        >>> from iqa_bench.datasets.bapps_layout import make_bapps_layout
        >>> ds = BAPPSDataset(make_bapps_layout(tmp_path / "s", {"cnn": 3}, None), split="val")
        >>> len(ds.samples("2afc")), ds.samples("2afc")[0].sample_id
        (3, 'val/cnn/000000')
    """

    def __init__(
        self,
        root: Path,
        card: DatasetCard | None = None,
        split: str = "val",
        skip_bad: bool = False,
    ) -> None:
        if card is not None and card.adapter == BAPPSDataset.adapter:
            # The named dataset is scored as the reference loads it; a folder opened by path
            # (anyone's study in this layout) keeps its native size, and so do subclasses'
            # cards (synthetic: its params describe the generator).
            params = card_params(card, {"load_size": REFERENCE_LOAD_SIZE}, BAPPSDataset.adapter)
            self.load_size = None if params["load_size"] is None else int(params["load_size"])
        super().__init__(root, card=card, split=split, skip_bad=skip_bad)

    def _load(self) -> dict[str, list[Sample]]:
        if not self.split or "/" in self.split or self.split.startswith("."):
            raise InputError(
                f"split {self.split!r} must be a folder name such as 'val' or 'train'."
            )
        twoafc_dir = self.root / "2afc" / self.split
        jnd_dir = self.root / "jnd" / "val"
        hint = manual_install_hint(self.root, self.card, self.split)
        if not twoafc_dir.is_dir() and not jnd_dir.is_dir():
            raise DataNotFoundError(
                f"no BAPPS data for dataset {self.name!r} in {self.root}: {hint}"
            )
        if not twoafc_dir.is_dir() and self.split != "val":
            raise DataNotFoundError(f"2AFC split {self.split!r} not found at {twoafc_dir}: {hint}")
        loaded: dict[str, list[Sample]] = {}
        if twoafc_dir.is_dir():
            loaded["2afc"] = self._scan_task(twoafc_dir, self.split, TWOAFC_ROLES, "2afc")
        if jnd_dir.is_dir():
            loaded["jnd"] = self._scan_task(jnd_dir, "val", JND_ROLES, "jnd")
        return loaded

    def _scan_task(
        self, task_dir: Path, split: str, roles: tuple[tuple[str, str], ...], task: str
    ) -> list[Sample]:
        names = []
        for entry in sorted(os.scandir(task_dir), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue  # hidden OS litter (.DS_Store) is not data
            if entry.is_dir():
                names.append(entry.name)
            else:  # not a subset folder: whatever it holds is not read, so say so
                self._reject(
                    f"{split}/{entry.name}",
                    Path(entry.path),
                    f"unexpected file beside the subset folders of {task_dir}",
                    task,
                    "",
                )
        if not names:
            raise InputError(f"{task_dir}: no subset folders; expected {task_dir}/<subset>/...")
        known = PAPER_ORDER["jnd"] if task == "jnd" else PAPER_ORDER.get(split, ())
        # A generator may record its own order (synthetic: the card's order of families).
        recorded = (read_marker(self.root) or {}).get("subset_order", {}).get(f"{task}/{split}")
        known = tuple(recorded) if isinstance(recorded, list) else known
        samples: list[Sample] = []
        for subset in subset_order(names, known):
            samples.extend(self._scan_subset(task_dir / subset, split, subset, roles, task))
        return samples

    def _list_role(
        self, folder: Path, role: str, suffix: str, id_prefix: str, task: str, subset: str
    ) -> dict[str, str]:
        role_dir = folder / role
        if not role_dir.is_dir():
            raise InputError(
                f"{folder}: missing folder {role}/; expected files like {role_dir}/000000{suffix}."
            )
        files: dict[str, str] = {}  # paths stay strings until a sample keeps them (Path() is slow)
        for entry in os.scandir(role_dir):
            if entry.name.startswith("."):
                continue  # hidden OS litter (.DS_Store) is not data
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() != suffix or not entry_is_file(entry):
                self._reject(
                    f"{id_prefix}/{stem}",
                    Path(entry.path),
                    f"unexpected entry, expected *{suffix}",
                    task,
                    subset,
                )
                continue
            files[stem] = entry.path
        return files

    def _scan_subset(
        self, folder: Path, split: str, subset: str, roles: tuple[tuple[str, str], ...], task: str
    ) -> list[Sample]:
        id_prefix = f"{split}/{subset}"
        names = {role for role, _ in roles}
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.name.startswith(".") and entry.name not in names:
                self._reject(
                    f"{id_prefix}/{entry.name}",
                    Path(entry.path),
                    f"unexpected entry in a subset folder, which holds only "
                    f"{'/, '.join(r for r, _ in roles)}/",
                    task,
                    subset,
                )
        listing = {
            role: self._list_role(folder, role, suffix, id_prefix, task, subset)
            for role, suffix in roles
        }
        stems = sorted(set().union(*listing.values()))
        if not stems:
            self._reject(f"{id_prefix}/", folder, "subset folder holds no samples", task, subset)
        samples: list[Sample] = []
        for stem in stems:
            sample_id = f"{id_prefix}/{stem}"
            missing = [(role, suffix) for role, suffix in roles if stem not in listing[role]]
            if missing:
                role, suffix = missing[0]
                present = [r for r, _ in roles if stem in listing[r]]
                self._reject(
                    sample_id,
                    folder / role / f"{stem}{suffix}",
                    f"file stems differ across {', '.join(r for r, _ in roles)} in {folder}: "
                    f"{stem!r} is missing from {role}/ but present in {', '.join(present)}/",
                    task,
                    subset,
                )
                continue
            label_role = roles[-1][0]
            label, reason = _judgment_or_reason(listing[label_role][stem])
            if reason:
                self._reject(sample_id, Path(listing[label_role][stem]), reason, task, subset)
                continue
            files = {role: Path(listing[role][stem]) for role, _ in roles[:-1]}
            if label_role == "judge":
                samples.append(
                    TwoAFCSample(sample_id, subset, files["ref"], files["p0"], files["p1"], label)
                )
            else:
                samples.append(JNDSample(sample_id, subset, files["p0"], files["p1"], label))
        return samples

    @classmethod
    def is_layout(cls, path: Path) -> bool:
        """True for a folder holding ``2afc/`` or ``jnd/``."""
        return path.is_dir() and ((path / "2afc").is_dir() or (path / "jnd").is_dir())

    @classmethod
    def default_parts(cls, card: DatasetCard, split: str) -> list[str] | None:
        """The card's default parts plus ``2afc-<split>`` when that part exists (e.g. train)."""
        specs = parse_archive_specs(card.download, f"dataset card {card.name!r}")
        parts = [s.part for s in specs if s.default]
        extra = f"2afc-{split}"
        if any(s.part == extra for s in specs) and extra not in parts:
            parts.append(extra)
        return parts
