"""Frozen-trunk features of 2AFC triplets, computed once and cached on disk.

For every triplet, the trunk (an ``lpips=False`` LPIPS metric: same trunk, taps and input
normalisation as the metric the trained weights will be used in) gives unit-normalised features of
``ref``, ``p0`` and ``p1``; what training needs of them is, per tapped layer and channel, the spatial
mean of the squared difference: ``x0 = mean_hw((f_ref - f_p0)^2)`` and ``x1`` likewise, one float32
vector of ``sum_l C_l`` numbers each (alex: 1152). The LPIPS distance is then ``x @ w``.

Cache layout (``<cache>/features/<key>/``): ``x0.npy``, ``x1.npy`` (float32, memory-mapped on read),
``sample_ids.npy`` and ``meta.json``. The key hashes the backbone, taps, input normalisation, trunk
weights SHA-256, dataset name/card version/root/split, resize, and the path, size and modification
time of every image, so any change computes the features again. Random trunks (``pretrained:
false``) cannot be rebuilt, so their features are kept in memory only.

Example:
    >>> metric = feature_metric("alex", None, "0.1", pretrained=True)  # doctest: +SKIP
    >>> feats = triplet_features(metric, open_dataset("bapps", split="train"))  # doctest: +SKIP
    >>> feats.x0.shape  # doctest: +SKIP
    (151400, 1152)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..config import MetricCard
from ..errors import InputError
from ..metrics import LPIPS
from ..metrics.factory import build_metric
from ..runner.batches import decoded_batches, to_device
from ..settings import cache_dir

FEATURES_FORMAT = 1


@dataclass
class TripletFeatures:
    """Per-channel mean squared feature differences of every triplet of a split.

    Attributes:
        x0, x1: (N, sum C) float32 arrays for (ref, p0) and (ref, p1) (memory-mapped when cached).
        h: (N,) fraction of people preferring ``p1``.
        sample_ids: Sample ids, in the dataset's order.
        channels: Channels per tapped layer.
        key: Cache key (None when kept in memory only).
        cached: True when read from the disk cache rather than computed.
        seconds: Time spent computing or reading them.
    """

    x0: np.ndarray
    x1: np.ndarray
    h: np.ndarray
    sample_ids: list[str]
    channels: list[int]
    key: str | None
    cached: bool
    seconds: float


def feature_metric(
    backbone: str,
    taps: tuple[str, ...] | None,
    version: str,
    pretrained: bool,
    device: str | torch.device | None = None,
) -> LPIPS:
    """The ``lpips=False`` metric whose trunk and normalisation the trained weights will sit on."""
    params = {"backbone": backbone, "version": version, "lpips": False, "pretrained": pretrained}
    if taps:
        params["taps"] = list(taps)
    card = MetricCard(
        name=f"train-lin-trunk:{backbone}",
        version=1,
        type="lpips",
        group="deep-baseline",
        description="trunk used by train-lin",
        params=params,
    )
    metric = build_metric(card, device)
    if not isinstance(metric, LPIPS):  # pragma: no cover - the card says type lpips
        raise TypeError("train-lin needs an LPIPS metric")
    metric.check_inputs = False
    return metric


def pair_means(
    ex: Sequence[torch.Tensor], ey: Sequence[torch.Tensor], dropout: float = 0.0
) -> torch.Tensor:
    """(B, sum C) spatial means of squared differences of two embedded batches (all layers).

    With ``dropout``, the per-position differences are dropped (and rescaled) before the mean, as
    the reference's ``NetLinLayer`` does before its 1x1 convolution.
    """
    parts = []
    for fx, fy in zip(ex, ey):
        diff = (fx - fy) ** 2
        if dropout:
            diff = F.dropout(diff, p=dropout, training=True)
        parts.append(diff.mean(dim=(2, 3)))
    return torch.cat(parts, dim=1)


def batch_means(
    metric: LPIPS, images: dict[str, torch.Tensor], dropout: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, x1)`` of one batch of ``ref``/``p0``/``p1`` images in [0, 1] (trunk frozen)."""
    with torch.inference_mode():
        e_ref, e0, e1 = (metric.embed(images[k]) for k in ("ref", "p0", "p1"))
        return pair_means(e_ref, e0, dropout), pair_means(e_ref, e1, dropout)


def _dataset_identity(ds, samples: Sequence) -> dict:
    digest = hashlib.sha256()
    for s in samples:
        for path in (s.ref, s.p0, s.p1):
            st = Path(path).stat()
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    identity = {
        "name": ds.name,
        "card_version": ds.version,
        "root": str(ds.root),
        "split": ds.split,
        "n": len(samples),
        "files": digest.hexdigest(),
    }
    if ds.load_size is not None:  # absent when None, so earlier caches keep their keys
        identity["load_size"] = ds.load_size
    return identity


