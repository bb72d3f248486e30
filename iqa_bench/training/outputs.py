"""Files ``train-lin`` writes: weights, manifest, metric card, per-epoch checkpoints.

For ``--out runs/alex-lin.pth``:

- ``runs/alex-lin.pth``: ``{"lin{k}.weight": (C_k,)}`` float32, read by ``load_lin_weights``; in
  modes ``tune``/``scratch`` also the trained trunk, ``{"trunk.<name>": tensor}`` under the full
  network's names, read through the card's ``trunk_weights``;
- ``runs/alex-lin.json``: the manifest (kind ``iqa-bench train-lin``: trunk, data, hyper-parameters,
  per-epoch history, SHA-256 of the weights, package version and git commit);
- ``runs/alex-lin.yaml``: a metric card (name ``alex-lin``, type ``lpips``, ``lin_weights`` = the
  absolute path of the weights, and ``trunk_weights`` = the same path when the trunk trained; the
  description names the mode) for ``iqa-bench run --metric-card runs/alex-lin.yaml``, or to copy
  into ``metrics/``;
- ``runs/alex-lin.checkpoints/epoch-NNN.pt``: trainer state after every epoch (for ``--resume``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config import metric_cards
from ..errors import InputError
from ..metrics.lpips import TRAIN_LIN_MANIFEST_KIND

_CKPT = re.compile(r"epoch-(\d+)\.pt")


@dataclass(frozen=True)
class TrainOutputs:
    """Where one training run writes (all derived from the weights path).

    Raises:
        InputError: A weights path that does not end in ``.pth``/``.pt``, or whose stem is the
            name of an existing metric card.
    """

    weights: Path

    def __post_init__(self) -> None:
        if self.weights.suffix not in (".pth", ".pt"):
            raise InputError(
                f"out: {self.weights} must end in .pth (e.g. runs/alex-lin.pth); the manifest "
                "(.json) and metric card (.yaml) are written beside it."
            )
        cards = metric_cards()
        if self.name in cards and cards[self.name].params.get("lin_weights") != str(self.weights):
            raise InputError(
                f"out: the metric card {self.name!r} exists already; name the weights file "
                f"differently (e.g. {self.weights.with_stem(self.name + '-trained')})."
            )

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> TrainOutputs:
        return cls(Path(path).expanduser().resolve())

    @property
    def name(self) -> str:
        """Metric name of the trained weights: the file stem."""
        return self.weights.stem

    @property
    def manifest(self) -> Path:
        return self.weights.with_suffix(".json")

    @property
    def card(self) -> Path:
        return self.weights.with_suffix(".yaml")

    @property
    def checkpoints(self) -> Path:
        return self.weights.with_name(f"{self.weights.stem}.checkpoints")

    def checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch-{epoch:03d}.pt"

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """(epoch, path) of the newest checkpoint, or None."""
        if not self.checkpoints.is_dir():
            return None
        found = [
            (int(m.group(1)), p)
            for p in self.checkpoints.iterdir()
            if (m := _CKPT.fullmatch(p.name)) is not None
        ]
        return max(found) if found else None


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(outputs: TrainOutputs, epoch: int, state: dict[str, Any]) -> Path:
    """Write the state after ``epoch`` (atomically) and return its path."""
    path = outputs.checkpoint(epoch)
    _atomic(path, lambda tmp: torch.save(state, tmp))
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def clear_checkpoints(outputs: TrainOutputs) -> int:
    """Delete earlier checkpoints (a run without ``--resume`` starts over); returns how many."""
    latest = outputs.latest_checkpoint()
    if latest is None:
        return 0
    removed = 0
    for p in outputs.checkpoints.iterdir():
        if _CKPT.fullmatch(p.name):
            p.unlink()
            removed += 1
    return removed


def save_weights(outputs: TrainOutputs, lin_state: dict[str, torch.Tensor]) -> None:
    _atomic(outputs.weights, lambda tmp: torch.save(lin_state, tmp))


def save_manifest(outputs: TrainOutputs, manifest: dict[str, Any]) -> None:
    manifest = {"kind": TRAIN_LIN_MANIFEST_KIND, **manifest}
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    _atomic(outputs.manifest, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def metric_card_dict(outputs: TrainOutputs, manifest: dict[str, Any]) -> dict[str, Any]:
    """The metric card of trained weights (as a YAML mapping)."""
    trunk, data = manifest["trunk"], manifest["dataset"]
    last = manifest["history"][-1] if manifest["history"] else {}
    val = f", held-out 2AFC {last['val_2afc']:.4f}" if last.get("val_2afc") is not None else ""
    mode = manifest.get("mode", "lin")
    params: dict[str, Any] = {
        "backbone": trunk["backbone"],
        "version": trunk["version"],
        "lpips": True,
        "lin_weights": str(outputs.weights),
        # A trained trunk comes from the weights file: no ImageNet weights are needed to score.
        "pretrained": trunk["pretrained"] if mode == "lin" else False,
        "taps": list(trunk["taps"]),
    }
    if mode != "lin":
        params["trunk_weights"] = str(outputs.weights)
    trained = {
        "lin": "linear layers",
        "tune": "trunk (from ImageNet weights) and linear layers",
        "scratch": "trunk (from random weights) and linear layers",
    }[mode]
    return {
        "name": outputs.name,
        "version": 1,
        "type": "lpips",
        "group": "custom",
        "description": (
            f"LPIPS v{trunk['version']} on {trunk['backbone']}, mode {mode}: {trained} trained "
            f"by iqa-bench train-lin on {data['name']}/{data['split']} (n={data['n']}, "
            f"{len(manifest['history'])} epochs{val}); weights sha256 "
            f"{manifest['weights_sha256'][:12]}, manifest {outputs.manifest.name}"
        ),
        "params": params,
    }


def save_card(outputs: TrainOutputs, manifest: dict[str, Any]) -> None:
    header = (
        f"# Written by `iqa-bench train-lin` ({manifest['created']}); provenance in "
        f"{outputs.manifest.name}.\n# Use: iqa-bench run --metric-card {outputs.card} ...\n"
    )
    text = header + yaml.safe_dump(metric_card_dict(outputs, manifest), sort_keys=False)
    _atomic(outputs.card, lambda tmp: tmp.write_text(text, encoding="utf-8"))
