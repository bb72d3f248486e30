"""Settings of ``train-lin``: the trunk, the data and the reference hyper-parameters."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ..errors import InputError


@dataclass(frozen=True)
class TrainLinConfig:
    """How to train LPIPS linear layers (defaults: the LPIPS paper / reference ``train.py``).

    Attributes:
        backbone: Registered or zoo backbone (``alex``, ``torchvision:resnet18``, ...).
        taps: Modules to tap; None = the backbone's declared taps (zoo backbones need them).
        version: LPIPS input scaling, ``0.1`` (current) or ``0.0``; zoo backbones use their
            weights' own mean/std under ``0.1``.
        pretrained: Load the trunk's ImageNet weights (False = random trunk, for smoke tests).
        dataset: Dataset card name or path of a BAPPS-layout folder.
        split: 2AFC split to train on (BAPPS ``train``: traditional, cnn, mix).
        data_root: Root of named datasets (default ``$IQA_BENCH_DATA``).
        val_split: Optional held-out 2AFC split of the same dataset, scored after every epoch.
        lr: Adam learning rate (reference 1e-4 for ~3,000 steps an epoch on BAPPS train; a small
            set takes fewer steps and may need a larger rate).
        beta1: Adam beta1 (reference 0.5; beta2 is 0.999).
        batch_size: Triplets per step (reference 50).
        n_epochs: Epochs at the initial rate (reference 5).
        n_epochs_decay: Further epochs with the rate falling linearly to 0 (reference 5).
        chn_mid: Hidden width of the ranking network (reference 32).
        init: Start of the linear weights: ``random`` (reference) or ``ones`` (the baseline).
        dropout: Dropout on the per-position squared differences (reference 0.5); only with
            ``features="none"``, since cached features are already averaged over positions.
        features: ``disk`` = trunk features computed once and cached across runs (default);
            ``memory`` = computed once per run; ``none`` = the trunk runs on every batch (slow;
            needed for dropout, as the reference trains).
        seed: Seed of the initial weights and of the batch order.
        device: ``cpu``, ``cuda``...; None picks CUDA when present.
        feature_batch_size: Triplets per trunk batch when computing features.
        workers: Image-decoding threads.
        resize: Resize images to N x N before the trunk (as ``run --resize``); None = native.
        cache_dir: Feature cache folder (default ``<iqa-bench cache>/features``).
    """

    backbone: str = "alex"
    taps: tuple[str, ...] | None = None
    version: Literal["0.1", "0.0"] = "0.1"
    pretrained: bool = True
    dataset: str = "bapps"
    split: str = "train"
    data_root: str | None = None
    val_split: str | None = None
    lr: float = 1e-4
    beta1: float = 0.5
    batch_size: int = 50
    n_epochs: int = 5
    n_epochs_decay: int = 5
    chn_mid: int = 32
    init: Literal["random", "ones"] = "random"
    dropout: float = 0.0
    features: Literal["disk", "memory", "none"] = "disk"
    seed: int = 0
    device: str | None = None
    feature_batch_size: int = 64
    workers: int = 2
    resize: int | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.lr > 0, f"lr: must be positive, got {self.lr}."),
            (0 <= self.beta1 < 1, f"beta1: must lie in [0, 1), got {self.beta1}."),
            (self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}."),
            (self.n_epochs >= 0, f"n_epochs: must be >= 0, got {self.n_epochs}."),
            (self.n_epochs_decay >= 0, f"n_epochs_decay: must be >= 0, got {self.n_epochs_decay}."),
            (self.n_epochs + self.n_epochs_decay >= 1, "n_epochs + n_epochs_decay must be >= 1."),
            (self.chn_mid >= 1, f"chn_mid: must be >= 1, got {self.chn_mid}."),
            (self.init in ("random", "ones"), f"init: {self.init!r} is not 'random' or 'ones'."),
            (0 <= self.dropout < 1, f"dropout: must lie in [0, 1), got {self.dropout}."),
            (
                self.features in ("disk", "memory", "none"),
                f"features: {self.features!r} is not one of 'disk', 'memory', 'none'.",
            ),
            (self.version in ("0.1", "0.0"), f"version: {self.version!r} is not '0.1' or '0.0'."),
            (
                not (self.dropout and self.features != "none"),
                f"dropout: {self.dropout} needs features='none' (--features none): cached "
                "features are spatial means, and the reference drops individual positions.",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    def hyperparameters(self) -> dict:
        """What decides the learned weights (not where or how fast they are computed)."""
        skip = {"device", "feature_batch_size", "workers", "cache_dir", "data_root"}
        out = {k: v for k, v in asdict(self).items() if k not in skip}
        out["taps"] = list(self.taps) if self.taps else None
        return out
