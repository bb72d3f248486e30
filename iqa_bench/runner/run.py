"""The batched runner: every sample decoded once, scored by every metric, stored with provenance.

It computes no statistics: it writes per-sample distances (see ``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..config import metric_cards
from ..datasets import Dataset, open_dataset
from ..metrics import Metric, create_metric
from ..tasks import task_spec
from ..weights import WeightsUnavailableError, cache_dir
from . import store
from .batches import (
    DecodedBatch,
    batches_from_arrays,
    decoded_batches,
    image_fields,
    merge_batches,
    to_device,
)
from .decode_cache import DecodeCache
from .distributed import DistContext, dist_context
from .provenance import environment_info, new_run_id, now_iso, package_info

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class RunOptions:
    """How to run (none of it changes which samples are scored).

    Attributes:
        device: ``cpu``, ``cuda``, ``cuda:1``...; None picks CUDA when present.
        dtype: ``fp32``, or ``bf16``/``fp16`` autocast (feature normalisation stays float32).
        batch_size: Samples per batch; halved automatically on out-of-memory.
        chunk_size: Samples per resumable chunk on disk.
        skip_bad: Record undecodable samples as failed (NaN) instead of stopping.
        workers: Image-decoding threads.
        progress: Show progress bars on stderr.
        resize: Resize every image to ``resize`` x ``resize`` (bilinear, antialiased) before
            scoring, the convention some MOS papers use; None = native resolution (default).
            Changes the numbers, so it is part of the results' fingerprint and the manifest.
        decode_cache: Keep decoded images in ``<cache>/decoded`` (memory-mapped uint8) so later
            runs skip PNG decoding.
        reuse: Reuse finished per-sample results in the run directory (False recomputes).
    """

    device: str | None = None
    dtype: str = "fp32"
    batch_size: int = 64
    chunk_size: int = 4096
    skip_bad: bool = False
    workers: int = 2
    progress: bool = True
    resize: int | None = None
    decode_cache: bool = True
    reuse: bool = True


@dataclass
class RunResult:
    """What ``run_benchmark`` produced."""

    run_dir: Path
    manifest: dict
    skipped: dict[str, str] = field(default_factory=dict)


def resolve_device(device: str | None, ctx: DistContext) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and ctx.world_size > 1:
        dev = torch.device("cuda", ctx.local_rank)
    return dev


def build_metrics(names: Sequence[str] | str, device: torch.device, log) -> tuple[dict, dict]:
    """Instantiate metrics; with ``"all"`` unavailable weights skip a metric, when named they fail."""
    explicit = names != "all" and list(names) != ["all"]
    wanted = list(metric_cards()) if not explicit else list(names)
    metrics: dict[str, Metric] = {}
    skipped: dict[str, str] = {}
    for name in wanted:
        try:
            metric = create_metric(name, device=device)
        except WeightsUnavailableError as exc:
            if explicit:
                raise
            skipped[name] = str(exc)
            continue
        metric.check_inputs = False  # the runner feeds decoded uint8/255: range and shape hold
        metric.use_channels_last()
        metrics[name] = metric
    by_cause: dict[str, list[str]] = {}
    for name, reason in skipped.items():
        by_cause.setdefault(reason.split(":")[0], []).append(name)
    for cause, names_ in by_cause.items():
        log(f"skipped {', '.join(names_)}: {cause} (reason and fix in the report)")
    return metrics, skipped


def metric_record(metric: Metric) -> dict:
    card = metric.card
    return {
        "status": "ok",
        "card_version": card.version,
        "type": card.type,
        "group": card.group,
        "higher_is_better": bool(metric.higher_is_better),
        "description": card.description,
        "params": dict(card.params),
        "weight_hashes": dict(metric.weight_hashes),
        "timings": {},
    }


def skipped_record(name: str, reason: str) -> dict:
    card = metric_cards()[name]
    from ..metrics import METRIC_TYPES

    return {
        "status": "skipped",
        "reason": reason,
        "card_version": card.version,
        "type": card.type,
        "group": card.group,
        "higher_is_better": bool(METRIC_TYPES.get(card.type).higher_is_better),
        "description": card.description,
        "params": dict(card.params),
    }


def _embed(metric: Metric, tensors: dict[str, torch.Tensor], field: str, cache: dict):
    """``metric.embed`` of one image field, shared with metrics of the same ``embedding_key``."""
    key = metric.embedding_key
    if key is None:
        return metric.embed(tensors[field])
    if (key, field) not in cache:
        cache[key, field] = metric.embed(tensors[field])
    return cache[key, field]


def _score(metric: Metric, tensors: dict[str, torch.Tensor], task: str, autocast, cache: dict):
    """One score array per compared pair of the task (a 2AFC reference is embedded once)."""
    with autocast():
        return [
            metric.compare(_embed(metric, tensors, a, cache), _embed(metric, tensors, b, cache))
            for a, b in task_spec(task).pairs
        ]


def _score_with_backoff(metric, tensors, task, autocast, cache) -> list[np.ndarray]:
    """Score a batch, halving it on out-of-memory until it fits (one sample must fit)."""
    try:
        out = _score(metric, tensors, task, autocast, cache)
        return [o.detach().double().cpu().numpy() for o in out]
    except torch.OutOfMemoryError:
        n = next(iter(tensors.values())).shape[0]
        if n == 1:
            raise
        cache.clear()  # shared embeddings of the whole batch would not fit beside the halves
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = n // 2
        parts = [
            {k: v[:half] for k, v in tensors.items()},
            {k: v[half:] for k, v in tensors.items()},
        ]
        first, second = (_score_with_backoff(metric, p, task, autocast, {}) for p in parts)
        return [np.concatenate([a, b]) for a, b in zip(first, second)]


def _check_size(metric: Metric, shape: tuple[int, ...], sample_id: str) -> None:
    h, w = shape[1:3]
    if min(h, w) < metric.min_size:
        raise ValueError(
            f"sample {sample_id}: images of {h}x{w} are smaller than {metric.name!r} accepts "
            f"(at least {metric.min_size}x{metric.min_size}); drop the metric or resize the data."
        )


class _TaskRun:
    """Scores one task for the metrics that still need it, chunk by chunk."""

    def __init__(self, ds, task, metrics, run_dir, opts, device, ctx, dataset_fp):
        self.task, self.metrics, self.run_dir, self.opts = task, metrics, run_dir, opts
        self.device, self.ctx = device, ctx
        self.samples = ds.samples(task)
        self.ids = [s.sample_id for s in self.samples]
        self.fields = store.SCORE_FIELDS[task]
        dtype = DTYPES[opts.dtype]
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
        )
        self.fps = {
            name: store.fingerprint(
                {
                    "metric": name,
                    "card": asdict(m.card),
                    "weights": m.weight_hashes,
                    "task": task,
                    "dataset": dataset_fp,
                    "ids": store.ids_digest(self.ids),
                    "dtype": opts.dtype,
                    "resize": opts.resize,
                }
            )
            for name, m in metrics.items()
        }
        self.timings = {name: 0.0 for name in metrics}
        self.decode_s = 0.0
        self.decode_cache_hits = 0
        self.failed: dict[int, tuple[str, str]] = {}

    def run(self, log) -> None:
        pending = [
            n
            for n in self.metrics
            if not (self.opts.reuse and store.has_final(self.run_dir, n, self.task, self.fps[n]))
        ]
        for name in set(self.metrics) - set(pending):
            for pos in store.load_final_failures(self.run_dir, name, self.task):
                path = str(getattr(self.samples[pos], image_fields(self.task)[0]))
                self.failed.setdefault(pos, (path, "failed in an earlier run"))
            log(f"{self.task}: reusing finished scores of {name}")
        if not pending:
            return
        n, size = len(self.samples), self.opts.chunk_size
        values = {name: {f: np.full(n, np.nan) for f in self.fields} for name in pending}
        bar = tqdm(
            total=n,
            desc=f"{self.task} ({len(pending)} metrics)",
            unit="sample",
            disable=not self.opts.progress or not self.ctx.is_main,
            file=sys.stderr,
        )
        for index, start in enumerate(range(0, n, size)):
            stop = min(start + size, n)
            chunk_fps = {name: f"{self.fps[name]}:{index}:{size}" for name in pending}
            todo = []
            for name in pending:
                cached = (
                    store.load_chunk(self.run_dir, name, self.task, index, chunk_fps[name])
                    if self.opts.reuse
                    else None
                )
                if cached is None:
                    todo.append(name)
                    continue
                for f in self.fields:
                    values[name][f][start:stop] = cached[f]
                for pos, path, reason in cached["failed"]:
                    self.failed[pos] = (path, reason)
            if todo:
                chunk_values, chunk_failed = self._score_chunk(todo, start, stop)
                if self.ctx.is_main:
                    for name in todo:
                        for f in self.fields:
                            values[name][f][start:stop] = chunk_values[name][f]
                        store.save_chunk(
                            self.run_dir,
                            name,
                            self.task,
                            index,
                            chunk_fps[name],
                            chunk_values[name],
                            chunk_failed,
                        )
                for pos, path, reason in chunk_failed:
                    self.failed[pos] = (path, reason)
                self.ctx.barrier()
            bar.update(stop - start)
        bar.close()
        if self.ctx.is_main:
            for name in pending:
                store.save_final(
                    self.run_dir, name, self.task, self.fps[name], self.ids, values[name]
                )

    def _batches(self, positions: list[int]):
        """Decoded batches of ``positions``: from the decoded-image cache, or decoded and cached."""
        fields = image_fields(self.task)
        cache = DecodeCache(cache_dir() / "decoded") if self.opts.decode_cache else None
        key = cache.key(self.task, self.samples, positions, fields) if cache else ""
        hit = cache.load(key) if cache else None
        if hit is not None:
            self.decode_cache_hits += 1
            yield from batches_from_arrays(*hit, self.opts.batch_size)
            return
        kept: list[DecodedBatch] = []
        for batch in decoded_batches(
            self.samples,
            positions,
            self.task,
            self.opts.batch_size,
            self.opts.skip_bad,
            self.opts.workers,
        ):
            kept.append(batch)
            yield batch
        if cache is not None:
            merged = merge_batches(kept)
            if merged is not None:
                cache.save(key, *merged)

    def _score_chunk(self, names, start, stop):
        positions = list(range(start + self.ctx.rank, stop, self.ctx.world_size))
        local = {name: {f: {} for f in self.fields} for name in names}
        failed = []
        t0 = time.perf_counter()
        for batch in self._batches(positions):
            self.decode_s += time.perf_counter() - t0
            failed += batch.failed
            if batch.positions:
                tensors = {
                    k: to_device(v, self.device, self.opts.resize) for k, v in batch.images.items()
                }
                shared: dict = {}  # embeddings of this batch, by (embedding_key, image field)
                for name in names:
                    metric = self.metrics[name]
                    _check_size(
                        metric,
                        batch.images[image_fields(self.task)[0]].shape,
                        self.samples[batch.positions[0]].sample_id,
                    )
                    t1 = time.perf_counter()
                    with torch.inference_mode():
                        out = _score_with_backoff(metric, tensors, self.task, self.autocast, shared)
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    self.timings[name] += time.perf_counter() - t1
                    for f, arr in zip(self.fields, out):
                        local[name][f].update(zip(batch.positions, arr.tolist()))
            t0 = time.perf_counter()
        gathered = self.ctx.gather((local, failed))
        merged = {name: {f: np.full(stop - start, np.nan) for f in self.fields} for name in names}
        all_failed = []
        for part_values, part_failed in gathered:
            all_failed += part_failed
            for name in names:
                for f in self.fields:
                    for pos, v in part_values[name][f].items():
                        merged[name][f][pos - start] = v
        return merged, sorted(all_failed)


def run_benchmark(
    dataset: str | Dataset,
    metrics: Sequence[str] | str = "all",
    out_dir: str | Path | None = None,
    options: RunOptions | None = None,
    *,
    data_root: str | Path | None = None,
    split: str = "val",
    download: bool = False,
    log=None,
) -> RunResult:
    """Score every sample of a dataset with every requested metric and store the results.

    Args:
        dataset: A dataset card name (``synthetic``, ``bapps``), a path in BAPPS layout or a
            folder CSV, or an opened ``Dataset``.
        metrics: Metric names, or ``"all"`` (metrics whose weights are unavailable are skipped
            with the reason; a named metric that cannot load is an error).
        out_dir: Run directory; default ``runs/<dataset>``. Finished results in it are reused.
        options: Device, dtype, batch size, ... (see :class:`RunOptions`).
        data_root, split, download: Passed to ``open_dataset``.
        log: Callable for terminal messages (default: print to stderr).

    Returns:
        The run directory, its manifest and the skipped metrics.

    Example:
        >>> result = run_benchmark("synthetic", ["l2", "lpips-alex"], "runs/demo")  # doctest: +SKIP
    """
    opts = options or RunOptions()
    if opts.dtype not in DTYPES:
        raise ValueError(f"dtype: {opts.dtype!r} is not one of {', '.join(DTYPES)}.")
    if opts.batch_size < 1 or opts.chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be positive integers.")
    ctx = dist_context()
    log = log or (lambda msg: print(f"iqa-bench: {msg}", file=sys.stderr) if ctx.is_main else None)
    t_start = time.perf_counter()
    ds = (
        dataset
        if isinstance(dataset, Dataset)
        else open_dataset(
            str(dataset),
            data_root=Path(data_root) if data_root else None,
            split=split,
            skip_bad=opts.skip_bad,
            download=download,
            progress=opts.progress,
        )
    )
    run_dir = Path(out_dir or Path("runs") / ds.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(opts.device, ctx)
    built, skipped = build_metrics(metrics, device, log)
    dataset_info = {
        "name": ds.name,
        "card_version": ds.version,
        "adapter": ds.card.adapter if ds.card else type(ds).__name__,
        "synthetic": bool(ds.synthetic),
        "root": str(ds.root),
        "split": ds.split,
        "mos_higher_is_better": getattr(ds, "mos_higher_is_better", None),
        "description": ds.card.description if ds.card else "",
        "source": ds.card.source if ds.card else "",
    }
    dataset_fp = {k: dataset_info[k] for k in ("name", "card_version", "synthetic", "split")}
    previous = store.read_manifest(run_dir) or {}
    manifest = {
        "schema": 1,
        "run_id": previous.get("run_id") or new_run_id(ds.name),
        "created": now_iso(),
        "package": package_info(),
        "environment": environment_info(),
        "dataset": dataset_info,
        "device": str(device),
        "dtype": opts.dtype,
        "batch_size": opts.batch_size,
        "resize": opts.resize,
        "world_size": ctx.world_size,
        "tasks": {},
        "metrics": {name: metric_record(m) for name, m in built.items()},
        "failed_samples": [],
        "bad_samples": [asdict(b) | {"path": str(b.path)} for b in ds.bad_samples],
        "timings": {},
    }
    manifest["metrics"].update({n: skipped_record(n, r) for n, r in skipped.items()})
    decode_s, cache_hits = 0.0, 0
    for task in ds.tasks():
        task_run = _TaskRun(ds, task, built, run_dir, opts, device, ctx, dataset_fp)
        subsets: dict[str, int] = {}
        for s in task_run.samples:
            subsets[s.subset] = subsets.get(s.subset, 0) + 1
        manifest["tasks"][task] = {"n": len(task_run.samples), "subsets": subsets}
        if ctx.is_main:
            store.write_judgments(run_dir, task, task_run.samples)
        task_run.run(log)
        decode_s += task_run.decode_s
        cache_hits += task_run.decode_cache_hits
        for name, seconds in task_run.timings.items():
            manifest["metrics"][name]["timings"][task] = round(seconds, 4)
        manifest["failed_samples"] += [
            {
                "task": task,
                "sample_id": task_run.samples[p].sample_id,
                "path": path,
                "reason": reason,
            }
            for p, (path, reason) in sorted(task_run.failed.items())
        ]
    manifest["timings"] = {
        "total_s": round(time.perf_counter() - t_start, 3),
        "decode_s": round(decode_s, 3),
        "decode_cache_chunks_reused": cache_hits,
    }
    if manifest["failed_samples"]:
        log(f"{len(manifest['failed_samples'])} samples failed and are recorded in the manifest")
    if ctx.is_main:
        store.write_manifest(run_dir, manifest)
    ctx.barrier()
    return RunResult(run_dir, manifest, skipped)
