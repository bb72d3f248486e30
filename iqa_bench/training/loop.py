"""The ``train-lin`` loop: linear weights (and, in modes ``tune``/``scratch``, the trunk), with
checkpoints and a manifest.

Mode ``lin`` trains on frozen trunk features (cached on disk by default); ``tune`` and ``scratch``
change the trunk every step, so they run it on every batch and never use the feature cache, and
their held-out split is scored with fresh trunk passes after every epoch.

Example:
    >>> from iqa_bench.training import TrainLinConfig, train_lin
    >>> cfg = TrainLinConfig(backbone="alex", dataset="bapps", split="train")
    >>> result = train_lin(cfg, "runs/alex-lin.pth")  # doctest: +SKIP
    >>> result.outputs.card  # doctest: +SKIP
    PosixPath('/.../runs/alex-lin.yaml')
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..datasets import open_dataset
from ..device import cuda_float32_precision
from ..errors import InputError
from ..runner.batches import decoded_batches, to_device
from ..runner.provenance import environment_info, now_iso, package_info
from ..settings import cache_dir
from ..weights import sha256_file
from .config import TrainLinConfig
from .features import TripletFeatures, batch_means, feature_metric, triplet_features
from .model import LinTrainer, learning_rate
from .outputs import (
    TrainOutputs,
    clear_checkpoints,
    load_checkpoint,
    save_card,
    save_checkpoint,
    save_manifest,
    save_weights,
)
from .tune import TrunkOptions, TrunkTrainer

DEVIATION_NO_DROPOUT = (
    "no dropout: cached features are spatial means, so the reference's dropout (p=0.5 on "
    "per-position differences) cannot apply; train with --features none --dropout 0.5 for it"
)
DEVIATION_TRUNK_CLAMP = (
    "the reference clamps every 1x1 convolution's weights to >= 0 after each step, the trunk's "
    "own included; iqa-bench clamps only the linear layers"
)
TRUNK_FEATURES_NOTE = (
    "no feature cache: the trunk changes every step, so it runs on every batch "
    "(mode {mode}); held-out features are recomputed after every epoch"
)


@dataclass
class TrainResult:
    """What :func:`train_lin` produced."""

    outputs: TrainOutputs
    manifest: dict
    lin_weights: list[torch.Tensor]


def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled sample order of an epoch (a pure function of seed and epoch: resumable)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).numpy()


def _twoafc(x0: torch.Tensor, x1: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> float:
    d0, d1 = x0 @ w, x1 @ w
    credit = (d0 < d1) * (1 - h) + (d1 < d0) * h + (d0 == d1) * 0.5
    return float(credit.double().mean())


def _as_tensors(feats: TripletFeatures, device: torch.device):
    x0 = torch.from_numpy(np.asarray(feats.x0))
    x1 = torch.from_numpy(np.asarray(feats.x1))
    h = torch.from_numpy(feats.h)
    if device.type != "cpu":
        x0, x1, h = x0.to(device), x1.to(device), h.to(device)
    return x0, x1, h


#: Settings that came with the training modes and mean nothing in mode ``lin`` (frozen trunk):
#: left out of a lin fingerprint, so checkpoints written before the modes existed still resume.
_TRUNK_TRAINING_KEYS = ("mode", "trunk_lr", "trunk_train")


def _fingerprint(config: TrainLinConfig, trunk_hash: str | None, ids: list[str]) -> str:
    hyper = config.hyperparameters()
    if not config.trains_trunk:
        hyper = {k: v for k, v in hyper.items() if k not in _TRUNK_TRAINING_KEYS}
    blob = {
        "hyperparameters": hyper,
        "trunk": trunk_hash,
        "ids": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]


# IEEE float32 trunk features on CUDA, as `iqa-bench run --dtype fp32` scores them (PyTorch's
# default would run the convolutions in TF32).
@dataclass
class _TrainingData:
    """What training reads: the dataset, the feature metric, cached features and held-out data."""

    ds: Any
    metric: Any
    channels: list[int]
    samples: list
    feats: TripletFeatures | None
    ids: list[str]
    val_ds: Any = None
    val: TripletFeatures | None = None


def _load_training_data(
    config: TrainLinConfig, device: torch.device, progress: bool, log: Callable[[str], None]
) -> _TrainingData:
    """Open the train (and held-out) split, build the frozen trunk and its triplet features."""
    root = Path(config.data_root) if config.data_root else None
    ds = open_dataset(config.dataset, data_root=root, split=config.split, progress=progress)
    with torch.random.fork_rng(devices=[]):
        if config.mode == "scratch":  # the random start is part of the result: seed it
            torch.manual_seed(config.seed)
        metric = feature_metric(
            config.backbone, config.taps, config.version, config.pretrained, device
        )
    samples = ds.samples("2afc") if "2afc" in ds.tasks() else []
    feats = None
    if config.features != "none":
        feats = triplet_features(
            metric,
            ds,
            mode=config.features,
            cache_root=config.cache_dir,
            batch_size=config.feature_batch_size,
            workers=config.workers,
            resize=config.resize,
            progress=progress,
            log=log,
        )
    elif not samples:
        raise InputError(f"dataset {ds.name!r} split {ds.split!r} has no 2AFC triplets.")
    ids = feats.sample_ids if feats else [s.sample_id for s in samples]
    data = _TrainingData(ds, metric, metric.trunk.channels(), samples, feats, ids)
    if config.val_split:
        data.val_ds = open_dataset(config.dataset, data_root=root, split=config.val_split)
        val_mode = "disk" if config.features == "disk" else "memory"
        data.val = triplet_features(
            metric,
            data.val_ds,
            val_mode,
            config.cache_dir,
            config.feature_batch_size,
            config.workers,
            config.resize,
            progress,
            log,
        )
    return data


def _restore(
    trainer: LinTrainer,
    outputs: TrainOutputs,
    fingerprint: str,
    resume: bool,
    log: Callable[[str], None],
) -> tuple[list[dict], int]:
    """The history so far and the first epoch to train: from the newest checkpoint under
    ``resume`` (same settings and data required), else from scratch (old checkpoints removed)."""
    latest = outputs.latest_checkpoint() if resume else None
    if latest is None:
        if not resume and clear_checkpoints(outputs):
            log(f"starting over: removed earlier checkpoints in {outputs.checkpoints}")
        return [], 1
    state = load_checkpoint(latest[1])
    if state.get("fingerprint") != fingerprint:
        raise InputError(
            f"resume: {latest[1]} was written with other settings, trunk or data; rerun "
            "without --resume to start over (its checkpoints are then replaced)."
        )
    trainer.load_state_dict(state["trainer"])
    log(f"resuming after epoch {latest[0]} from {latest[1]}")
    return list(state["history"]), latest[0] + 1


@cuda_float32_precision("fp32")
def train_lin(
    config: TrainLinConfig,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Learn LPIPS linear weights on a 2AFC split with the trunk frozen.

    Args:
        config: Trunk, data and hyper-parameters (defaults: the LPIPS paper's).
        out: Weights file (``.pth``); manifest, metric card and checkpoints go beside it.
        resume: Continue from the newest checkpoint (same settings and data required); without
            it, earlier checkpoints are deleted and training starts over.
        progress: Show progress bars on stderr.
        log: Callable for messages (default: stderr).

    Returns:
        The output paths, the manifest and the learned per-layer weights.

    Raises:
        InputError: Bad settings, data without 2AFC triplets, or a checkpoint from other settings.
        DataNotFoundError: Missing data.
        WeightsUnavailableError: Pretrained trunk weights not obtainable.
    """
    log = log or (lambda msg: print(f"iqa-bench: {msg}", file=sys.stderr))
    timings = {"start": time.perf_counter()}
    outputs = TrainOutputs.at(out)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data = _load_training_data(config, device, progress, log)
    timings["features_s"] = time.perf_counter() - timings["start"]
    trainer = _make_trainer(config, data, device)
    fingerprint = _fingerprint(config, data.metric.weight_hashes.get("trunk"), data.ids)
    history, start = _restore(trainer, outputs, fingerprint, resume, log)
    if config.features != "none" and not config.dropout:
        log(f"note: {DEVIATION_NO_DROPOUT}")
    val_score = _val_scorer(config, data, device)
    val_baseline = None
    if data.val is not None:
        val_baseline = _twoafc(
            *_as_tensors(data.val, device), torch.ones(sum(data.channels), device=device)
        )
    timings["train"] = time.perf_counter()
    checkpoint = lambda epoch, state: save_checkpoint(
        outputs, epoch, {"epoch": epoch, "fingerprint": fingerprint, **state}
    )
    _train(
        config, data, trainer, device, _Epochs(start, history, val_score, progress, log, checkpoint)
    )
    trunk_trained = isinstance(trainer, TrunkTrainer)
    save_weights(outputs, trainer.file_state() if trunk_trained else trainer.head.lin_state())
    manifest = _train_manifest(config, data, outputs, device, fingerprint, history, val_baseline)
    if trunk_trained:
        manifest["trunk"]["trained_parameters"] = [name for name, _ in trainer.trunk_params]
        if any(p.dim() == 4 and p.shape[-2:] == (1, 1) for _, p in trainer.trunk_params):
            manifest["deviations"].append(DEVIATION_TRUNK_CLAMP)
    manifest["timings"] = {
        "features_s": round(timings["features_s"], 3),
        "train_s": round(time.perf_counter() - timings["train"], 3),
        "total_s": round(time.perf_counter() - timings["start"], 3),
    }
    save_manifest(outputs, manifest)
    save_card(outputs, manifest)
    log(f"weights: {outputs.weights} (manifest {outputs.manifest.name}, card {outputs.card.name})")
    return TrainResult(outputs, manifest, trainer.head.layer_weights())


