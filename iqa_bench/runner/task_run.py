"""Scoring one task of a run: chunk by chunk, batch by batch, every metric, with resume.

Embeddings are shared between metrics with the same ``embedding_key`` within a batch, a batch
that runs out of device memory is halved until it fits, and each finished chunk is stored so a
killed run resumes. No statistics here (see ``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable

import numpy as np
import torch
from tqdm import tqdm

from .. import images
from ..device import DTYPES, default_workers
from ..errors import InputError
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

#: What a device raises when an allocation fails: ``torch.OutOfMemoryError`` (any device) in
#: newer torch, ``torch.cuda.OutOfMemoryError`` in older (the same class where both exist).
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


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


def _score(
    metric: Metric, tensors: dict[str, torch.Tensor], task: str, autocast, shared, layers: bool
) -> list[torch.Tensor]:
    """One score array per compared pair of the task (a 2AFC reference is embedded once), then
    with ``layers`` one (N, L) array of per-layer distances per pair.

    A task's pairs name the reference first; an asymmetric metric takes it as ``y``.
    """
    pairs = task_spec(task).pairs
    if not metric.symmetric:
        pairs = tuple((b, a) for a, b in pairs)
    with autocast():
        embedded = [
            (shared.embed(metric, tensors, a), shared.embed(metric, tensors, b)) for a, b in pairs
        ]
        out = [metric.compare(ea, eb) for ea, eb in embedded]
        if layers:  # the scores stay compare()'s own: the layers' sum differs in the last bits
            out += [metric.compare_layers(ea, eb) for ea, eb in embedded]
        return out


def _score_with_backoff(metric, tensors, task, autocast, shared, layers) -> list[torch.Tensor]:
    """Score a batch, halving it on out-of-memory until it fits (one sample must fit).

    Scores stay on the device (float64), so a GPU is not synchronised once per metric.
    """
    n = next(iter(tensors.values())).shape[0]
    try:
        out = _score(metric, tensors, task, autocast, shared, layers)
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
    first, second = (
        _score_with_backoff(metric, p, task, autocast, shared.fresh(), layers) for p in parts
    )
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


def _size_problem(metric: Metric, shape: tuple[int, ...], resize: int | None) -> str | None:
    """Why ``metric`` cannot score images of ``shape`` (B, H, W, 3) as it sees them, else None."""
    h, w = (resize, resize) if resize else shape[1:3]
    if min(h, w) >= metric.min_size:
        return None
    return (
        f"images of {h}x{w} are smaller than {metric.name!r} accepts "
        f"(at least {metric.min_size}x{metric.min_size})"
    )


def numbers_identity(card: dict, library_version: str | None) -> dict:
    """A metric's card identity, with the version of the library that computes a bridged metric:
    another release of piq, torchmetrics or pyiqa may change its numbers with no change of card.

    Example:
        >>> numbers_identity({"type": "piq"}, "0.8.0"), numbers_identity({"type": "ssim"}, None)
        ({'type': 'piq', 'library_version': '0.8.0'}, {'type': 'ssim'})
    """
    return {**card, "library_version": library_version} if library_version else card


class TaskRun:
    """Scores one task for the metrics that still need it, chunk by chunk.

    Finished scores are reused per chunk when the chunk's fingerprint (metric, dataset, sample
    ids and its image files' stamps) matches, from chunk files of a killed run or from the
    finished file; chunks holding failed samples are scored again on every run.
    """

    def __init__(self, ds, task, metrics, run_dir, opts, device, ctx, dataset_fp):
        self.task, self.metrics, self.run_dir, self.opts = task, metrics, run_dir, opts
        self.device, self.ctx, self.dataset_fp = device, ctx, dataset_fp
        self.samples = ds.samples(task)
        self.load_size = ds.load_size
        self.ids = [s.sample_id for s in self.samples]
        self.ids_digest = store.ids_digest(self.ids)
        self.fields = store.score_fields(task)
        #: Taps of the metrics whose per-layer distances are stored (``RunOptions.per_layer``).
        self.layer_taps = {
            name: tuple(m.taps)
            for name, m in metrics.items()
            if opts.per_layer and hasattr(m, "compare_layers")
        }
        dtype = DTYPES[opts.dtype]
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
        )
        # Every image file's stamp decides the numbers as much as the metric does: an edited
        # image or another folder with the same sample ids must not reuse earlier scores.
        images = image_fields(task)
        stamps = store.file_stamps(getattr(s, f) for s in self.samples for f in images)
        size, k = opts.chunk_size, len(images)
        self.starts = list(range(0, len(self.samples), size))
        self.files_digest = store.stamps_digest(stamps)
        chunk_digests = [store.stamps_digest(stamps[a * k : (a + size) * k]) for a in self.starts]
        self.final_fps, self.chunk_fps = {}, {}
        for name, m in metrics.items():
            card = numbers_identity(m.card.identity(), getattr(m, "library_version", None))
            base = self.scores_fingerprint(name, card, m.weight_hashes)
            self.final_fps[name] = self.final_fingerprint(name, card, m.weight_hashes)
            self.chunk_fps[name] = [f"{base}:{i}:{size}:{d}" for i, d in enumerate(chunk_digests)]
        self.timings = {name: 0.0 for name in metrics}
        self.providers = feature_providers(metrics.values())
        self.decode_s = 0.0  # waiting for decoded batches
        self.decode_cpu_s = 0.0  # CPU time of decoding threads and of the decoded cache
        self.decode_cache_hits = 0
        #: (position, path, reason) -> metrics whose score of that sample is NaN for it.
        self.failed: dict[tuple[int, str, str], list[str]] = {}

    def fields_of(self, name: str) -> tuple[str, ...]:
        """The arrays stored for metric ``name``: the task's scores, then any per-layer ones."""
        if name not in self.layer_taps:
            return self.fields
        return self.fields + tuple(store.layer_field(f) for f in self.fields)

    def _empty(self, name: str, n: int) -> dict[str, np.ndarray]:
        """NaN arrays for ``n`` samples of each of the metric's fields ((n, L) for layers)."""
        width = len(self.layer_taps.get(name, ()))
        return {
            f: np.full((n, width) if f not in self.fields else n, np.nan)
            for f in self.fields_of(name)
        }

    def scores_fingerprint(self, name: str, card: dict, weights: dict) -> str:
        """What decides a metric's numbers on this task, except the image files' stamps (and,
        with stored per-layer distances, their taps: only then, so other fingerprints stay)."""
        layers = {"per_layer": list(self.layer_taps[name])} if name in self.layer_taps else {}
        return store.fingerprint(
            {
                **layers,
                "metric": name,
                "card": card,
                "weights": weights,
                "task": self.task,
                "dataset": self.dataset_fp,
                "ids": self.ids_digest,
                "dtype": self.opts.dtype,
                "resize": self.opts.resize,
                "decoding": images.DECODING_VERSION,
            }
        )

    def final_fingerprint(self, name: str, card: dict, weights: dict) -> str:
        """Fingerprint of a metric's finished scores file: its numbers' inputs and the files'."""
        return store.fingerprint(
            {"scores": self.scores_fingerprint(name, card, weights), "files": self.files_digest}
        )

    def add_failures(self, name: str, failed: Iterable) -> None:
        """Record (position, path, reason) items as failed samples of metric ``name``."""
        for pos, path, reason in failed:
            self.failed.setdefault((int(pos), str(path), str(reason)), []).append(name)

    def run(self, log) -> None:
        pending: dict[str, dict | None] = {}
        for name in self.metrics:
            final = (
                store.load_final(self.run_dir, name, self.task, fields=self.fields_of(name))
                if self.opts.reuse
                else None
            )
            if final is not None and final["fingerprint"] == self.final_fps[name]:
                if not final["failed"]:
                    log(f"{self.task}: reusing finished scores of {name}")
                    continue
                log(f"{self.task}: {name}: trying the {len(final['failed'])} failed samples again")
            pending[name] = final
        if not pending:
            return
        n = len(self.samples)
        values = {name: self._empty(name, n) for name in pending}
        failed: dict[str, list] = {name: [] for name in pending}
        bar = tqdm(
            total=n,
            desc=f"{self.task} ({len(pending)} metrics)",
            unit="sample",
            disable=not self.opts.progress or not self.ctx.is_main,
            file=sys.stderr,
        )
        for index, start in enumerate(self.starts):
            stop = min(start + self.opts.chunk_size, n)
            todo = [
                name
                for name, final in pending.items()
                if not self._reuse_chunk(name, index, start, stop, final, values[name])
            ]
            if todo:
                chunk_values, chunk_failed = self._score_chunk(todo, start, stop)
                for name in todo:
                    for f in self.fields_of(name):
                        values[name][f][start:stop] = chunk_values[name][f]
                    failed[name] += chunk_failed[name]
                    if self.ctx.is_main:
                        store.save_chunk(
                            self.run_dir,
                            name,
                            self.task,
                            index,
                            self.chunk_fps[name][index],
                            chunk_values[name],
                            chunk_failed[name],
                        )
                self.ctx.barrier()
            bar.update(stop - start)
        bar.close()
        for name in pending:
            self.add_failures(name, failed[name])
            if self.ctx.is_main:
                store.save_final(
                    self.run_dir,
                    name,
                    self.task,
                    self.final_fps[name],
                    self.ids,
                    values[name],
                    self.chunk_fps[name],
                    sorted(failed[name]),
                    self.layer_taps.get(name),
                )

    def _reuse_chunk(
        self, name: str, index: int, start: int, stop: int, final: dict | None, values: dict
    ) -> bool:
        """Fill ``values[start:stop]`` from a chunk file or the finished file if the chunk's
        fingerprint matches and none of its samples failed; False when it must be scored."""
        if not self.opts.reuse:
            return False
        fp = self.chunk_fps[name][index]
        fields = self.fields_of(name)
        found = store.load_chunk(self.run_dir, name, self.task, index, fp, fields)
        if found is not None and not found["failed"]:
            for f in fields:
                values[f][start:stop] = found[f]
            return True
        if (
            final is None
            or final["chunk_fps"][index : index + 1] != [fp]
            or any(start <= pos < stop for pos, *_ in final["failed"])
            or any(f not in final for f in fields)
        ):
            return False
        for f in fields:
            values[f][start:stop] = final[f][start:stop]
        return True

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

    def _score_batch(self, batch: DecodedBatch, names, local: dict, failed: dict) -> None:
        """Score one decoded batch with every metric in ``names`` into ``local``.

        A metric that cannot take the batch's image size records its samples in
        ``failed[name]`` under ``skip_bad`` or when it ``excludes_small_images`` (they stay NaN
        for it) and stops the run otherwise.
        """
        if not batch.positions:
            return
        tensors = {k: to_device(v, self.device, self.opts.resize) for k, v in batch.images.items()}
        shared = SharedEmbeddings(self.providers, self.opts.max_batch_pixels)
        release = shared.release_plan([self.metrics[name] for name in names])
        first = image_fields(self.task)[0]
        scored = []
        for name, done_with in zip(names, release):
            metric = self.metrics[name]
            problem = _size_problem(metric, batch.images[first].shape, self.opts.resize)
            if problem is not None:
                paths = [str(getattr(self.samples[p], first)) for p in batch.positions]
                if not (self.opts.skip_bad or metric.excludes_small_images):
                    raise InputError(
                        f"sample {self.samples[batch.positions[0]].sample_id} ({paths[0]}): "
                        f"{problem}; drop the metric, resize the data (--resize), or use "
                        "--skip-bad to record such samples as failed for this metric and go on."
                    )
                failed[name] += [[p, path, problem] for p, path in zip(batch.positions, paths)]
                shared.release(done_with)
                continue
            timer = _MetricTimer(self.device)
            with torch.inference_mode():
                layers = name in self.layer_taps
                out = _score_with_backoff(metric, tensors, self.task, self.autocast, shared, layers)
            timer.stop()
            shared.release(done_with)
            scored.append((name, out, timer))
        with torch.inference_mode():
            for name, out, timer in scored:  # the first copy waits for the whole batch, once
                arrays = [o.cpu().numpy() for o in out]
                self.timings[name] += timer.seconds()
                for f, arr in zip(self.fields_of(name), arrays, strict=True):
                    local[name][f].update(zip(batch.positions, arr.tolist()))

    def _score_chunk(self, names, start, stop) -> tuple[dict, dict[str, list]]:
        """Scores of ``names`` on samples ``start:stop`` (NaN where failed) and, per metric,
        the (position, path, reason) of its failed samples, from every rank."""
        positions = list(range(start + self.ctx.rank, stop, self.ctx.world_size))
        local = {name: {f: {} for f in self.fields_of(name)} for name in names}
        failed: dict[str, list] = {name: [] for name in names}
        t0 = time.perf_counter()
        for decoded in self._batches(positions):
            self.decode_s += time.perf_counter() - t0
            self.decode_cpu_s += decoded.decode_cpu_s
            for batch in split_by_pixels(decoded, self.opts.max_batch_pixels, self.opts.resize):
                for name in names:  # undecodable samples fail for every metric
                    failed[name] += [list(f) for f in batch.failed]
                self._score_batch(batch, names, local, failed)
            t0 = time.perf_counter()
        gathered = self.ctx.gather((local, failed))
        merged = {name: self._empty(name, stop - start) for name in names}
        all_failed: dict[str, list] = {name: [] for name in names}
        for part_values, part_failed in gathered:
            for name in names:
                all_failed[name] += part_failed[name]
                for f in self.fields_of(name):
                    for pos, v in part_values[name][f].items():
                        merged[name][f][pos - start] = v
        return merged, {name: sorted(items) for name, items in all_failed.items()}
