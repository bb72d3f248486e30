"""Read a run directory written by the runner (no torch, no statistics).

A run directory holds ``manifest.json``, ``judgments/<task>.npz`` and
``scores/<metric>/<task>.npz``, read and checked through the records of :mod:`iqa_bench.records`
(layout in ``docs/ARCHITECTURE.md``). This module aligns every metric's scores with the
judgments by ``sample_id``, turns similarities into distances (``distance = -score`` when the
card says ``higher_is_better``) and drops failed (NaN) samples while counting them, so that
``iqa_bench.stats`` only ever sees clean distances.

Example:
    >>> run = load_run("runs/synthetic/20261126-131500-synthetic")  # doctest: +SKIP
    >>> data = run.twoafc("lpips-alex")  # doctest: +SKIP
    >>> data.d0.shape == data.h.shape, data.n_failed  # doctest: +SKIP
    (True, 0)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataNotFoundError, InputError
from .records import (
    DatasetRecord,
    MetricRecord,
    RunManifest,
    read_judgments,
    read_layer_scores,
    read_manifest,
    read_scores,
    to_json,
)
from .tasks import TASKS

__all__ = [
    "GROUP_ORDER",
    "AlignedData",
    "DatasetInfo",
    "JNDData",
    "LayerData",
    "MOSData",
    "MetricRecord",
    "Run",
    "TwoAFCData",
    "load_run",
]

GROUP_ORDER: tuple[str, ...] = ("classical", "deep-baseline", "lpips", "custom")


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset card as recorded in the manifest.

    Attributes:
        name: Dataset name, e.g. ``"bapps"``.
        card_version: Version of the dataset card.
        synthetic: True when the judgments were constructed, not collected from people.
        split: Split that was scored, e.g. ``"val"``.
        description: Card description.
        source: Card source / citation.
        raw: The manifest's ``dataset`` entry (every field of
            :class:`~iqa_bench.records.DatasetRecord`).
        notice: The dataset's own warning for every report (``""``: none, or the generic
            synthetic one when ``synthetic``).
        human_ceiling: False when the judgments are set by a rule, so reports omit the ceiling.
    """

    name: str
    card_version: int | None
    synthetic: bool
    split: str | None
    description: str
    source: str
    raw: dict[str, Any]
    notice: str = ""
    human_ceiling: bool = True

    @classmethod
    def from_record(cls, record: DatasetRecord) -> DatasetInfo:
        """The reader's view of a manifest's dataset record."""
        return cls(
            name=record.name,
            card_version=record.card_version,
            synthetic=record.synthetic,
            split=record.split,
            description=record.description.strip(),
            source=record.source.strip(),
            raw=to_json(record),
            notice=record.notice,
            human_ceiling=record.human_ceiling,
        )


@dataclass(frozen=True, eq=False)
class TwoAFCData:
    """A metric's 2AFC distances aligned with the judgments (failed samples removed).

    Attributes:
        sample_id: Sample ids, in judgments order.
        subset: Subset label per sample.
        d0: Oriented distance between reference and ``p0`` (lower = more similar).
        d1: Oriented distance between reference and ``p1``.
        h: Fraction of judges who preferred ``p1``.
        n_failed: Samples dropped because the metric's score was NaN.
        subset_order: Subsets in judgments order (also those left empty by failures).
    """

    sample_id: np.ndarray
    subset: np.ndarray
    d0: np.ndarray
    d1: np.ndarray
    h: np.ndarray
    n_failed: int
    subset_order: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class JNDData:
    """A metric's JND distances aligned with the judgments (failed samples removed).

    Attributes:
        sample_id: Sample ids, in judgments order.
        subset: Subset label per sample.
        d: Oriented distance between the two patches.
        same: Fraction of judges who said the pair looks the same.
        n_failed: Samples dropped because the metric's score was NaN.
        subset_order: Subsets in judgments order.
    """

    sample_id: np.ndarray
    subset: np.ndarray
    d: np.ndarray
    same: np.ndarray
    n_failed: int
    subset_order: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class MOSData:
    """A metric's distances to the reference aligned with the MOS/DMOS (failed samples removed).

    Attributes:
        sample_id: Sample ids, in judgments order.
        subset: Distortion type per sample.
        d: Oriented distance between reference and distorted image (lower = more similar);
            pass ``-d`` as ``quality_like`` to the correlation statistics.
        mos: The dataset's scores as published (MOS or DMOS).
        higher_is_better_mos: True for MOS (higher = better), False for DMOS.
        n_failed: Samples dropped because the metric's score was NaN.
        subset_order: Distortion types in judgments order.
    """

    sample_id: np.ndarray
    subset: np.ndarray
    d: np.ndarray
    mos: np.ndarray
    higher_is_better_mos: bool
    n_failed: int
    subset_order: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class AlignedData:
    """A metric's distances on any task aligned with the judgments (failed samples removed).

    Attributes:
        task: The task's name (a key of :data:`iqa_bench.tasks.TASKS`).
        sample_id: Sample ids, in judgments order.
        subset: Subset label per sample.
        distances: Stored score name (``TaskSpec.scores``) -> oriented distance per sample.
        judgment: The task's human judgment per sample (``TaskSpec.judgment``).
        n_failed: Samples dropped because the metric's score was NaN.
        subset_order: Subsets in judgments order (also those left empty by failures).
    """

    task: str
    sample_id: np.ndarray
    subset: np.ndarray
    distances: dict[str, np.ndarray]
    judgment: np.ndarray
    n_failed: int
    subset_order: tuple[str, ...]


