"""Scoring one task of a run: chunk by chunk, batch by batch, every metric, with resume.

Embeddings are shared between metrics with the same ``embedding_key`` within a batch, a batch
that runs out of device memory is halved until it fits, and each finished chunk is stored so a
killed run resumes. No statistics here (see ``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from ..metrics import Metric
from ..tasks import task_spec
from ..weights import cache_dir
from . import store
from .batches import (
    DecodedBatch,
    batches_from_arrays,
    decoded_batches,
    image_fields,
    merge_batches,
    split_by_pixels,
    to_device,
)
from .decode_cache import DecodeCache


def default_workers() -> int:
    """Decoding threads when none are given: one per core, at least 2 and at most 8."""
    return max(2, min(8, os.cpu_count() or 2))


#: What a device raises when an allocation fails: ``torch.OutOfMemoryError`` (any device) in
#: newer torch, ``torch.cuda.OutOfMemoryError`` in older (the same class where both exist).
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

#: ``--dtype`` -> autocast dtype (None: no autocast). ``tf32`` differs from ``fp32`` only on CUDA.
DTYPES = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_autocast(device: torch.device, dtype: str) -> None:
    """Autocast to ``dtype`` must take effect on ``device``, or the run would be mislabelled.

    Where torch does not support a dtype on a device it turns autocast off with only a warning
    (as older releases did for float16 on CPU; 2.2 autocasts to it), and the run would score in
    float32 under an fp16 label; on CUDA, bf16 on a GPU without it raises. A tiny matrix product
    under the same context shows what torch really does.

    Raises:
        ValueError: Naming the dtype, the device, the torch version and the fix.

    Example:
        >>> check_autocast(torch.device("cpu"), "bf16")
    """
    fast = DTYPES[dtype]
    if fast is None:
        return
    fix = f"use --dtype fp32 or {'bf16' if dtype == 'fp16' else 'fp16'}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the disabling warning becomes this error instead
            with torch.autocast(device.type, dtype=fast):
                probe = torch.ones(2, 2, device=device)
                got = (probe @ probe).dtype
    except RuntimeError as err:  # e.g. bf16 asked of a CUDA GPU without it
        raise ValueError(
            f"dtype: {dtype} autocast is not available on {device} (torch {torch.__version__}: "
            f"{err}); {fix}."
        ) from err
    if got != fast:
        raise ValueError(
            f"dtype: torch {torch.__version__} does not autocast to {dtype} on {device} (it would "
            f"silently compute in {str(got).removeprefix('torch.')}); {fix}, or a newer torch."
        )


@contextlib.contextmanager
def cuda_float32_precision(dtype: str):
    """Float32 convolutions and matrix products on CUDA: IEEE float32 unless ``dtype`` is tf32.

    PyTorch lets cuDNN run float32 convolutions in TF32 (10-bit mantissa) by default on Ampere and
    newer GPUs, which shifts LPIPS values by about 1e-3 relative; here that is an explicit choice.
    The previous settings are restored on exit.
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.allow_tf32 = matmul.allow_tf32 = dtype == "tf32"
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def feature_providers(metrics: Iterable[Metric]) -> dict[tuple, Metric]:
    """For each trunk (``features_key``), the metric whose taps cover every metric on it.

    Its :meth:`~iqa_bench.metrics.Metric.features` serve them all, e.g. ``lpips-vgg`` (five VGG16
    taps) also serves ``vgg16-conv4_3`` (relu4_3, one of them): one trunk pass per image instead
    of two. Trunks where no single metric taps everything the others need are left out.
    """
    by_key: dict[tuple, list[Metric]] = {}
    for metric in metrics:
        if metric.features_key is not None:
            by_key.setdefault(metric.features_key, []).append(metric)
    providers = {}
    for key, group in by_key.items():
        widest = max(group, key=lambda m: len(m.taps))
        if all(set(m.taps) <= set(widest.taps) for m in group):
            providers[key] = widest
    return providers


