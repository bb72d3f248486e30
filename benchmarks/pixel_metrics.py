"""The classical metrics through the runner, per-image embeddings shared within a batch or not.

    python benchmarks/pixel_metrics.py --scale 0.02

Runs ``l2, l2-lab, psnr, ssim, ssim-paper`` on a generated BAPPS-val-shaped set (decoded-image
cache warm), alternating the metrics as they are (a 2AFC reference's prepared image, Lab image and
SSIM statistics computed once and shared, ``l2`` and ``psnr`` sharing the prepared image) with the
same metrics given no ``embedding_key`` (every comparison embeds both of its images, as before),
and prints each metric's median scoring time and the ratio. Scores are checked to be identical.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._data import make_val_like  # noqa: E402

METRICS = ["l2", "l2-lab", "psnr", "ssim", "ssim-paper"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.02, help="fraction of BAPPS val size")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["IQA_BENCH_CACHE"] = str(tmp / "cache")
        from iqa_bench.metrics import pixel
        from iqa_bench.runner import RunOptions, run_benchmark, store

        root = make_val_like(tmp / "bapps", args.scale)
        opts = RunOptions(batch_size=64, progress=False, reuse=False)
        classes = (pixel.PixelMetric, pixel.L2, pixel.SSIM)
        shared_keys = {cls: cls.__dict__["embedding_key"] for cls in classes}
        run_benchmark(str(root), METRICS, tmp / "warm-up", opts, log=lambda m: None)
        times = {mode: {m: [] for m in METRICS} for mode in ("shared", "unshared")}
        scores = {}
        for r in range(args.rounds):
            for mode in ("shared", "unshared"):
                for cls in classes:  # unshared: no key, so the runner embeds per comparison
                    cls.embedding_key = shared_keys[cls] if mode == "shared" else None
                result = run_benchmark(
                    str(root), METRICS, tmp / f"{mode}{r}", opts, log=lambda m: None
                )
                for m in METRICS:
                    times[mode][m].append(sum(result.manifest["metrics"][m]["timings"].values()))
                    with np.load(store.final_path(result.run_dir, m, "2afc")) as data:
                        got = (data["d0"].copy(), data["d1"].copy())
                    if m in scores:
                        assert all(np.array_equal(a, b) for a, b in zip(scores[m], got)), m
                    scores[m] = got
        for cls in classes:
            cls.embedding_key = shared_keys[cls]
        n = {t: v["n"] for t, v in result.manifest["tasks"].items()}
        print(f"samples {n}; scores identical in both modes")
        total = {mode: 0.0 for mode in times}
        for m in METRICS:
            med = {mode: statistics.median(times[mode][m]) for mode in times}
            total = {mode: total[mode] + med[mode] for mode in times}
            print(
                f"{m:>10}: shared {med['shared']:6.2f} s  unshared {med['unshared']:6.2f} s  "
                f"x{med['unshared'] / med['shared']:.2f}"
            )
        print(f"{'all five':>10}: x{total['unshared'] / total['shared']:.2f}")


if __name__ == "__main__":
    main()