def _make_trainer(config: TrainLinConfig, data: _TrainingData, device: torch.device) -> LinTrainer:
    """A :class:`LinTrainer` (mode ``lin``) or a :class:`TrunkTrainer` (``tune``/``scratch``)."""
    if not config.trains_trunk:
        return LinTrainer(
            data.channels, config.lr, config.beta1, config.chn_mid, config.init, config.seed, device
        )
    options = TrunkOptions(
        lr=config.lr,
        trunk_lr=config.trunk_lr,
        train=config.trunk_train,
        dropout=config.dropout,
        beta1=config.beta1,
        chn_mid=config.chn_mid,
        init=config.init,
        seed=config.seed,
    )
    return TrunkTrainer(data.metric, options)


def _val_scorer(
    config: TrainLinConfig, data: _TrainingData, device: torch.device
) -> Callable[[torch.Tensor], float] | None:
    """Held-out 2AFC score of linear weights: on the features computed at the start (frozen
    trunk), or on fresh trunk passes (the trunk trains)."""
    if data.val is None:
        return None
    if not config.trains_trunk:
        val_t = _as_tensors(data.val, device)
        return lambda weight: _twoafc(*val_t, weight)

    def score(weight: torch.Tensor) -> float:
        feats = triplet_features(
            data.metric,
            data.val_ds,
            "memory",
            batch_size=config.feature_batch_size,
            workers=config.workers,
            resize=config.resize,
            progress=False,
        )
        return _twoafc(*_as_tensors(feats, device), weight)

    return score


