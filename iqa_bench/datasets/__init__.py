"""Dataset adapters (no torch): open a dataset by card name or path, download or generate its data.

``open_dataset`` takes a card name from ``datasets/*.yaml`` (its ``adapter`` picks the class and
the data lives in ``<data root>/<name>/``) or a path: a folder in BAPPS layout, a folder holding
``2afc.csv``/``jnd.csv``, a single CSV file (2AFC/JND, or MOS with a ``dist`` column), or an
extracted TID2013 / KADID-10k / CSIQ / LIVE / NIGHTS folder. A card name wins over a same-named
local folder. MOS datasets (``tid2013``, ``kadid10k``, ``csiq``, ``live``, ``mos-folder``) have the
single task ``"mos"``; NIGHTS is a 2AFC dataset (see ``docs/DATASETS.md``).

Example:
    >>> ds = open_dataset("synthetic")  # generated on first use, judgments are not human
    >>> ds.synthetic, ds.tasks()
    (True, ('2afc', 'jnd'))
    >>> ds = open_dataset("bapps", download=True)  # a 1.3 GB download  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..config import DatasetCard, dataset_cards, load_dataset_card
from ..download import DEFAULT_STALL_TIMEOUT
from ..errors import DataNotFoundError, InputError
from ..registry import suggest
from ..settings import DATA_ENV
from . import base
from .bapps import BAPPSDataset, read_judgment
from .base import (
    DATASETS,
    MARKER_NAME,
    TASKS,
    BadSample,
    Dataset,
    JNDSample,
    MOSSample,
    Sample,
    TwoAFCSample,
    data_root,
    detection_order,
    register_adapter,
)
from .equal_mse import EqualMSEDataset, generate_equal_mse
from .folder import FolderDataset
from .mos import MOSDataset
from .mos_folder import MOSFolderDataset
from .mos_public import CSIQDataset, KADID10kDataset, LIVEDataset, TID2013Dataset
from .nights import NIGHTSDataset
from .synthetic import SyntheticDataset, generate_synthetic

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "MARKER_NAME",
    "TASKS",
    "BAPPSDataset",
    "BadSample",
    "CSIQDataset",
    "Dataset",
    "EqualMSEDataset",
    "FolderDataset",
    "JNDSample",
    "KADID10kDataset",
    "LIVEDataset",
    "MOSDataset",
    "MOSFolderDataset",
    "MOSSample",
    "NIGHTSDataset",
    "Sample",
    "SyntheticDataset",
    "TID2013Dataset",
    "TwoAFCSample",
    "data_root",
    "detection_order",
    "download_dataset",
    "generate_equal_mse",
    "generate_synthetic",
    "open_dataset",
    "read_judgment",
    "register_adapter",
]


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith((".", "~")) or text.endswith(".csv")


def open_dataset(
    name_or_path: str | os.PathLike[str],
    data_root: Path | str | None = None,
    split: str = "val",
    skip_bad: bool = False,
    download: bool = False,
    progress: bool = True,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
) -> Dataset:
    """Open a dataset by card name or by path and validate all of its samples.

    Args:
        name_or_path: A card name (``bapps``, ``synthetic``, ``tid2013``, ``nights``, ...) or a
            path to a BAPPS-layout folder, a folder with ``2afc.csv``/``jnd.csv``/``mos.csv``, a
            CSV file, or an extracted TID2013/KADID-10k/CSIQ/LIVE/NIGHTS folder.
        data_root: Folder holding all named datasets (default ``$IQA_BENCH_DATA``, else
            ``~/.cache/iqa-bench/data``); ignored for paths.
        split: The 2AFC split (``val`` or ``train``; NIGHTS: ``train``/``val``/``test``); MOS
            datasets have no splits and accept ``val`` (the default) or ``all``.
        skip_bad: Record invalid samples in ``dataset.bad_samples`` instead of raising.
        download: Download missing parts of a named dataset first (not for paths).
        progress: Show download progress bars on stderr.
        stall_timeout: Seconds without data from the server before a download attempt fails.

    Returns:
        The adapter instance.

    Raises:
        InputError: On an unknown name (with suggestions), an unrecognised folder, or invalid data.
        DataNotFoundError: When a path or a named dataset's data is missing; the message says where
            the files go and how to download them.

    Example:
        >>> open_dataset("bapps", split="val").subsets("jnd")  # needs the data  # doctest: +SKIP
        ('traditional', 'cnn')
        >>> from iqa_bench.datasets.bapps_layout import make_bapps_layout
        >>> open_dataset(make_bapps_layout(tmp_path / "study", {"cnn": 3}, None)).tasks()
        ('2afc',)
    """
    text = os.fspath(name_or_path)
    cards = dataset_cards()
    if text in cards:
        card = cards[text]
        adapter = DATASETS.get(card.adapter)
        root = base.data_root(data_root) / card.name
        if download:
            parts = adapter.default_parts(card, split)
            adapter.prepare(root, card, parts, progress, stall_timeout=stall_timeout)
        adapter.generate(root, card)
        return adapter(root, card=card, split=split, skip_bad=skip_bad)

    path = Path(text).expanduser()
    if not path.exists():
        if _looks_like_path(text):
            raise DataNotFoundError(f"dataset path {path} does not exist; check the path.")
        raise InputError(
            f"unknown dataset {text!r}.{suggest(text, list(cards))} Available: "
            f"{', '.join(sorted(cards)) or '(none)'}; or pass a path to a BAPPS-layout folder or "
            "a folder CSV."
        )
    if download:
        raise InputError(
            f"download=True needs a dataset card name, not the path {path}; drop download or use "
            f"one of {', '.join(sorted(cards))}."
        )
    for adapter in detection_order():
        if adapter.is_layout(path):
            return adapter(path, card=None, split=split, skip_bad=skip_bad)
    raise InputError(
        f"{path} is neither a BAPPS-layout folder (with 2afc/ or jnd/ inside) nor a folder "
        "dataset (a .csv file, or a folder with 2afc.csv and/or jnd.csv), nor an extracted "
        "TID2013/KADID-10k/CSIQ/LIVE/NIGHTS folder or a MOS CSV (columns ref,dist,mos|dmos)."
    )


def download_dataset(
    card: DatasetCard | str,
    data_root: Path | str | None = None,
    parts: Iterable[str] | None = None,
    progress: bool = True,
    force: bool = False,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
) -> Path:
    """Install a named dataset into ``<data root>/<name>/``: download archives or generate it.

    Parts already installed are skipped unless ``force``. The ``synthetic`` dataset is generated
    locally instead of downloaded.

    Args:
        card: A dataset card or its name.
        data_root: Folder holding all datasets (see :func:`data_root`).
        parts: Archive parts to fetch (e.g. ``["2afc-val", "jnd"]``); ``None`` fetches the
            card's default parts (for BAPPS: 2AFC val and JND, not the 5.3 GB train split).
        progress: Show progress bars on stderr.
        force: Download and extract again even when the data is present.
        stall_timeout: Seconds without data from the server before a download attempt fails
            (each archive gets up to 4 attempts).

    Returns:
        The dataset folder.

    Raises:
        InputError: On an unknown card or part, or a failed verification.
        DownloadError: On network failures (the message says where to put files by hand).

    Example:
        >>> download_dataset("bapps", parts=["2afc-val"])  # a 1.1 GB download  # doctest: +SKIP
        PosixPath('/home/me/.cache/iqa-bench/data/bapps')
    """
    if isinstance(card, str):
        card = load_dataset_card(card)
    adapter = DATASETS.get(card.adapter)
    root = base.data_root(data_root) / card.name
    return adapter.prepare(root, card, parts, progress, force, stall_timeout=stall_timeout)
