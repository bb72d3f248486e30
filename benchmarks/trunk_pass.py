"""Trunk metrics through the runner: one trunk pass over all image fields of a batch, or one per field.

    python benchmarks/trunk_pass.py --metrics lpips-alex,lpips-squeeze --scale 0.02

On a generated BAPPS-val-shaped set (decoded-image cache warm, batch 64), alternates the runner as
it is (ref, p0 and p1 of a 2AFC batch concatenated into one trunk pass while within
``--max-batch-pixels``) with a pixel budget of one field's batch (64 x 64 x 64), which keeps the
batches but makes every field its own pass, as before. Prints each metric's median scoring time,
the ratio, and the largest relative score difference between the two.
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

from benchmarks._data import make_val_like, weights_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics", default="lpips-alex,lpips-squeeze")
    parser.add_argument("--scale", type=float, default=0.02, help="fraction of BAPPS val size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    metrics = args.metrics.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["IQA_BENCH_WEIGHTS"] = str(weights_folder(tmp / "weights"))
        os.environ["IQA_BENCH_CACHE"] = str(tmp / "cache")
        os.environ["IQA_BENCH_OFFLINE"] = "1"
        from iqa_bench.runner import RunOptions, run_benchmark, store

        root = make_val_like(tmp / "bapps", args.scale)
        budgets = {"joint": 64 * 256 * 256, "per-field": 64 * 64 * 64}
        times = {mode: {m: [] for m in metrics} for mode in budgets}
        scores: dict[str, dict[str, np.ndarray]] = {mode: {} for mode in budgets}

        def run(mode: str, out: Path):
            opts = RunOptions(
                batch_size=64,
                progress=False,
                reuse=False,
                device=args.device,
                max_batch_pixels=budgets[mode],
            )
            return run_benchmark(str(root), metrics, out, opts, log=lambda m: None)

        run("joint", tmp / "warm-up")
        for r in range(args.rounds):
            for mode in budgets:
                result = run(mode, tmp / f"{mode}{r}")
                for m in metrics:
                    times[mode][m].append(sum(result.manifest["metrics"][m]["timings"].values()))
                    with np.load(store.final_path(result.run_dir, m, "2afc")) as data:
                        scores[mode][m] = data["d0"].copy()
        n = {t: v["n"] for t, v in result.manifest["tasks"].items()}
        print(f"samples {n}, device {result.manifest['device']}")
        for m in metrics:
            med = {mode: statistics.median(times[mode][m]) for mode in budgets}
            diff = np.max(np.abs(scores["joint"][m] / scores["per-field"][m] - 1))
            print(
                f"{m:>22}: joint {med['joint']:6.2f} s  per-field {med['per-field']:6.2f} s  "
                f"x{med['per-field'] / med['joint']:.2f}  (max rel. score difference {diff:.1e})"
            )


if __name__ == "__main__":
    main()