class SharedEmbeddings:
    """One batch's trunk features and embeddings, computed once and shared between metrics.

    Embeddings are shared between metrics with equal ``embedding_key`` (``lpips-alex`` and
    ``lpips-alex-baseline``), raw trunk features between metrics with equal ``features_key``
    through the trunk's provider (see :func:`feature_providers`).
    """

    def __init__(self, providers: dict[tuple, Metric], max_pixels: int | None = None) -> None:
        self.providers = providers
        self.max_pixels = max_pixels
        self.cache: dict = {}

    def fresh(self) -> SharedEmbeddings:
        return SharedEmbeddings(self.providers, self.max_pixels)

    def clear(self) -> None:
        self.cache.clear()

    def _trunk_pass(self, provider: Metric, tensors: dict[str, torch.Tensor], field: str) -> None:
        """Raw features of ``field`` and, in the same trunk pass, of the batch's other fields.

        One pass over all image fields (a 2AFC batch's ref, p0 and p1 concatenated) runs the
        convolutions on a batch three times as large, which uses CPU cores and GPUs better than
        three passes; it is done while the fields together stay within ``max_pixels`` (the
        ``--max-batch-pixels`` budget), else field by field.
        """
        key = provider.features_key
        fields = [f for f in tensors if ("features", key, f) not in self.cache]
        parts = [tensors[f] for f in fields]
        pixels = sum(t.shape[0] * t.shape[-2] * t.shape[-1] for t in parts)
        if (
            len(fields) < 2
            or len({t.shape[1:] for t in parts}) != 1
            or (self.max_pixels is not None and pixels > self.max_pixels)
        ):
            self.cache["features", key, field] = provider.features(tensors[field])
            return
        features = provider.features(torch.cat(parts))
        sizes = [t.shape[0] for t in parts]
        pieces = {tap: value.split(sizes) for tap, value in features.items()}
        for i, f in enumerate(fields):
            self.cache["features", key, f] = {tap: p[i] for tap, p in pieces.items()}

    def release_plan(self, metrics: list[Metric]) -> list[list[tuple]]:
        """For each metric in scoring order, the shared entries no later metric needs.

        Releasing them right after that metric bounds what a batch holds to the embeddings still
        to be used (large images: a float64 Lab image or SSIM statistics of a 4-megapixel batch
        are hundreds of MB each).
        """
        last: dict[tuple, int] = {}
        for i, metric in enumerate(metrics):
            if metric.embedding_key is not None:
                last["embedding", metric.embedding_key] = i
            if metric.features_key in self.providers:
                last["features", metric.features_key] = i
        plan: list[list[tuple]] = [[] for _ in metrics]
        for key, i in last.items():
            plan[i].append(key)
        return plan

    def release(self, keys: list[tuple]) -> None:
        """Drop the entries of ``keys`` (from :meth:`release_plan`) for every image field."""
        # Entries are keyed (kind, key, field) with kind "embedding" or "features".
        for stale in [k for k in self.cache if k[:2] in keys]:
            del self.cache[stale]

    def embed(self, metric: Metric, tensors: dict[str, torch.Tensor], field: str):
        key = metric.embedding_key
        if key is not None and ("embedding", key, field) in self.cache:
            return self.cache["embedding", key, field]
        provider = self.providers.get(metric.features_key)
        if provider is None:
            embedding = metric.embed(tensors[field])
        else:
            fkey = ("features", metric.features_key, field)
            if fkey not in self.cache:
                self._trunk_pass(provider, tensors, field)
            embedding = metric.embed_features(self.cache[fkey])
        if key is not None:
            self.cache["embedding", key, field] = embedding
        return embedding


def _score(metric: Metric, tensors: dict[str, torch.Tensor], task: str, autocast, shared):
    """One score array per compared pair of the task (a 2AFC reference is embedded once)."""
    with autocast():
        return [
            metric.compare(shared.embed(metric, tensors, a), shared.embed(metric, tensors, b))
            for a, b in task_spec(task).pairs
        ]


def _score_with_backoff(metric, tensors, task, autocast, shared) -> list[torch.Tensor]:
    """Score a batch, halving it on out-of-memory until it fits (one sample must fit).

    Scores stay on the device (float64), so a GPU is not synchronised once per metric.
    """
    n = next(iter(tensors.values())).shape[0]
    try:
        out = _score(metric, tensors, task, autocast, shared)
        return [o.detach().double() for o in out]
    except OUT_OF_MEMORY:
        if n == 1:
            raise
    # Retried only after the except block: until it ends, the exception's traceback keeps the
    # failed attempt's frames, and with them its activations, allocated on the device.
    shared.clear()  # shared embeddings of the whole batch would not fit beside the halves
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    half = n // 2
    parts = [
        {k: v[:half] for k, v in tensors.items()},
        {k: v[half:] for k, v in tensors.items()},
    ]
    first, second = (_score_with_backoff(metric, p, task, autocast, shared.fresh()) for p in parts)
    return [torch.cat([a, b]) for a, b in zip(first, second)]


