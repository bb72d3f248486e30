"""Sample records, the abstract ``Dataset`` and the data-root rules shared by all adapters.

Adapters only list files and read judgments; images are decoded later by the runner with
``iqa_bench.images.read_image_uint8``. No torch here.

Example:
    >>> from iqa_bench.datasets import open_dataset
    >>> ds = open_dataset("synthetic")
    >>> ds.tasks(), ds.subsets("2afc")[:2]
    (('2afc', 'jnd'), ('blur', 'noise'))
    >>> ds.samples("2afc")[0].sample_id
    'val/blur/000000'
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ..config import DatasetCard
from ..download import DEFAULT_STALL_TIMEOUT, fetch_archives, parse_archive_specs
from ..errors import InputError
from ..registry import Registry
from ..settings import data_dir
from ..tasks import TASKS

#: Written by generators (``synthetic``) at the dataset root; its ``synthetic`` flag marks the
#: judgments as constructed even when the folder is opened by path, without a card.
MARKER_NAME = "GENERATED.json"


@dataclass(frozen=True)
class TwoAFCSample:
    """One 2AFC triplet: which of two distortions ``p0``/``p1`` is closer to ``ref``.

    Attributes:
        sample_id: ``"<split>/<subset>/<file stem>"``, unique within the task.
        subset: Subset name (``traditional``, ``cnn``, ...).
        ref: Reference image file.
        p0: First distorted image file.
        p1: Second distorted image file.
        h: Fraction of people who judged ``p1`` closer to ``ref``, in [0, 1].
    """

    sample_id: str
    subset: str
    ref: Path
    p0: Path
    p1: Path
    h: float


@dataclass(frozen=True)
class JNDSample:
    """One JND pair: do ``p0`` and ``p1`` look the same?

    Attributes:
        sample_id: ``"<split>/<subset>/<file stem>"``, unique within the task.
        subset: Subset name.
        p0: First image file.
        p1: Second image file.
        same: Fraction of people who said the two images are the same, in [0, 1].
    """

    sample_id: str
    subset: str
    p0: Path
    p1: Path
    same: float


@dataclass(frozen=True)
class MOSSample:
    """One full-reference quality judgment: a distorted image, its reference and its score.

    Attributes:
        sample_id: ``"<distortion type>/<distorted file stem>"`` (``mos-folder``:
            ``"<csv stem>/<type>/<id>"``), unique within the dataset.
        subset: Distortion type name (``jpeg``, ``gaussian-blur``, ...; ``all`` when unknown).
        ref: Reference (pristine) image file.
        dist: Distorted image file, the same size as ``ref``.
        mos: The dataset's score as published: MOS (higher = better) or DMOS (higher = worse);
            the dataset's ``mos_higher_is_better`` says which.
        level: Distortion level (1 = weakest) when the dataset has levels, else ``None``.
    """

    sample_id: str
    subset: str
    ref: Path
    dist: Path
    mos: float
    level: int | None = None


Sample = TwoAFCSample | JNDSample | MOSSample


@dataclass(frozen=True)
class BadSample:
    """A sample excluded because ``skip_bad=True`` was given (otherwise it raises).

    The runner writes ``asdict(bad_sample)`` into the manifest, and the reports count the
    exclusions per task and subset from ``task`` and ``subset``.

    Attributes:
        sample_id: The id the sample would have had.
        path: The offending file (judgment, image or CSV).
        reason: What is wrong with it.
        task: The task the sample belongs to: ``"2afc"``, ``"jnd"`` or ``"mos"``.
        subset: The subset the sample would have had (``cnn``, a distortion type, ...), or ``""``
            when it cannot be known (e.g. a stray file beside the subset folders).
    """

    sample_id: str
    path: Path
    reason: str
    task: str
    subset: str

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"BadSample.task {self.task!r} must be one of {', '.join(TASKS)}.")


def data_root(explicit: Path | str | None = None) -> Path:
    """The folder holding all datasets: ``explicit`` > ``$IQA_BENCH_DATA`` > ``<cache root>/data``.

    Each dataset lives in ``<data root>/<card name>/``.

    Example:
        >>> data_root("/data/iqa")
        PosixPath('/data/iqa')
    """
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    return data_dir()


def read_marker(root: Path) -> dict | None:
    """The ``GENERATED.json`` marker of a dataset folder, or ``None`` if absent or invalid."""
    try:
        marker = json.loads((Path(root) / MARKER_NAME).read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return marker if isinstance(marker, dict) else None


# Byte-order marks that say the encoding for certain (the Unicode standard, section 23.8);
# UTF-16 with a BOM is what Excel writes for "Unicode Text" (tab-separated) exports.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, path: Path) -> str:
    """Text of a score or study file: UTF-8 (with or without a BOM), or UTF-16 with a BOM.

    Other encodings (Latin-1, Windows-1252, ...) cannot be told apart reliably (every byte
    sequence is valid Latin-1), so they are refused with the place of the first bad byte.

    Raises:
        InputError: Naming the file, the line and byte offset of the first undecodable byte and
            how to re-save the file as UTF-8.

    Example:
        >>> decode_text("ref,dist".encode("utf-16"), Path("s.csv"))
        'ref,dist'
    """
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}: line {line} (byte offset {exc.start}, value 0x{data[exc.start]:02x}) is not "
            f"valid {encoding.upper()} text; the file was probably saved as "
            "Latin-1/Windows-1252. Re-save it as UTF-8 (spreadsheets: 'CSV UTF-8'; or "
            f"`iconv -f WINDOWS-1252 -t UTF-8 {path.name} > fixed.csv`)."
        ) from None


def read_text(path: Path) -> str:
    """:func:`decode_text` of a whole file (``OSError`` propagates, naming the file)."""
    return decode_text(Path(path).read_bytes(), Path(path))


def read_csv_header(path: Path) -> list[str]:
    """The stripped column names of a CSV file's first row (``[]`` if unreadable or empty).

    Only the first line is decoded, so a file whose later rows are not UTF-8 is still recognised
    by its header (and then refused with the line of the bad byte when it is read).

    Example:
        >>> read_csv_header(Path("study/2afc.csv"))  # doctest: +SKIP
        ['ref', 'p0', 'p1', 'h']
    """
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(65536)
    except OSError:
        return []
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        # Only the first line matters; a code unit cut at the end of the chunk must not.
        text = head.decode("utf-16", errors="replace")
    else:
        try:
            text = decode_text(head.split(b"\n", 1)[0], Path(path))
        except InputError:
            return []
    lines = text.splitlines()
    try:
        return [c.strip() for c in next(csv.reader(lines[:1]), [])]
    except csv.Error:
        return []


def subset_order(names: Iterable[str], known: tuple[str, ...]) -> list[str]:
    """Sort subset names: those in ``known`` first in that order, then the rest alphabetically.

    Example:
        >>> subset_order(["zoo", "cnn", "traditional"], ("traditional", "cnn"))
        ['traditional', 'cnn', 'zoo']
    """
    names = set(names)
    return [n for n in known if n in names] + sorted(names - set(known))


def card_params(card: DatasetCard | None, defaults: dict[str, Any], adapter: str) -> dict[str, Any]:
    """A card's ``params`` over an adapter's defaults; every key must be one the adapter takes.

    Raises:
        InputError: On an unknown key, naming the card, the key and the keys the adapter takes.

    Example:
        >>> card_params(None, {"min_votes": 5}, "nights")
        {'min_votes': 5}
    """
    given = dict(card.params) if card is not None else {}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        where = f"dataset card {card.name!r}" if card is not None else adapter
        raise InputError(
            f"{where}: unknown params key {unknown[0]!r}; the {adapter} adapter takes "
            f"{', '.join(defaults)}."
        )
    return {**defaults, **given}


class Dataset(ABC):
    """2AFC triplets, JND pairs and/or MOS samples with human (or constructed) judgments.

    Construction scans and validates everything once; ``samples`` then only returns records.

    Args:
        root: The dataset folder.
        card: The dataset card, or ``None`` when opened by path.
        split: The 2AFC split to read (``val`` or ``train``); JND always reads ``val``.
        skip_bad: Record invalid samples in ``bad_samples`` and leave them out instead of raising.

    Attributes:
        name: Card name, or the folder name when opened by path.
        card: The dataset card, or ``None``.
        root: The dataset folder.
        split: The 2AFC split.
        synthetic: True when the judgments are constructed, not collected from people.
        notice: The warning every report on this dataset shows instead of the generic synthetic
            one (a generator's marker ``notice``), or ``""``.
        human_ceiling: False when the judgments are set by a rule (all 0 or 1), so a human
            ceiling would say nothing about people (a generator's marker ``human_ceiling``).
        version: The card's version (0 without a card); stored with every result.
        bad_samples: Samples left out because of ``skip_bad=True``, with the reason.
        mos_higher_is_better: For MOS datasets, True when a higher score means better quality
            (MOS) and False when it means worse quality (DMOS); ``None`` for other datasets.
        mos_range: For MOS datasets, the nominal ``(low, high)`` of the score scale, else ``None``.
        load_size: The side the dataset's reference loader resizes each decoded image to before
            any metric sees it (``iqa_bench.images.resize_like_reference_loader``), or ``None``
            for the native size.
    """

    #: Registry name of the adapter (``bapps``, ``synthetic``, ``folder``), set by
    #: :func:`register_adapter`.
    adapter: ClassVar[str] = ""
    #: Where the adapter stands when ``open_dataset(path)`` asks adapters in turn whether a path
    #: is theirs (lower first); ``None``: it never claims a path. Set by :func:`register_adapter`.
    detect_rank: ClassVar[int | None] = None
    load_size: int | None = None
    mos_higher_is_better: bool | None = None
    mos_range: tuple[float, float] | None = None

    def __init__(
        self,
        root: Path,
        card: DatasetCard | None = None,
        split: str = "val",
        skip_bad: bool = False,
    ) -> None:
        self.root = Path(root)
        self.card = card
        self.split = split
        self.skip_bad = skip_bad
        self.name = card.name if card is not None else self.root.name
        self.version = card.version if card is not None else 0
        marker = read_marker(self.root) or {}
        self.synthetic = bool(card.synthetic if card is not None else marker.get("synthetic"))
        self.notice = str(marker.get("notice") or "")
        self.human_ceiling = marker.get("human_ceiling") is not False
        self.bad_samples: list[BadSample] = []
        self._samples = {task: tuple(samples) for task, samples in self._load().items() if samples}

    @abstractmethod
    def _load(self) -> dict[str, list[Sample]]:
        """Scan the data; return samples per task, grouped by subset in the adapter's order."""

    def tasks(self) -> tuple[str, ...]:
        """The tasks with at least one sample, in the order ``("2afc", "jnd", "mos")``."""
        return tuple(task for task in TASKS if task in self._samples)

    def _task_samples(self, task: str) -> tuple[Sample, ...]:
        if task not in TASKS:
            raise InputError(f"task {task!r} is unknown; use one of {', '.join(TASKS)}.")
        if task not in self._samples:
            raise InputError(
                f"dataset {self.name!r} ({self.root}) has no {task!r} samples; it has: "
                f"{', '.join(self.tasks()) or '(none)'}."
            )
        return self._samples[task]

    def samples(self, task: str) -> list[Sample]:
        """All valid samples of ``task`` (``"2afc"`` for the chosen split, ``"jnd"`` or ``"mos"``).

        Example:
            >>> from iqa_bench.datasets import open_dataset
            >>> [s.h for s in open_dataset("synthetic").samples("2afc")[:3]]
            [0.0, 0.8, 0.2]
        """
        return list(self._task_samples(task))

    def subsets(self, task: str) -> tuple[str, ...]:
        """Subset names of ``task`` in a stable order (BAPPS paper order where known)."""
        return tuple(dict.fromkeys(s.subset for s in self._task_samples(task)))

    def _reject(
        self,
        sample_id: str,
        path: Path,
        reason: str,
        task: str,
        subset: str,
        error: type[Exception] = InputError,
    ) -> None:
        """Record a bad sample under ``skip_bad``, else raise ``error`` naming the file.

        Every sample an adapter leaves out goes through here, so none is dropped silently.
        """
        if not self.skip_bad:
            raise error(
                f"{path}: {reason}. Fix or remove it, or pass skip_bad=True (--skip-bad) to leave "
                "it out and list it in the manifest's bad_samples."
            )
        self.bad_samples.append(BadSample(sample_id, Path(path), reason, task, subset))

    @classmethod
    def is_layout(cls, path: Path) -> bool:
        """Whether ``path`` looks like data this adapter reads (for ``open_dataset(path)``)."""
        return False

    @classmethod
    def generate(cls, root: Path, card: DatasetCard) -> None:
        """Create data that needs no download (generated datasets) before ``root`` is opened.

        ``open_dataset`` calls it for named datasets, so that constructing an adapter only reads.
        Adapters of collected data do nothing here.
        """
        return None

    @classmethod
    def default_parts(cls, card: DatasetCard, split: str) -> list[str] | None:
        """Download parts needed to read ``split`` (``None``: the card's default parts)."""
        return None

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
        """Install the data of ``card`` into ``root`` (download and extract its archives).

        ``stall_timeout`` is the seconds without data before a download attempt fails.

        Raises:
            InputError: If the card lists nothing to download, or on an unknown part.
            DownloadError: On network failures.
        """
        if not card.download:
            raise InputError(
                f"dataset {card.name!r} has no 'download' entries in its card; put its files in "
                f"{root} by hand."
            )
        specs = parse_archive_specs(card.download, f"dataset card {card.name!r}")
        fetch_archives(specs, Path(root), parts, progress, force, stall_timeout=stall_timeout)
        return Path(root)

    def __repr__(self) -> str:
        counts = ", ".join(f"{task}={len(self._samples[task])}" for task in self.tasks())
        return (
            f"{type(self).__name__}(name={self.name!r}, root={str(self.root)!r}, "
            f"split={self.split!r}, {counts}, bad={len(self.bad_samples)})"
        )


#: Dataset adapter classes by name; a card's ``adapter`` field picks one.
DATASETS: Registry[type[Dataset]] = Registry("dataset adapter")

D = TypeVar("D", bound=type[Dataset])


def register_adapter(name: str, detect_rank: int | None = None) -> Callable[[D], D]:
    """Class decorator: register a :class:`Dataset` subclass in :data:`DATASETS` as ``name``.

    The name is given only here; the decorator sets the class's ``adapter`` to it.

    Args:
        name: Registry name, the value of a dataset card's ``adapter`` key.
        detect_rank: Position among the adapters ``open_dataset(path)`` asks in turn whether a
            path is theirs (:meth:`Dataset.is_layout`; lower first), so that a folder two
            adapters could read goes to the same one whatever the adapters are called. ``None``:
            the adapter never claims a path (it is reached through cards only).

    Raises:
        InputError: When ``name`` is taken, or another adapter already has ``detect_rank``.

    Example:
        >>> @register_adapter("my-study", detect_rank=1000)
        ... class MyStudy(Dataset):
        ...     def _load(self):
        ...         return {}
        >>> MyStudy.adapter, detection_order()[-1] is MyStudy
        ('my-study', True)
        >>> DATASETS.remove("my-study")
    """

    def decorator(cls: D) -> D:
        if detect_rank is not None:
            clash = [c for c in detection_order() if c.detect_rank == detect_rank]
            if clash and name not in DATASETS:
                raise InputError(
                    f"dataset adapter {name!r}: detect_rank {detect_rank} is taken by "
                    f"{clash[0].adapter!r}; give another rank (taken: "
                    f"{', '.join(str(c.detect_rank) for c in detection_order())})."
                )
        DATASETS.add(name, cls)
        cls.adapter = name
        cls.detect_rank = detect_rank
        return cls

    return decorator


def detection_order() -> list[type[Dataset]]:
    """The adapters that may claim a path, in the order ``open_dataset(path)`` asks them.

    Example:
        >>> [cls.adapter for cls in detection_order()][:3]
        ['bapps', 'csiq', 'folder']
    """
    ranked = [DATASETS.get(name) for name in DATASETS]
    return sorted((c for c in ranked if c.detect_rank is not None), key=lambda c: c.detect_rank)


def entry_is_file(entry: os.DirEntry) -> bool:
    """``entry.is_file()``, except that an entry that cannot be resolved (a symbolic link loop)
    counts as a file, so that reading it fails as one sample naming the link (skippable with
    ``skip_bad``) instead of failing the whole listing."""
    try:
        return entry.is_file()
    except OSError:
        return True
