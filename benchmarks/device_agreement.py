"""Scores of the same set on two devices through the runner: how far they move, and the speed.

    python benchmarks/device_agreement.py --devices cpu,cuda --n 256 --size 64

Builds a seeded BAPPS-layout 2AFC set (``--n`` triplets of ``--size`` px), scores it with each
metric on each device in float32 (on CUDA the runner's ``fp32`` is IEEE float32, not TF32), and
prints per metric, against the first device: the largest absolute and relative difference of the
d0/d1 scores, the number of triplets whose 2AFC decision (the sign of d0 - d1) differs, and each
device's image pairs per second (the manifest's scoring time). Metrics that cannot be built here
(weights or library absent) are listed with the reason. These figures are what a GPU test's
tolerance for the bridged and other new metrics must come from; ``device_check.sh`` runs this as
its ``agreement`` part.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from iqa_bench import create_metric  # noqa: E402
from iqa_bench.datasets.bapps_layout import make_bapps_layout  # noqa: E402
from iqa_bench.errors import MissingExtraError, WeightsUnavailableError  # noqa: E402
from iqa_bench.runner import RunOptions, run_benchmark, store  # noqa: E402

METRICS = [
    "fsim", "fsimc", "gmsd", "haarpsi", "mdsi", "vif-p", "vsi", "torchmetrics:ssim",
    "torchmetrics:vif", "pyiqa:gmsd", "dists", "lpips-alex", "lpips-alex+", "lpips-vgg+",
]  # fmt: skip


def buildable(names: list[str], size: int) -> tuple[list[str], dict[str, str]]:
    """The metrics that build here and score ``size`` px, and why each other one does not."""
    ok, why = [], {}
    for name in names:
        try:
            if create_metric(name).min_size <= size:
                ok.append(name)
            else:
                why[name] = f"needs more than {size} px"
        except (WeightsUnavailableError, MissingExtraError) as exc:
            why[name] = str(exc).splitlines()[0]
    return ok, why


def score(root: Path, metrics: list[str], device: str, out: Path) -> dict[str, dict]:
    """Per metric: the d0/d1 scores and the pairs per second on ``device``."""
    opts = RunOptions(device=device, dtype="fp32", progress=False, reuse=False, decode_cache=False)
    result = run_benchmark(str(root), metrics, out, opts, log=lambda m: None)
    scores = {}
    for name in metrics:
        with np.load(store.final_path(result.run_dir, name, "2afc")) as data:
            d0, d1 = data["d0"].astype(np.float64), data["d1"].astype(np.float64)
        seconds = result.manifest["metrics"][name]["timings"]["2afc"]
        scores[name] = {"d0": d0, "d1": d1, "pairs_s": 2 * len(d0) / max(seconds, 1e-9)}
    return scores


def differences(a: dict, b: dict) -> tuple[float, float, int]:
    """Largest absolute and relative score difference, and 2AFC decisions that differ."""
    x, y = np.concatenate([a["d0"], a["d1"]]), np.concatenate([b["d0"], b["d1"]])
    diff = np.abs(x - y)
    rel = diff / np.maximum(np.abs(x), 1e-12)
    flips = int((np.sign(a["d0"] - a["d1"]) != np.sign(b["d0"] - b["d1"])).sum())
    return float(diff.max()), float(rel.max()), flips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", default="cpu,cuda", help="first = the baseline")
    parser.add_argument("--n", type=int, default=256, help="2AFC triplets")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--metrics", default=",".join(METRICS), help="comma-separated names")
    args = parser.parse_args(argv)
    devices = args.devices.split(",")
    metrics, skipped = buildable(args.metrics.split(","), args.size)
    for name, reason in skipped.items():
        print(f"not here: {name}: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        root = make_bapps_layout(Path(tmp) / "set", {"cnn": args.n}, None, size=args.size)
        runs = [score(root, metrics, d, Path(tmp) / f"run{i}") for i, d in enumerate(devices)]
    print(f"{args.n} triplets of {args.size} px, fp32; differences against {devices[0]}")
    head = f"{'metric':<18} {'device':<8} {'max |diff|':>11} {'max rel':>9} {'flips':>6}"
    print(head + " " + " ".join(f"{d + ' pairs/s':>14}" for d in devices))
    for name in metrics:
        speeds = " ".join(f"{run[name]['pairs_s']:>14.1f}" for run in runs)
        for device, run in zip(devices[1:], runs[1:]):
            absolute, relative, flips = differences(runs[0][name], run[name])
            print(f"{name:<18} {device:<8} {absolute:>11.3g} {relative:>9.3g} {flips:>6} {speeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
