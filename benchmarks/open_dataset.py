"""Time to open a BAPPS-layout dataset (listing, stems, judgment files), fast reader against np.load.

    python benchmarks/open_dataset.py --scale 0.2

Opens the same generated BAPPS-val-shaped set repeatedly, alternating the adapter as it is (small
``.npy`` judgments read by ``read_small_npy``) with the adapter reading every judgment through
``np.load``, and prints the median time of each and their ratio. The second and later openings hit
the OS file cache, as a warm benchmark run does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._data import make_val_like  # noqa: E402
from iqa_bench.datasets import bapps, open_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.2, help="fraction of BAPPS val size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default=None, help="an existing BAPPS-layout folder to open")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else make_val_like(Path(tmp) / "bapps", args.scale)
        fast = bapps.read_small_npy

        def numpy_load(path):
            return np.load(path, allow_pickle=False)

        times: dict[str, list[float]] = {"read_small_npy": [], "np.load": []}
        open_dataset(str(root))  # fill the OS file cache
        for _ in range(args.rounds):
            for label, reader in (("read_small_npy", fast), ("np.load", numpy_load)):
                bapps.read_small_npy = reader
                t0 = time.perf_counter()
                ds = open_dataset(str(root))
                times[label].append(time.perf_counter() - t0)
        bapps.read_small_npy = fast
        n = {task: len(ds.samples(task)) for task in ds.tasks()}
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"samples {n}")
        for label, t in med.items():
            print(f"{label:>15}: {t:6.2f} s  ({1e6 * t / sum(n.values()):.0f} us per sample)")
        print(f"speed-up x{med['np.load'] / med['read_small_npy']:.2f}")


if __name__ == "__main__":
    main()
