"""Benchmark data: BAPPS-val-shaped sets built quickly by hard-linking a pool of generated samples."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from iqa_bench.datasets.bapps_layout import make_bapps_layout

# BAPPS 2AFC val subsets and sizes, JND val subsets and sizes (shared/reference/BAPPS.md).
VAL_2AFC = {
    "traditional": 4720,
    "cnn": 4720,
    "superres": 10856,
    "deblur": 9440,
    "color": 4720,
    "frameinterp": 1888,
}
VAL_JND = {"traditional": 4800, "cnn": 4800}


def _link_subset(pool: Path, dest: Path, folders: tuple[str, ...], count: int) -> None:
    names = {f: sorted(os.listdir(pool / f)) for f in folders}
    size = len(names[folders[0]])
    for folder in folders:
        (dest / folder).mkdir(parents=True, exist_ok=True)
        suffix = Path(names[folder][0]).suffix
        for i in range(count):
            os.link(pool / folder / names[folder][i % size], dest / folder / f"{i:06d}{suffix}")


def make_val_like(
    root: Path,
    scale: float = 1.0,
    pool: int = 1000,
    seed: int = 0,
    stored_scale: int = 1,
    stored_resample: str = "nearest",
) -> Path:
    """A BAPPS-val-shaped set (``scale`` x the real sizes) in the exact layout.

    ``pool`` distinct triplets/pairs per subset are generated; the rest are hard links to them,
    which costs no decoding shortcut: every file path is read and decoded on its own.
    ``stored_scale=4`` stores the 64x64 patches at 256x256, as the BAPPS archives do, upscaled
    by ``stored_resample`` (see ``make_bapps_layout``).
    """
    sizes_2afc = {k: max(1, round(v * scale)) for k, v in VAL_2AFC.items()}
    sizes_jnd = {k: max(1, round(v * scale)) for k, v in VAL_JND.items()}
    tmp = root.parent / f".{root.name}-pool"
    make_bapps_layout(
        tmp,
        {k: min(pool, v) for k, v in sizes_2afc.items()},
        {k: min(pool, v) for k, v in sizes_jnd.items()},
        seed=seed,
        stored_scale=stored_scale,
        stored_resample=stored_resample,
    )
    for subset, n in sizes_2afc.items():
        _link_subset(
            tmp / "2afc" / "val" / subset,
            root / "2afc" / "val" / subset,
            ("ref", "p0", "p1", "judge"),
            n,
        )
    for subset, n in sizes_jnd.items():
        _link_subset(
            tmp / "jnd" / "val" / subset, root / "jnd" / "val" / subset, ("p0", "p1", "same"), n
        )
    shutil.rmtree(tmp)
    return root


def weights_folder(folder: Path) -> Path:
    """Real alex/squeeze trunks (from IQA_BENCH_WEIGHTS or ../shared/weights) and VGG16 (real if
    present, else random: speed does not depend on the values)."""
    import torch

    import iqa_bench
    from iqa_bench.backbones import BACKBONES

    repo = Path(__file__).resolve().parent.parent
    real = Path(os.environ.get("IQA_BENCH_WEIGHTS") or repo.parent / "shared" / "weights")
    folder.mkdir(parents=True, exist_ok=True)
    for backbone in ("alex", "squeezenet1_1", "vgg16"):
        spec = BACKBONES.get(backbone)
        source, target = real / spec.weights.features_file, folder / spec.weights.features_file
        if source.is_file():
            shutil.copyfile(source, target)
        elif spec.weights.features_sha256:
            raise SystemExit(f"{source} not found: set IQA_BENCH_WEIGHTS to the real trunk weights")
        else:
            torch.manual_seed(0)
            metric = iqa_bench.create_metric("lpips-vgg-baseline", pretrained=False)
            torch.save(metric.trunk.trunk_state_dict(), target)
    return folder
