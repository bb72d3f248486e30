"""Time of the SRCC/KRCC/PLCC bootstrap: resample refits batched vs one ``curve_fit`` per resample.

    python benchmarks/plcc_bootstrap.py --sizes 3000,10125 --n-boot 200

For each dataset size (TID2013 has 3000 distorted images, KADID-10k 10125), the same resamples
of generated scores are evaluated both ways in the same process: ``correlations`` as shipped
(SRCC as row ranks, PLCC refits batched by ``stats.logistic.fit_rows``) and the previous
per-resample loop (``spearmanr``, ``kendalltau`` and a warm-started ``curve_fit`` per resample).
Prints both times, their ratio, and the largest difference of a resample's PLCC between the two.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iqa_bench.stats import correlation as corr  # noqa: E402


def _scores(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quality = rng.random(n)
    mos = 1 + 4 / (1 + np.exp(-8 * (quality - 0.5))) + 0.4 * rng.standard_normal(n)
    return quality + 0.1 * rng.standard_normal(n), mos


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="3000,10125")
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    for n in (int(v) for v in args.sizes.split(",")):
        x, y = _scores(n)
        _, _, warm = corr._plcc_oriented(x, y, "5pl")
        idx = np.random.default_rng(1).integers(0, n, size=(args.n_boot, n))

        t0 = time.perf_counter()
        reps_batched = []
        rows = max(1, corr._BLOCK_ENTRIES // (5 * n))
        for start in range(0, args.n_boot, rows):
            xb, yb = x[idx[start : start + rows]], y[idx[start : start + rows]]
            corr._srcc_rows(xb, yb)
            [corr._krcc(a, b) for a, b in zip(xb, yb)]
            reps_batched.append(corr._plcc_rows(xb, yb, "5pl", warm)[0])
        batched = time.perf_counter() - t0

        t0 = time.perf_counter()
        reps_loop = []
        for i in idx:
            xb, yb = x[i], y[i]
            corr._srcc(xb, yb), corr._krcc(xb, yb)
            reps_loop.append(corr._plcc_oriented(xb, yb, "5pl", warm, corr.RESAMPLE_TOLERANCE)[0])
        loop = time.perf_counter() - t0

        diff = np.nanmax(np.abs(np.concatenate(reps_batched) - np.array(reps_loop)))
        print(
            f"n={n:>6} resamples={args.n_boot}: per-resample loop {loop:6.2f} s, batched "
            f"{batched:6.2f} s, speed-up x{loop / batched:.1f}, max |PLCC difference| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
