"""Read a run directory written by the runner (no torch, no statistics).

A run directory holds ``manifest.json``, ``judgments/<task>.npz`` and
``scores/<metric>/<task>.npz`` (layout in ``docs/ARCHITECTURE.md``). This module checks that
contract, aligns every metric's scores with the judgments by ``sample_id``, turns similarities
into distances (``distance = -score`` when the card says ``higher_is_better``) and drops failed
(NaN) samples while counting them, so that ``iqa_bench.stats`` only ever sees clean distances.

Example:
    >>> run = load_run("runs/synthetic/20261126-131500-synthetic")  # doctest: +SKIP
    >>> data = run.twoafc("lpips-alex")  # doctest: +SKIP
    >>> data.d0.shape == data.h.shape, data.n_failed  # doctest: +SKIP
    (True, 0)
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "GROUP_ORDER",
    "DatasetInfo",
    "JNDData",
    "MOSData",
    "MetricInfo",
    "Run",
    "TwoAFCData",
    "load_run",
]

GROUP_ORDER: tuple[str, ...] = ("classical", "deep-baseline", "lpips", "custom")
SCHEMA = 1
# Which per-sample arrays each task's files carry; other tasks are listed but not loadable.
_JUDGMENT_KEY = {"2afc": "h", "jnd": "same", "mos": "mos"}
_SCORE_KEYS = {"2afc": ("d0", "d1"), "jnd": ("d",), "mos": ("d",)}


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
        raw: The manifest's ``dataset`` entry as written.
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


@dataclass(frozen=True)
class MetricInfo:
    """One metric's manifest entry.

    Attributes:
        name: Metric name (card name).
        status: ``"ok"`` or ``"skipped"`` (anything else is kept as written).
        group: Report group: classical, deep-baseline, lpips or custom.
        higher_is_better: True for similarities (e.g. SSIM, PSNR); scores are negated on load.
        card_version: Version of the metric card.
        reason: Why the metric was skipped, else ``None``.
        raw: The manifest entry as written (params, weight hashes, timings, ...).
    """

    name: str
    status: str
    group: str
    higher_is_better: bool
    card_version: int | None
    reason: str | None
    raw: dict[str, Any]


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


def _load_npz(path: Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the run has no {what}; re-run the benchmark for it or pass "
            "a complete run directory."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise ValueError(
                    f"{path} lacks array(s) {missing} (has {sorted(npz.files)}); the contract "
                    f"needs {list(keys)}, see docs/ARCHITECTURE.md."
                )
            arrays = {k: np.asarray(npz[k]).reshape(-1) for k in keys}
    except (OSError, EOFError) as exc:
        raise ValueError(
            f"{path} is not a readable .npz file ({exc}); re-run the benchmark."
        ) from None
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{path} has arrays of different lengths {lengths}; re-run the benchmark.")
    arrays["sample_id"] = arrays["sample_id"].astype(str)
    return arrays


@dataclass(frozen=True, eq=False)
class Run:
    """A loaded run directory; arrays are read lazily and cached.

    Attributes:
        path: The run directory.
        manifest: ``manifest.json`` as a dict.
        run_id: The run's id.
        dataset: Dataset card info.
        metrics: Metric infos in manifest order.
    """

    path: Path
    manifest: dict[str, Any]
    run_id: str
    dataset: DatasetInfo
    metrics: dict[str, MetricInfo]
    _cache: dict[tuple[str, ...], Any] = field(default_factory=dict, repr=False)

    def tasks(self) -> list[str]:
        """Tasks of the run in manifest order (falls back to the judgment files present).

        Example:
            >>> run.tasks()  # doctest: +SKIP
            ['2afc', 'jnd']
        """
        listed = self.manifest.get("tasks")
        if isinstance(listed, dict) and listed:
            return [str(t) for t in listed]
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
        """The manifest's ``failed_samples`` list (task, sample_id, path, reason)."""
        return list(self.manifest.get("failed_samples") or [])

    def subsets(self, task: str) -> tuple[str, ...]:
        """Subset names of ``task`` in order of first appearance in the judgments."""
        return self._judgments(task)[2]

    def judgments(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sample_id, subset, h_or_same)`` of ``task`` as stored by the runner."""
        sample_id, subset, _, values = self._judgments(task)
        return sample_id, subset, values

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
        value = self.dataset.raw.get("mos_higher_is_better")
        if not isinstance(value, bool):
            raise ValueError(
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

    # -- internals -------------------------------------------------------------------------

    def _judgments(self, task: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
        key = ("judgments", task)
        if key not in self._cache:
            if task not in _JUDGMENT_KEY:
                raise ValueError(
                    f"task {task!r} is not scorable; use one of {list(_JUDGMENT_KEY)}."
                )
            path = self.path / "judgments" / f"{task}.npz"
            name = _JUDGMENT_KEY[task]
            arrays = _load_npz(path, ("sample_id", "subset", name), f"{task} judgments")
            sid = arrays["sample_id"]
            uniq, counts = np.unique(sid, return_counts=True)
            if (counts > 1).any():
                raise ValueError(
                    f"{path} repeats sample_id {uniq[counts > 1][:3].tolist()}; each sample must "
                    "appear once. Re-run the benchmark."
                )
            values = arrays[name].astype(np.float64)
            if not np.isfinite(values).all():
                raise ValueError(f"{path}: {name} has NaN/inf judgments; re-run the benchmark.")
            subset = arrays["subset"].astype(str)
            _, first = np.unique(subset, return_index=True)
            order = tuple(str(subset[i]) for i in sorted(first))
            self._cache[key] = (sid, subset, order, values)
        return self._cache[key]

    def _metric(self, metric: str) -> MetricInfo:
        if metric not in self.metrics:
            close = difflib.get_close_matches(metric, list(self.metrics), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"metric {metric!r} is not in {self.path / 'manifest.json'}; it has "
                f"{list(self.metrics)}.{hint}"
            )
        info = self.metrics[metric]
        if info.status != "ok":
            raise ValueError(
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
        keys = _SCORE_KEYS[task]
        arrays = _load_npz(path, ("sample_id", *keys), f"{task} scores of {metric!r}")
        position = {s: i for i, s in enumerate(arrays["sample_id"])}
        if len(position) != len(arrays["sample_id"]) or set(position) != set(sid.tolist()):
            missing = sorted(set(sid.tolist()) - set(position))[:3]
            extra = sorted(set(position) - set(sid.tolist()))[:3]
            raise ValueError(
                f"{path}: sample_ids do not match judgments/{task}.npz ({len(position)} unique of "
                f"{len(arrays['sample_id'])} vs {len(sid)}; missing e.g. {missing}, extra e.g. "
                f"{extra}). Scores and judgments come from different runs or datasets; re-run "
                "the metric on this run's dataset."
            )
        take = np.array([position[s] for s in sid.tolist()], dtype=np.int64)
        sign = -1.0 if info.higher_is_better else 1.0
        dists = [sign * arrays[k].astype(np.float64)[take] for k in keys]
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


def _metric_info(name: str, entry: Any, manifest_path: Path) -> MetricInfo:
    if not isinstance(entry, dict):
        raise ValueError(f"{manifest_path}: metrics[{name!r}] must be an object, got {entry!r}.")
    status = str(entry.get("status", "ok"))
    if status == "ok" and "higher_is_better" not in entry:
        # Guessing the orientation would silently flip a similarity's score around 50%.
        raise ValueError(
            f"{manifest_path}: metrics[{name!r}] lacks 'higher_is_better'; the runner must "
            "record each metric card's orientation."
        )
    return MetricInfo(
        name=name,
        status=status,
        group=str(entry.get("group", "custom")),
        higher_is_better=bool(entry.get("higher_is_better", False)),
        card_version=entry.get("card_version"),
        reason=entry.get("reason"),
        raw=entry,
    )


def load_run(run_dir: str | Path) -> Run:
    """Loads and checks a run directory's manifest; score arrays are read on demand.

    Args:
        run_dir: Folder containing ``manifest.json``, ``judgments/`` and ``scores/``.

    Returns:
        A :class:`Run`.

    Raises:
        FileNotFoundError: When ``run_dir`` or its ``manifest.json`` does not exist.
        ValueError: When the manifest is not valid JSON or does not follow schema 1.

    Example:
        >>> run = load_run("runs/synthetic/20261126-131500-synthetic")  # doctest: +SKIP
        >>> run.dataset.name, run.metric_names()[:2]  # doctest: +SKIP
        ('synthetic', ['l2', 'ssim'])
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(
            f"run directory {path} does not exist; pass the folder the benchmark wrote "
            "(it contains manifest.json)."
        )
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{path} is not a run directory: {manifest_path.name} is missing. Pass the folder "
            "that contains manifest.json (e.g. runs/<dataset>/<run-id>)."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{manifest_path} is not valid JSON ({exc}); re-run the benchmark."
        ) from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_path} must hold a JSON object; re-run the benchmark.")
    if manifest.get("schema") != SCHEMA:
        raise ValueError(
            f"{manifest_path} has schema {manifest.get('schema')!r}; this version reads schema "
            f"{SCHEMA}. Upgrade iqa-bench or re-run the benchmark."
        )
    for key in ("run_id", "dataset", "metrics"):
        if key not in manifest:
            raise ValueError(
                f"{manifest_path} lacks {key!r}; see the manifest schema in docs/ARCHITECTURE.md."
            )
    ds = manifest["dataset"]
    if not isinstance(ds, dict) or "name" not in ds:
        raise ValueError(f"{manifest_path}: 'dataset' must be an object with a 'name'.")
    if not isinstance(manifest["metrics"], dict):
        raise ValueError(f"{manifest_path}: 'metrics' must be an object keyed by metric name.")
    dataset = DatasetInfo(
        name=str(ds["name"]),
        card_version=ds.get("card_version"),
        synthetic=bool(ds.get("synthetic", False)),
        split=ds.get("split"),
        description=str(ds.get("description", "")).strip(),
        source=str(ds.get("source", "")).strip(),
        raw=ds,
        notice=str(ds.get("notice") or ""),
        human_ceiling=ds.get("human_ceiling") is not False,
    )
    metrics = {
        str(n): _metric_info(str(n), e, manifest_path) for n, e in manifest["metrics"].items()
    }
    return Run(
        path=path,
        manifest=manifest,
        run_id=str(manifest["run_id"]),
        dataset=dataset,
        metrics=metrics,
    )
