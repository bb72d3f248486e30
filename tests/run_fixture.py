"""Fabricates a run directory through the run contract's records (``iqa_bench.records``).

Judgments come from latent "true" distances; each metric sees those distances plus Gaussian
noise of its own scale, so a smaller ``noise`` means a metric that agrees more with the judges.
Similarity metrics (``higher_is_better``) are stored as similarities, as the runner does.

Example:
    >>> from tests.run_fixture import make_run
    >>> run_dir = make_run(tmp_path)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iqa_bench.records import (
    BadSampleRecord,
    DatasetRecord,
    EnvironmentRecord,
    FailedSampleRecord,
    MetricRecord,
    PackageRecord,
    RunManifest,
    TaskRecord,
    TimingsRecord,
    manifest_json,
)


@dataclass(frozen=True)
class FakeMetric:
    """A fabricated metric: its card fields and how noisy its distances are."""

    name: str
    group: str
    noise: float
    higher_is_better: bool = False
    type: str = "fake"


DEFAULT_METRICS: tuple[FakeMetric, ...] = (
    # Manifest order is deliberately not grouped, so grouping is exercised.
    FakeMetric("lpips-alex", "lpips", 0.05, type="lpips"),
    FakeMetric("l2", "classical", 0.6, type="l2"),
    FakeMetric("my_metric", "custom", 0.15),
    FakeMetric("ssim", "classical", 0.3, higher_is_better=True, type="ssim"),
    FakeMetric("lpips-vgg-baseline", "deep-baseline", 0.2, type="lpips"),
)
DEFAULT_SKIPPED: Mapping[str, str] = {
    "lpips-vgg": "trunk weights vgg16-397923af-features.pth not found in IQA_BENCH_WEIGHTS",
}
TWOAFC_SUBSETS = ("traditional", "cnn", "superres")
JND_SUBSETS = ("traditional", "cnn")


def bad_sample_record(entry: Mapping[str, str]) -> BadSampleRecord:
    """A ``bad_samples`` entry; one without ``task``/``subset`` (an older runner's) gets ``""``."""
    return BadSampleRecord(**({"task": "", "subset": ""} | dict(entry)))


def schema1_manifest(run_dir: Path) -> dict:
    """The run's manifest as the runner wrote it before the records (schema 1).

    Schema 1 left out ``reason``/``compiled`` of scored metrics and ``weight_hashes``/``timings``
    of skipped ones, and runs of its earlier versions lacked the run settings after
    ``batch_size``, ``dataset.load_size`` and ``bad_samples``; this drops them all.
    """
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["schema"] = 1
    for key in ("max_batch_pixels", "workers", "resize", "compile", "world_size", "bad_samples"):
        manifest.pop(key)
    manifest["dataset"].pop("load_size")
    for entry in manifest["metrics"].values():
        drop = ("reason", "compiled") if entry["status"] == "ok" else ("weight_hashes", "timings")
        for key in (*drop, "compiled"):
            entry.pop(key, None)
    manifest["environment"] = {k: v for k, v in manifest["environment"].items() if v is not None}
    manifest["timings"] = {k: v for k, v in manifest["timings"].items() if v is not None}
    return manifest


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _ids(split: str, subsets: Sequence[str], n: int, prefix: str) -> tuple[list[str], list[str]]:
    ids = [f"{split}/{s}/{prefix}{i:06d}" for s in subsets for i in range(n)]
    return ids, [s for s in subsets for _ in range(n)]


def make_run(
    root: Path,
    *,
    run_id: str = "20261126-131500-synthetic",
    dataset: str = "synthetic",
    synthetic: bool = True,
    metrics: Sequence[FakeMetric] = DEFAULT_METRICS,
    skipped: Mapping[str, str] = DEFAULT_SKIPPED,
    twoafc_subsets: Sequence[str] = TWOAFC_SUBSETS,
    jnd_subsets: Sequence[str] = JND_SUBSETS,
    n_per_subset: int = 40,
    failed: Sequence[tuple[str, int]] = (("2afc", 3),),
    bad_samples: Sequence[Mapping[str, str]] = (),
    id_prefix: str = "",
    judgment_seed: int = 0,
    metric_seed: int = 1,
) -> Path:
    """Writes ``root/<run_id>/`` with manifest, judgments and scores; returns that folder.

    Args:
        root: Parent folder (e.g. pytest's ``tmp_path``).
        run_id: Folder name and manifest ``run_id``.
        dataset: Dataset name in the manifest.
        synthetic: Whether the dataset card says the judgments are synthetic.
        metrics: Metrics that ran; lower ``noise`` = better agreement with the judges.
        skipped: Metrics that were skipped, name -> reason.
        twoafc_subsets: 2AFC subsets, in the order written (the paper's order).
        jnd_subsets: JND subsets; empty to leave the JND task out.
        n_per_subset: Samples per subset for both tasks.
        failed: ``(task, sample index)`` pairs whose scores are NaN for every metric and that
            the manifest lists as failed (failed while scoring).
        bad_samples: Manifest ``bad_samples`` entries as written (samples dropped when opening
            the dataset: ``sample_id``, ``path``, ``reason``, and ``task``/``subset`` unless
            mimicking an older runner); such samples are in no judgments or scores file.
        id_prefix: Prefix of the file stems in sample ids (a different prefix gives a run
            whose samples do not match).
        judgment_seed: Seed of the latent distances and judgments (same seed = same samples).
        metric_seed: Seed of the metrics' noise.
    """
    run_dir = Path(root) / run_id
    (run_dir / "judgments").mkdir(parents=True)
    rng = np.random.default_rng(judgment_seed)
    mrng = np.random.default_rng(metric_seed)
    tasks: dict[str, TaskRecord] = {}
    latent: dict[str, tuple[np.ndarray, ...]] = {}

    ids, subs = _ids("val", twoafc_subsets, n_per_subset, id_prefix)
    t0, t1 = rng.uniform(0.0, 1.0, len(ids)), rng.uniform(0.0, 1.0, len(ids))
    h = rng.binomial(5, _sigmoid(6.0 * (t0 - t1))) / 5.0
    np.savez(
        run_dir / "judgments" / "2afc.npz", sample_id=np.array(ids), subset=np.array(subs), h=h
    )
    tasks["2afc"] = TaskRecord(len(ids), {s: n_per_subset for s in twoafc_subsets})
    latent["2afc"] = (t0, t1)

    if jnd_subsets:
        jids, jsubs = _ids("val", jnd_subsets, n_per_subset, id_prefix)
        t = rng.uniform(0.0, 1.0, len(jids))
        same = rng.binomial(3, _sigmoid(8.0 * (0.35 - t))) / 3.0
        same[::n_per_subset] = 1.0  # every subset needs a "same" pair for AP to exist
        np.savez(
            run_dir / "judgments" / "jnd.npz",
            sample_id=np.array(jids),
            subset=np.array(jsubs),
            same=same,
        )
        tasks["jnd"] = TaskRecord(len(jids), {s: n_per_subset for s in jnd_subsets})
        latent["jnd"] = (t,)

    all_ids = {"2afc": ids, **({"jnd": jids} if jnd_subsets else {})}
    entries: dict[str, MetricRecord] = {}
    for m in metrics:
        folder = run_dir / "scores" / m.name
        folder.mkdir(parents=True)
        for task, truths in latent.items():
            values = [x + m.noise * mrng.normal(size=x.shape) for x in truths]
            if m.higher_is_better:
                values = [1.0 - v for v in values]
            for t_name, index in failed:
                if t_name == task:
                    for v in values:
                        v[index] = np.nan
            # Stored in reverse order: readers must align by sample_id, not by position.
            keys = ("d0", "d1") if task == "2afc" else ("d",)
            arrays = {k: v[::-1] for k, v in zip(keys, values, strict=True)}
            np.savez(folder / f"{task}.npz", sample_id=np.array(all_ids[task][::-1]), **arrays)
        entries[m.name] = MetricRecord(
            name=m.name,
            status="ok",
            card_version=1,
            type=m.type,
            group=m.group,
            higher_is_better=m.higher_is_better,
            description=f"fabricated {m.group} metric",
            weight_hashes={"trunk": "sha256:" + "ab" * 8} if m.group != "classical" else {},
            timings={task: 0.1 for task in latent},
        )
    for name, reason in skipped.items():
        entries[name] = MetricRecord(
            name=name,
            status="skipped",
            reason=reason,
            card_version=1,
            type="lpips",
            group="lpips",
            higher_is_better=False,
            description="skipped metric",
        )
    scored = tuple(m.name for m in metrics)
    manifest = RunManifest(
        run_id=run_id,
        created="2026-11-26T13:15:00+00:00",
        package=PackageRecord(version="0.1.0", git_commit="abc123def456", git_dirty=False),
        environment=EnvironmentRecord(python="3.11.7", torch="2.14.1", platform="Linux-x86_64"),
        dataset=DatasetRecord(
            name=dataset,
            card_version=1,
            adapter=dataset,
            synthetic=synthetic,
            root=f"/data/{dataset}",
            split="val",
            description="fabricated judgments for tests",
            source="tests/run_fixture.py",
        ),
        device="cpu",
        dtype="fp32",
        batch_size=64,
        tasks=tasks,
        metrics=entries,
        failed_samples=tuple(
            FailedSampleRecord(t, all_ids[t][i], f"/data/{i}.png", "bad PNG", scored)
            for t, i in failed
        ),
        bad_samples=tuple(bad_sample_record(e) for e in bad_samples),
        timings=TimingsRecord(total_s=12.3, decode_s=1.1),
    )
    (run_dir / "manifest.json").write_text(manifest_json(manifest), encoding="utf-8")
    return run_dir
