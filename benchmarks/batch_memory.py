"""Peak RSS of scoring large images with the classical metrics, shared embeddings released or kept.

    python benchmarks/batch_memory.py --size 1024 --triplets 8

Scores a generated BAPPS-layout 2AFC set of ``size`` x ``size`` images with ``l2, l2-lab, psnr,
ssim, ssim-paper`` (the default ``--max-batch-pixels`` puts 4 megapixel images 4 to a batch), each
run in a fresh process (``ru_maxrss``): once as the runner is (an embedding is released as soon as
no later metric in the batch needs it) and once with releasing switched off (every metric's
float64 images, Lab images and SSIM statistics held until the batch ends). Prints both peaks.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from iqa_bench.datasets.bapps_layout import make_bapps_layout  # noqa: E402

METRICS = ["l2", "l2-lab", "psnr", "ssim", "ssim-paper"]


def peak_rss_mb(root: Path, out: Path, release: bool) -> float:
    code = (
        "import resource\n"
        "from iqa_bench.runner import RunOptions, run_benchmark, task_run\n"
        + ("" if release else "task_run.SharedEmbeddings.release = lambda self, keys: None\n")
        + f"run_benchmark({str(root)!r}, {METRICS!r}, {str(out)!r},"
        " RunOptions(progress=False, decode_cache=False), log=lambda m: None)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--triplets", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_bapps_layout(
            Path(tmp) / "bapps", {"large": args.triplets}, None, size=args.size
        )
        released = peak_rss_mb(root, Path(tmp) / "a", release=True)
        kept = peak_rss_mb(root, Path(tmp) / "b", release=False)
    print(f"{args.triplets} triplets of {args.size}x{args.size}, metrics {', '.join(METRICS)}")
    print(f"peak RSS: released {released:.0f} MB, kept {kept:.0f} MB (x{kept / released:.2f})")


if __name__ == "__main__":
    main()
