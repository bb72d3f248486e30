"""Cold runs with decoding overlapped with scoring against decoding each chunk first.

    python benchmarks/decode_overlap.py --scale 0.05 --metrics l2,l2-lab,psnr,ssim,ssim-paper
    python benchmarks/decode_overlap.py --scale 0.02 --metrics l2,lpips-alex,lpips-squeeze

Generates a BAPPS-val-shaped set stored as the archives store it (256x256 PNGs, read as the
named ``bapps`` dataset at 64 px), warms the process up, then alternates cold runs (each with
an empty decoded-image cache) with ``RunOptions(overlap_decoding=True)`` and ``False`` in one
process, and prints each run's wall and CPU time, the medians and their ratio. Scores are
checked to be identical. On a CPU the runner's default is not to overlap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._data import make_val_like, weights_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.05, help="fraction of BAPPS val size")
    parser.add_argument("--metrics", default="l2,l2-lab,psnr,ssim,ssim-paper")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    metrics = args.metrics.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["IQA_BENCH_WEIGHTS"] = str(weights_folder(tmp / "weights"))
        os.environ["IQA_BENCH_OFFLINE"] = "1"
        from iqa_bench.runner import RunOptions, run_benchmark, store

        make_val_like(tmp / "data" / "bapps", args.scale, stored_scale=4)
        make_val_like(tmp / "warm-up" / "bapps", 0.003, seed=1, stored_scale=4)

        def cold_run(label: str, overlap: bool, data: Path):
            os.environ["IQA_BENCH_CACHE"] = str(tmp / f"cache-{label}")  # empty: a cold run
            opts = RunOptions(progress=False, device=args.device, overlap_decoding=overlap)
            t0, c0 = time.perf_counter(), time.process_time()
            result = run_benchmark(
                "bapps", metrics, tmp / label, opts, log=lambda m: None, data_root=data
            )
            return result, time.perf_counter() - t0, time.process_time() - c0

        cold_run("warm-up", False, tmp / "warm-up")
        wall: dict[bool, list[float]] = {True: [], False: []}
        results = {}
        for r in range(args.rounds):
            for overlap in (True, False) if r % 2 == 0 else (False, True):
                result, seconds, cpu = cold_run(f"r{r}-{overlap}", overlap, tmp / "data")
                wall[overlap].append(seconds)
                results[overlap] = result
                name = "overlapped" if overlap else "chunk first"
                print(f"round {r}: {name:>11}  {seconds:6.2f} s wall  {cpu:6.1f} s CPU", flush=True)
        for name in metrics:
            for task in results[True].manifest["tasks"]:
                a, b = (np.load(store.final_path(results[o].run_dir, name, task)) for o in wall)
                assert all(np.array_equal(a[f], b[f]) for f in a.files), (name, task)
        on, off = statistics.median(wall[True]), statistics.median(wall[False])
        n = results[True].manifest["tasks"]
        print(
            f"samples { ({t: v['n'] for t, v in n.items()}) }, metrics {len(metrics)}; scores "
            f"identical; median cold run: overlapped {on:.2f} s, chunk first {off:.2f} s "
            f"(x{on / off:.2f})"
        )


if __name__ == "__main__":
    main()