def features_key(metric: LPIPS, ds, samples: Sequence, resize: int | None) -> str | None:
    """Cache key of a metric's features of a dataset split (None for random trunks)."""
    trunk_hash = metric.weight_hashes.get("trunk")
    if trunk_hash is None:
        return None
    blob = {
        "format": FEATURES_FORMAT,
        "backbone": metric.config.backbone,
        "taps": list(metric.trunk.taps),
        "normalisation": metric.embedding_key[3],
        "trunk": trunk_hash,
        "dataset": _dataset_identity(ds, samples),
        "resize": resize,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]


def compute_means(
    metric: LPIPS,
    samples: Sequence,
    batch_size: int = 64,
    workers: int = 2,
    resize: int | None = None,
    progress: bool = True,
    desc: str = "features",
    load_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, sum C) float32 ``x0`` and ``x1`` of every sample, in order (``load_size`` as
    ``Dataset.load_size``)."""
    n = len(samples)
    channels = metric.trunk.channels()
    x0 = np.empty((n, sum(channels)), dtype=np.float32)
    x1 = np.empty_like(x0)
    device = metric.device
    bar = tqdm(total=n, desc=desc, unit="triplet", disable=not progress, file=sys.stderr)
    positions = list(range(n))
    for batch in decoded_batches(samples, positions, "2afc", batch_size, False, workers, load_size):
        if not batch.positions:
            continue
        tensors = {k: to_device(v, device, resize) for k, v in batch.images.items()}
        m0, m1 = batch_means(metric, tensors)
        x0[batch.positions] = m0.float().cpu().numpy()
        x1[batch.positions] = m1.float().cpu().numpy()
        bar.update(len(batch.positions))
    bar.close()
    return x0, x1


def triplet_features(
    metric: LPIPS,
    ds,
    mode: str = "disk",
    cache_root: str | Path | None = None,
    batch_size: int = 64,
    workers: int = 2,
    resize: int | None = None,
    progress: bool = True,
    log=None,
) -> TripletFeatures:
    """Features of every 2AFC triplet of ``ds`` (its chosen split), from the cache when possible.

    Args:
        metric: From :func:`feature_metric`.
        ds: An opened dataset (``open_dataset(..., split=...)``).
        mode: ``disk`` (compute once, store, reuse across runs) or ``memory`` (this run only).
        cache_root: Folder of the cache (default ``<iqa-bench cache>/features``).
        batch_size, workers, resize, progress: Trunk batch size, decoding threads, optional
            resizing (as ``run --resize``), progress bar.
        log: Callable for messages.

    Raises:
        InputError: A split without 2AFC triplets, or an unknown ``mode``.
    """
    if mode not in ("disk", "memory"):
        raise InputError(f"features: mode {mode!r} is not one of 'disk', 'memory'.")
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    samples = ds.samples("2afc") if "2afc" in ds.tasks() else []
    if not samples:
        raise InputError(
            f"dataset {ds.name!r} split {ds.split!r} has no 2AFC triplets to train on; check the "
            "split (train-lin reads 2afc/<split>/) and the data root."
        )
    ids = [s.sample_id for s in samples]
    h = np.array([s.h for s in samples], dtype=np.float32)
    channels = metric.trunk.channels()
    key = features_key(metric, ds, samples, resize) if mode == "disk" else None
    folder = Path(cache_root or cache_dir() / "features") / key if key else None
    if folder is not None and (folder / "meta.json").is_file():
        x0 = np.load(folder / "x0.npy", mmap_mode="c")
        x1 = np.load(folder / "x1.npy", mmap_mode="c")
        if (
            x0.shape == (len(ids), sum(channels))
            and list(np.load(folder / "sample_ids.npy")) == ids
        ):
            log(f"features of {ds.name}/{ds.split}: reusing the cache {folder}")
            return TripletFeatures(x0, x1, h, ids, channels, key, True, time.perf_counter() - t0)
    if key is None and mode == "disk":
        log("features: random trunk (pretrained: false), kept in memory only")
    desc = f"features {ds.name}/{ds.split}"
    x0, x1 = compute_means(
        metric, samples, batch_size, workers, resize, progress, desc, ds.load_size
    )
    if folder is not None:
        _write_cache(folder, x0, x1, ids, channels, metric)
        log(f"features of {ds.name}/{ds.split}: cached in {folder}")
    return TripletFeatures(x0, x1, h, ids, channels, key, False, time.perf_counter() - t0)


def _write_cache(folder: Path, x0, x1, ids, channels, metric: LPIPS) -> None:
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "x0.npy", x0)
    np.save(tmp / "x1.npy", x1)
    np.save(tmp / "sample_ids.npy", np.array(ids))
    meta = {
        "format": FEATURES_FORMAT,
        "backbone": metric.config.backbone,
        "taps": list(metric.trunk.taps),
        "channels": channels,
        "trunk_sha256": metric.weight_hashes.get("trunk"),
        "n": len(ids),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