class _MetricTimer:
    """One metric's time on one batch without synchronising the device per metric.

    On CPU the wall time; on CUDA the device time between two events recorded on the stream
    around the metric's work, read once the batch's scores have been copied back (that copy is
    the batch's only synchronisation).
    """

    def __init__(self, device: torch.device) -> None:
        self.events = None
        if device.type == "cuda":
            # On the metric's device: a bare record() uses the current device's stream, which
            # is another GPU's under --device cuda:1.
            self.stream = torch.cuda.current_stream(device)
            self.events = tuple(torch.cuda.Event(enable_timing=True) for _ in range(2))
            self.events[0].record(self.stream)
        else:
            self.wall = time.perf_counter()

    def stop(self) -> None:
        if self.events is not None:
            self.events[1].record(self.stream)
        else:
            self.wall = time.perf_counter() - self.wall

    def seconds(self) -> float:
        if self.events is None:
            return self.wall
        self.events[1].synchronize()
        return self.events[0].elapsed_time(self.events[1]) / 1000.0


def _check_size(metric: Metric, shape: tuple[int, ...], sample_id: str) -> None:
    h, w = shape[1:3]
    if min(h, w) < metric.min_size:
        raise ValueError(
            f"sample {sample_id}: images of {h}x{w} are smaller than {metric.name!r} accepts "
            f"(at least {metric.min_size}x{metric.min_size}); drop the metric or resize the data."
        )


class TaskRun:
    """Scores one task for the metrics that still need it, chunk by chunk."""

    def __init__(self, ds, task, metrics, run_dir, opts, device, ctx, dataset_fp):
        self.task, self.metrics, self.run_dir, self.opts = task, metrics, run_dir, opts
        self.device, self.ctx = device, ctx
        self.samples = ds.samples(task)
        self.load_size = ds.load_size
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
        self.providers = feature_providers(metrics.values())
        self.decode_s = 0.0  # waiting for decoded batches
        self.decode_cpu_s = 0.0  # CPU time of decoding threads and of the decoded cache
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
        key = cache.key(self.task, self.samples, positions, fields, self.load_size) if cache else ""
        cpu_start = time.thread_time()
        hit = cache.load(key) if cache else None
        self.decode_cpu_s += time.thread_time() - cpu_start
        if hit is not None:
            self.decode_cache_hits += 1
            yield from batches_from_arrays(*hit, self.opts.batch_size)
            return
        kept: list[DecodedBatch] = []
        batches = decoded_batches(
            self.samples,
            positions,
            self.task,
            self.opts.batch_size,
            self.opts.skip_bad,
            self.opts.workers or default_workers(),
            self.load_size,
        )
        overlap = self.opts.overlap_decoding
        if overlap is False or (overlap is None and self.device.type == "cpu"):
            # On CPU decoding and scoring share the cores: overlapped, the decoding threads take
            # cores from PyTorch's threads, which then wait on each other. The chunk is decoded
            # first, then scored; it is held whole in `kept` either way.
            batches = list(batches)
        for batch in batches:
            kept.append(batch)
            yield batch
        if cache is not None:
            cpu_start = time.thread_time()
            merged = merge_batches(kept)
            if merged is not None:
                cache.save(key, *merged)
            self.decode_cpu_s += time.thread_time() - cpu_start

    def _score_batch(self, batch: DecodedBatch, names, local: dict) -> None:
        """Score one decoded batch with every metric in ``names`` into ``local``."""
        if not batch.positions:
            return
        tensors = {k: to_device(v, self.device, self.opts.resize) for k, v in batch.images.items()}
        shared = SharedEmbeddings(self.providers, self.opts.max_batch_pixels)
        release = shared.release_plan([self.metrics[name] for name in names])
        scored = []
        for name, done_with in zip(names, release):
            metric = self.metrics[name]
            _check_size(
                metric,
                batch.images[image_fields(self.task)[0]].shape,
                self.samples[batch.positions[0]].sample_id,
            )
            timer = _MetricTimer(self.device)
            with torch.inference_mode():
                out = _score_with_backoff(metric, tensors, self.task, self.autocast, shared)
            timer.stop()
            shared.release(done_with)
            scored.append((name, out, timer))
        with torch.inference_mode():
            for name, out, timer in scored:  # the first copy waits for the whole batch, once
                arrays = [o.cpu().numpy() for o in out]
                self.timings[name] += timer.seconds()
                for f, arr in zip(self.fields, arrays):
                    local[name][f].update(zip(batch.positions, arr.tolist()))

    def _score_chunk(self, names, start, stop):
        positions = list(range(start + self.ctx.rank, stop, self.ctx.world_size))
        local = {name: {f: {} for f in self.fields} for name in names}
        failed = []
        t0 = time.perf_counter()
        for decoded in self._batches(positions):
            self.decode_s += time.perf_counter() - t0
            self.decode_cpu_s += decoded.decode_cpu_s
            for batch in split_by_pixels(decoded, self.opts.max_batch_pixels, self.opts.resize):
                failed += batch.failed
                self._score_batch(batch, names, local)
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