@dataclass
class _Epochs:
    """Where the epochs start and what they report to."""

    start: int
    history: list[dict]
    val_score: Callable[[torch.Tensor], float] | None
    progress: bool
    log: Callable[[str], None]
    checkpoint: Callable[[int, dict], object]


def _train(
    config: TrainLinConfig,
    data: _TrainingData,
    trainer: LinTrainer,
    device: torch.device,
    epochs: _Epochs,
) -> None:
    """Run the epochs on cached features (single-threaded on CPU) or on fresh trunk passes."""
    data_t = _as_tensors(data.feats, device) if data.feats is not None else None
    h_all = np.array([s.h for s in data.samples], dtype=np.float32) if data.feats is None else None

    def make_batches(order: np.ndarray, epoch: int):
        if config.trains_trunk:
            return _image_batches(config, order, data, h_all, device, epoch)
        return _batches(
            config,
            order,
            data_t,
            data.samples,
            h_all,
            data.metric,
            device,
            epoch,
            data.ds.load_size,
        )

    threads = torch.get_num_threads()
    if device.type == "cpu" and data.feats is not None:
        torch.set_num_threads(1)  # steps are tiny: threads cost more than they save
    try:
        _run_epochs(config, trainer, make_batches, len(data.ids), epochs)
    finally:
        torch.set_num_threads(threads)


def _train_manifest(config, data, outputs, device, fingerprint, history, val_baseline) -> dict:
    """The manifest of a finished training (timings are added by the caller)."""
    feats, metric = data.feats, data.metric
    return {
        "schema": 1,
        "created": now_iso(),
        "name": outputs.name,
        "package": package_info(),
        "environment": environment_info(device),
        "device": str(device),
        "weights_file": outputs.weights.name,
        "weights_sha256": sha256_file(outputs.weights),
        "card": outputs.card.name,
        "trunk": {
            "backbone": config.backbone,
            "taps": list(metric.trunk.taps),
            "version": config.version,
            "pretrained": config.pretrained,
            "weights_sha256": metric.weight_hashes.get("trunk"),
            "normalisation": metric.embedding_key[3],
            "channels": data.channels,
        },
        "dataset": _dataset_info(data.ds, data.ids),
        "val": _dataset_info(data.val_ds, data.val.sample_ids) | {"baseline_2afc": val_baseline}
        if data.val is not None
        else None,
        "hyperparameters": config.hyperparameters(),
        "mode": config.mode,
        "features": {
            "mode": config.features,
            "note": TRUNK_FEATURES_NOTE.format(mode=config.mode) if config.trains_trunk else None,
            "key": feats.key if feats else None,
            "cached": feats.cached if feats else False,
            "cache_dir": str(Path(config.cache_dir or cache_dir() / "features"))
            if config.features == "disk"
            else None,
        },
        "deviations": [] if config.features == "none" or config.dropout else [DEVIATION_NO_DROPOUT],
        "fingerprint": fingerprint,
        "history": history,
    }