@dataclass(frozen=True)
class LayerData:
    """Per-layer distances of a metric (``Run.layer_distances``).

    Attributes:
        taps: The trunk taps, one per column.
        data: Aligned data whose ``distances`` are (N, L) arrays, column ``l`` the distance of
            tap ``taps[l]`` (they sum to the metric's score).
    """

    taps: tuple[str, ...]
    data: AlignedData


@dataclass(frozen=True, eq=False)
class Run:
    """A loaded run directory; arrays are read lazily and cached.

    Attributes:
        path: The run directory.
        record: ``manifest.json`` as read (a schema-1 manifest upgraded to schema 2).
        manifest: ``record`` as plain JSON values (what a schema-2 ``manifest.json`` holds).
        run_id: The run's id.
        dataset: Dataset card info.
        metrics: Metric records in manifest order.
    """

    path: Path
    record: RunManifest
    manifest: dict[str, Any]
    run_id: str
    dataset: DatasetInfo
    metrics: dict[str, MetricRecord]
    _cache: dict[tuple[str, ...], Any] = field(default_factory=dict, repr=False)

    def tasks(self) -> list[str]:
        """Tasks of the run in manifest order (falls back to the judgment files present).

        Example:
            >>> run.tasks()  # doctest: +SKIP
            ['2afc', 'jnd']
        """
        if self.record.tasks:
            return list(self.record.tasks)
        return sorted(p.stem for p in (self.path / "judgments").glob("*.npz"))

    def metric_names(self, status: str | None = "ok") -> list[str]:
        """Metric names grouped classical -> deep-baseline -> lpips -> custom, card order inside.

        Args:
            status: Keep only metrics with this status; ``None`` keeps all.

        Example:
            >>> run.metric_names()  # doctest: +SKIP
            ['l2', 'ssim', 'lpips-alex']
        """

        def rank(name: str) -> int:
            group = self.metrics[name].group
            return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)

        names = [n for n, m in self.metrics.items() if status is None or m.status == status]
        return sorted(names, key=rank)  # sorted() is stable: card order survives in a group

    def skipped(self) -> list[tuple[str, str]]:
        """``(name, reason)`` of every metric that did not run, in grouped order.

        Example:
            >>> run.skipped()  # doctest: +SKIP
            [('lpips-vgg', 'trunk weights ... not found')]
        """
        return [
            (n, self.metrics[n].reason or "no reason recorded")
            for n in self.metric_names(None)
            if self.metrics[n].status != "ok"
        ]

    def failed_samples(self) -> list[dict[str, Any]]:
        """The manifest's ``failed_samples`` list (task, sample_id, path, reason): samples
        that failed while scoring (their scores are NaN)."""
        return [to_json(e) for e in self.record.failed_samples]

    def bad_samples(self) -> list[dict[str, Any]]:
        """The manifest's ``bad_samples`` list: samples dropped when opening the dataset.

        Entries hold ``sample_id``, ``path``, ``reason``, ``task`` and ``subset`` (``""`` when
        unknown, as in runs of older versions). These samples are in no judgments or scores file.
        """
        return [to_json(e) for e in self.record.bad_samples]

    def subsets(self, task: str) -> tuple[str, ...]:
        """Subset names of ``task`` in order of first appearance in the judgments."""
        return self._judgments(task)[2]

    def judgments(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sample_id, subset, h_or_same)`` of ``task`` as stored by the runner."""
        sample_id, subset, _, values = self._judgments(task)
        return sample_id, subset, values

    def aligned(self, metric: str, task: str) -> AlignedData:
        """The metric's oriented distances on ``task`` aligned to its judgments.

        The typed views :meth:`twoafc`, :meth:`jnd` and :meth:`mos` read the same arrays.

        Example:
            >>> run.aligned("l2", "jnd").distances["d"].shape  # doctest: +SKIP
            (200,)
        """
        sid, sub, order, judged, dists, failed = self._aligned(metric, task)
        names = TASKS[task].scores
        return AlignedData(
            task, sid, sub, dict(zip(names, dists, strict=True)), judged, failed, order
        )

    def twoafc(self, metric: str) -> TwoAFCData:
        """The metric's oriented 2AFC distances aligned to the judgments.

        Raises:
            ValueError: For an unknown or skipped metric, or scores that do not match the
                judgments' sample ids.
            FileNotFoundError: When a judgments or scores file is missing.

        Example:
            >>> data = run.twoafc("ssim")  # doctest: +SKIP
            >>> bool((data.d0 <= 0).all())  # similarities come back negated  # doctest: +SKIP
            True
        """
        sid, sub, order, h, (d0, d1), failed = self._aligned(metric, "2afc")
        return TwoAFCData(sid, sub, d0, d1, h, failed, order)

    def jnd(self, metric: str) -> JNDData:
        """The metric's oriented JND distances aligned to the judgments (see :meth:`twoafc`).

        Example:
            >>> run.jnd("lpips-alex").n_failed  # doctest: +SKIP
            0
        """
        sid, sub, order, same, (d,), failed = self._aligned(metric, "jnd")
        return JNDData(sid, sub, d, same, failed, order)

    def mos_higher_is_better(self) -> bool:
        """The score direction recorded in the manifest (True: MOS, False: DMOS).

        Raises:
            ValueError: When the manifest does not record it (a run of an older version).
        """
        value = self.record.dataset.mos_higher_is_better
        if not isinstance(value, bool):
            raise InputError(
                f"{self.path / 'manifest.json'}: dataset.mos_higher_is_better is {value!r}, not "
                "true/false; the score direction must not be guessed. Re-run the benchmark."
            )
        return value

    def mos(self, metric: str) -> MOSData:
        """The metric's oriented distances aligned to the MOS judgments (see :meth:`twoafc`).

        Example:
            >>> data = run.mos("ssim")  # doctest: +SKIP
            >>> srcc(-data.d, data.mos, higher_is_better_mos=data.higher_is_better_mos)  # doctest: +SKIP
            0.87
        """
        sid, sub, order, mos, (d,), failed = self._aligned(metric, "mos")
        return MOSData(sid, sub, d, mos, self.mos_higher_is_better(), failed, order)

    def layer_distances(self, metric: str, task: str = "2afc") -> LayerData | None:
        """The metric's per-layer distances stored by ``run --per-layer``, aligned to the
        judgments (samples with a NaN layer dropped); None when the run stored none for it.

        Example:
            >>> layers = run.layer_distances("lpips-alex")  # doctest: +SKIP
            >>> layers.taps[0], layers.data.distances["d0"].shape  # doctest: +SKIP
            ('features.1', (300, 5))
        """
        self._aligned(metric, task)  # checks the metric and the sample ids against judgments
        sign = -1.0 if self._metric(metric).higher_is_better else 1.0
        sid, subset, order, judged = self._judgments(task)
        path = self.path / "scores" / metric / f"{task}.npz"
        layers = read_layer_scores(path, task, f"{task} per-layer scores of {metric!r}")
        if layers is None:
            return None
        position = {s: i for i, s in enumerate(layers.sample_id)}
        take = np.array([position[s] for s in sid.tolist()], dtype=np.int64)
        dists = {k: sign * v[take] for k, v in layers.values.items()}
        ok = ~np.any([np.isnan(d).any(axis=1) for d in dists.values()], axis=0)
        data = AlignedData(
            task,
            sid[ok],
            subset[ok],
            {k: d[ok] for k, d in dists.items()},
            judged[ok],
            int((~ok).sum()),
            order,
        )
        return LayerData(layers.taps, data)

    # -- internals -------------------------------------------------------------------------

    def _judgments(self, task: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
        key = ("judgments", task)
        if key not in self._cache:
            if task not in TASKS:
                raise InputError(f"task {task!r} is not scorable; use one of {list(TASKS)}.")
            judged = read_judgments(self.path / "judgments" / f"{task}.npz", task)
            _, first = np.unique(judged.subset, return_index=True)
            order = tuple(str(judged.subset[i]) for i in sorted(first))
            self._cache[key] = (judged.sample_id, judged.subset, order, judged.values)
        return self._cache[key]

    def _metric(self, metric: str) -> MetricRecord:
        if metric not in self.metrics:
            close = difflib.get_close_matches(metric, list(self.metrics), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"metric {metric!r} is not in {self.path / 'manifest.json'}; it has "
                f"{list(self.metrics)}.{hint}"
            )
        info = self.metrics[metric]
        if info.status != "ok":
            raise InputError(
                f"metric {metric!r} was {info.status} in this run ({info.reason}); it has no "
                "scores. Fix the reason and re-run, or use run.metric_names()."
            )
        return info

    def _aligned(self, metric: str, task: str) -> tuple:
        key = ("scores", metric, task)
        if key in self._cache:
            return self._cache[key]
        info = self._metric(metric)
        sid, subset, order, judged = self._judgments(task)
        path = self.path / "scores" / metric / f"{task}.npz"
        keys = TASKS[task].scores
        scores = read_scores(path, task, f"{task} scores of {metric!r}")
        position = {s: i for i, s in enumerate(scores.sample_id)}
        if len(position) != len(scores.sample_id) or set(position) != set(sid.tolist()):
            missing = sorted(set(sid.tolist()) - set(position))[:3]
            extra = sorted(set(position) - set(sid.tolist()))[:3]
            raise InputError(
                f"{path}: sample_ids do not match judgments/{task}.npz ({len(position)} unique of "
                f"{len(scores.sample_id)} vs {len(sid)}; missing e.g. {missing}, extra e.g. "
                f"{extra}). Scores and judgments come from different runs or datasets; re-run "
                "the metric on this run's dataset."
            )
        take = np.array([position[s] for s in sid.tolist()], dtype=np.int64)
        sign = -1.0 if info.higher_is_better else 1.0
        dists = [sign * scores.values[k].astype(np.float64)[take] for k in keys]
        ok = ~np.any([np.isnan(d) for d in dists], axis=0)
        result = (
            sid[ok],
            subset[ok],
            order,
            judged[ok],
            tuple(d[ok] for d in dists),
            int((~ok).sum()),
        )
        self._cache[key] = result
        return result


def load_run(run_dir: str | Path) -> Run:
    """Loads and checks a run directory's manifest; score arrays are read on demand.

    Args:
        run_dir: Folder containing ``manifest.json``, ``judgments/`` and ``scores/``.

    Returns:
        A :class:`Run`.

    Raises:
        FileNotFoundError: When ``run_dir`` or its ``manifest.json`` does not exist.
        ContractError: When the manifest is not valid JSON or breaks the run contract
            (schema 1 or 2; naming the field and how to re-create the run). A ValueError.

    Example:
        >>> run = load_run("runs/synthetic/20261126-131500-synthetic")  # doctest: +SKIP
        >>> run.dataset.name, run.metric_names()[:2]  # doctest: +SKIP
        ('synthetic', ['l2', 'ssim'])
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise DataNotFoundError(
            f"run directory {path} does not exist; pass the folder the benchmark wrote "
            "(it contains manifest.json)."
        )
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise DataNotFoundError(
            f"{path} is not a run directory: {manifest_path.name} is missing. Pass the folder "
            "that contains manifest.json (e.g. runs/<dataset>/<run-id>)."
        )
    record = read_manifest(manifest_path)
    return Run(
        path=path,
        record=record,
        manifest=to_json(record),
        run_id=record.run_id,
        dataset=DatasetInfo.from_record(record.dataset),
        metrics=dict(record.metrics),
    )
