"""Peak RSS of a run on a BAPPS-train-sized set (~150k triplets) against a BAPPS-val-sized one.

    python benchmarks/memory.py --metrics l2 --small 36344 --large 151000

Each run is a fresh process (``ru_maxrss``), scoring a generated 2AFC set (hard-linked pool, see
``_data.py``) with the decoded-image cache on, as a user's first run would. Prints both peaks and
their ratio; memory should not grow with the dataset beyond its small per-sample arrays.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._data import VAL_2AFC, make_val_like, weights_folder  # noqa: E402


def peak_rss(root: Path, out: Path, metrics: list[str]) -> tuple[float, float]:
    code = (
        "import resource; from iqa_bench.runner import RunOptions, run_benchmark;"
        f"run_benchmark({str(root)!r}, {metrics!r}, {str(out)!r}, RunOptions(progress=False),"
        " log=lambda m: None);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics", default="l2")
    parser.add_argument("--small", type=int, default=36344, help="triplets in the small set")
    parser.add_argument("--large", type=int, default=151000, help="triplets in the large set")
    args = parser.parse_args()
    total = sum(VAL_2AFC.values())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["IQA_BENCH_WEIGHTS"] = str(weights_folder(tmp / "weights"))
        os.environ["IQA_BENCH_CACHE"] = str(tmp / "cache")
        os.environ["IQA_BENCH_OFFLINE"] = "1"
        results = {}
        for label, n in (("small", args.small), ("large", args.large)):
            root = make_val_like(tmp / label, scale=n / total)
            (root / "jnd").exists() and __import__("shutil").rmtree(root / "jnd")
            rss, secs = peak_rss(root, tmp / f"run-{label}", args.metrics.split(","))
            results[label] = rss
            print(f"{label}: {n} triplets, peak RSS {rss:.0f} MB, {secs:.0f} s")
        print(f"large/small peak RSS ratio {results['large'] / results['small']:.2f}")


if __name__ == "__main__":
    main()
