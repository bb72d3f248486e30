"""Settings of ``train-lin``: the mode, the trunk, the data and the reference hyper-parameters."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ..errors import InputError

#: ``lin`` = frozen trunk, learned per-channel weights; ``tune`` = the ImageNet trunk trained
#: together with them; ``scratch`` = the same from a random trunk (the LPIPS paper's three rows).
MODES = ("lin", "tune", "scratch")

# What each mode resolves the settings left as None to: the reference trainer's choices.
# lin keeps its cached-features defaults (dropout cannot act on spatial means); tune and scratch
# run the trunk every step, so they train with the reference's dropout of 0.5.
_MODE_DEFAULTS = {
    "lin": {"pretrained": True, "features": "disk", "dropout": 0.0},
    "tune": {"pretrained": True, "features": "none", "dropout": 0.5},
    "scratch": {"pretrained": False, "features": "none", "dropout": 0.5},
}


@dataclass(frozen=True)
class TrainLinConfig:
    """How to train an LPIPS metric (defaults: the LPIPS paper / reference ``train.py``).

    Settings left as None take the mode's default (see each attribute); the resolved value is
    what the config holds afterwards.

    Attributes:
        mode: ``lin`` (frozen trunk), ``tune`` (trunk trained too, from ImageNet weights) or
            ``scratch`` (trunk trained too, from random weights).
        backbone: Registered or zoo backbone (``alex``, ``torchvision:resnet18``, ...).
        taps: Modules to tap; None = the backbone's declared taps (zoo backbones need them).
        version: LPIPS input scaling, ``0.1`` (current) or ``0.0``; zoo backbones use their
            weights' own mean/std under ``0.1``.
        pretrained: Start from the trunk's ImageNet weights (False = random trunk). None: True
            for ``lin`` and ``tune``, False for ``scratch`` (which refuses True; ``tune`` refuses
            False: that is ``scratch``). ``lin`` with False is for smoke tests.
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
            None: 0 for ``lin``, 0.5 for ``tune``/``scratch``.
        features: ``disk`` = trunk features computed once and cached across runs; ``memory`` =
            computed once per run; ``none`` = the trunk runs on every batch (slow; needed for
            dropout, as the reference trains). None: ``disk`` for ``lin``; ``tune`` and
            ``scratch`` change the trunk every step, so they only take ``none``.
        trunk_lr: Learning rate of the trunk (``tune``/``scratch``), following the same schedule;
            None = ``lr``, as the reference (one Adam over trunk and linear layers).
        trunk_train: Glob patterns (``fnmatch``) of the trunk parameter names that train
            (``tune``/``scratch``), named as in the full network (alex: ``features.0.weight``
            ...); the others stay frozen. None = every trunk parameter (the reference).
        seed: Seed of the initial weights and of the batch order.
        device: ``cpu``, ``cuda``...; None picks CUDA when present.
        feature_batch_size: Triplets per trunk batch when computing features.
        workers: Image-decoding threads.
        resize: Resize images to N x N before the trunk (as ``run --resize``); None = native.
        cache_dir: Feature cache folder (default ``<iqa-bench cache>/features``).
    """

    mode: Literal["lin", "tune", "scratch"] = "lin"
    backbone: str = "alex"
    taps: tuple[str, ...] | None = None
    version: Literal["0.1", "0.0"] = "0.1"
    pretrained: bool | None = None
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
    dropout: float | None = None
    features: Literal["disk", "memory", "none"] | None = None
    trunk_lr: float | None = None
    trunk_train: tuple[str, ...] | None = None
    seed: int = 0
    device: str | None = None
    feature_batch_size: int = 64
    workers: int = 2
    resize: int | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}.")
        for key, value in _MODE_DEFAULTS[self.mode].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        if self.mode != "lin":
            object.__setattr__(
                self, "trunk_lr", self.lr if self.trunk_lr is None else self.trunk_lr
            )
            object.__setattr__(self, "trunk_train", tuple(self.trunk_train or ("*",)))
        self._check_mode()
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

    def _check_mode(self) -> None:
        """Settings that contradict the mode."""
        trained = self.mode != "lin"
        checks = [
            (
                trained or (self.trunk_lr is None and self.trunk_train is None),
                "trunk_lr/trunk_train (--trunk-lr/--trunk-train) train the trunk: they need "
                "mode 'tune' or 'scratch' (--mode); mode 'lin' keeps the trunk frozen.",
            ),
            (
                not trained or self.features == "none",
                f"features: {self.features!r} caches trunk features, but mode {self.mode!r} "
                "changes the trunk every step; use features='none' (--features none, the default "
                "of this mode).",
            ),
            (
                self.mode != "scratch" or not self.pretrained,
                "pretrained: mode 'scratch' starts from a random trunk; drop pretrained=True, "
                "or use mode 'tune' to start from ImageNet weights.",
            ),
            (
                self.mode != "tune" or self.pretrained,
                "pretrained: mode 'tune' starts from ImageNet weights; for a random start use "
                "mode 'scratch' (--mode scratch).",
            ),
            (
                not trained or self.trunk_lr > 0,
                f"trunk_lr: must be positive, got {self.trunk_lr}.",
            ),
            (
                not trained or bool(self.trunk_train),
                "trunk_train: give at least one parameter-name pattern (e.g. 'features.*').",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @property
    def trains_trunk(self) -> bool:
        """True for ``tune`` and ``scratch``."""
        return self.mode != "lin"

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    def hyperparameters(self) -> dict:
        """What decides the learned weights (not where or how fast they are computed)."""
        skip = {"device", "feature_batch_size", "workers", "cache_dir", "data_root"}
        out = {k: v for k, v in asdict(self).items() if k not in skip}
        out["taps"] = list(self.taps) if self.taps else None
        out["trunk_train"] = list(self.trunk_train) if self.trunk_train else None
        return out