def _dataset_info(ds, ids: list[str]) -> dict:
    subsets: dict[str, int] = {}
    for sample_id in ids:
        subset = sample_id.split("/")[1] if sample_id.count("/") >= 2 else ""
        subsets[subset] = subsets.get(subset, 0) + 1
    return {
        "name": ds.name,
        "card_version": ds.version,
        "synthetic": bool(ds.synthetic),
        "root": str(ds.root),
        "split": ds.split,
        "n": len(ids),
        "subsets": subsets,
    }


def _batches(
    config: TrainLinConfig, order, data_t, samples, h_all, metric, device, epoch, load_size
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(x0, x1, h) batches of one epoch: slices of cached features, or fresh trunk passes of
    images decoded at the dataset's ``load_size``."""
    size = config.batch_size
    if data_t is not None:
        x0, x1, h = data_t
        for start in range(0, len(order), size):
            idx = torch.from_numpy(order[start : start + size]).to(x0.device)
            yield x0[idx], x1[idx], h[idx]
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout masks
        batches = decoded_batches(
            samples, list(order), "2afc", size, False, config.workers, load_size
        )
        for batch in batches:
            if not batch.positions:
                continue
            tensors = {k: to_device(v, device, config.resize) for k, v in batch.images.items()}
            m0, m1 = batch_means(metric, tensors, config.dropout)
            h = torch.from_numpy(h_all[batch.positions]).to(device)
            yield m0.clone(), m1.clone(), h


def _image_batches(
    config: TrainLinConfig, order, data: _TrainingData, h_all, device, epoch
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """(images, h) batches of one epoch for a trunk-training step, decoded at the dataset's
    ``load_size``; dropout masks drawn inside the step are seeded per epoch."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed * 1_000_003 + epoch)
        batches = decoded_batches(
            data.samples, list(order), "2afc", config.batch_size, False, config.workers,
            data.ds.load_size,
        )  # fmt: skip
        for batch in batches:
            if batch.positions:
                images = {k: to_device(v, device, config.resize) for k, v in batch.images.items()}
                yield images, torch.from_numpy(h_all[batch.positions]).to(device)


def _run_epochs(
    config: TrainLinConfig,
    trainer: LinTrainer,
    make_batches: Callable[[np.ndarray, int], Iterator],
    n: int,
    epochs: _Epochs,
) -> None:
    """Epochs ``start .. total``: steps, the per-epoch record in ``history``, a checkpoint."""
    start, history, progress, log = epochs.start, epochs.history, epochs.progress, epochs.log
    step = trainer.step_images if isinstance(trainer, TrunkTrainer) else trainer.step
    total = config.total_epochs
    steps = -(-n // config.batch_size)
    bar = tqdm(
        total=max(0, total - start + 1) * steps,
        desc="train-lin",
        unit="step",
        disable=not progress,
        file=sys.stderr,
    )
    for epoch in range(start, total + 1):
        t_epoch = time.perf_counter()
        lr = learning_rate(epoch, config.lr, config.n_epochs, config.n_epochs_decay)
        trainer.set_lr(lr)
        losses, credits, sizes = [], [], []
        for batch in make_batches(_epoch_order(n, config.seed, epoch), epoch):
            loss, credit = step(*batch)
            losses.append(loss)
            credits.append(credit)
            sizes.append(len(credit))
            bar.update(1)
        record = {
            "epoch": epoch,
            "lr": lr,
            "loss": float(np.average(losses, weights=sizes)),
            "train_2afc": float(np.concatenate(credits).mean()),
            "val_2afc": None,
            "seconds": 0.0,
        }
        if epochs.val_score is not None:
            with torch.no_grad():
                record["val_2afc"] = epochs.val_score(trainer.head.weight.detach())
        record["seconds"] = round(time.perf_counter() - t_epoch, 4)
        history.append(record)
        epochs.checkpoint(epoch, {"trainer": trainer.state_dict(), "history": history})
        val_text = f", held-out 2AFC {record['val_2afc']:.4f}" if epochs.val_score else ""
        message = (
            f"epoch {epoch}/{total}: lr {lr:.3g}, loss {record['loss']:.4f}, "
            f"train 2AFC {record['train_2afc']:.4f}{val_text}"
        )
        if progress:
            bar.write(f"iqa-bench: {message}", file=sys.stderr)
        else:
            log(message)
    bar.close()
