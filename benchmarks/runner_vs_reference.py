"""iqa-bench's runner against the reference evaluation loop on the same generated BAPPS-layout set.

Prints, in one run on one machine: (a) lpips-alex alone and (b) the full metric table, wall time
of the reference loop (``reference_loop.py``: the original script's PIL data loader, one metric at a
time, run under ``torch.no_grad`` to give the reference its best case) and of ``run_benchmark``
(decode once, 3 trunk passes per triplet), and their ratio; then the peak RSS of iqa-bench runs on
1x and 4x the samples (each in a fresh process) to show memory does not grow with the dataset.

    python benchmarks/runner_vs_reference.py --per-subset 200 --jnd-per-subset 300

Trunk weights: the real alex/squeeze files from ``IQA_BENCH_WEIGHTS`` (default ``../shared/weights``);
VGG16 random when its file is absent (speed does not depend on the weight values).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

from benchmarks.reference_loop import score_reference  # noqa: E402
from iqa_bench.datasets.bapps_layout import make_bapps_layout  # noqa: E402

SUBSETS = ("traditional", "cnn", "superres", "deblur", "color", "frameinterp")
TABLE = [
    "l2",
    "l2-lab",
    "psnr",
    "ssim",
    "ssim-paper",
    "lpips-alex",
    "lpips-alex-v0.0",
    "lpips-alex-baseline",
    "lpips-squeeze",
    "lpips-squeeze-v0.0",
    "lpips-squeeze-baseline",
    "lpips-vgg",
    "lpips-vgg-v0.0",
    "lpips-vgg-baseline",
]


def prepare_weights(folder: Path) -> dict[str, dict]:
    """A weights folder for both implementations; returns trunk state dicts by lpips net name."""
    import iqa_bench
    from iqa_bench.backbones import BACKBONES

    folder.mkdir(parents=True, exist_ok=True)
    real = os.environ.get("IQA_BENCH_WEIGHTS") or str(REPO.parent / "shared" / "weights")
    states = {}
    for backbone, net in (("alex", "alex"), ("squeezenet1_1", "squeeze"), ("vgg16", "vgg")):
        spec = BACKBONES.get(backbone)
        target = folder / spec.weights.features_file
        source = Path(real) / spec.weights.features_file if real else None
        if source is not None and source.is_file():
            target.write_bytes(source.read_bytes())
        elif spec.weights.features_sha256:
            sys.exit(
                f"{spec.weights.features_file} not found: set IQA_BENCH_WEIGHTS to the folder "
                "of real trunk weights (see ../shared/weights/README.md)"
            )
        else:
            torch.manual_seed(0)
            metric = iqa_bench.create_metric(f"lpips-{net}-baseline", pretrained=False)
            torch.save(metric.trunk.trunk_state_dict(), target)
        states[net] = torch.load(target, weights_only=True)
    return states


def time_iqa(root: Path, metrics: list[str], out: Path, batch_size: int, workers: int) -> float:
    from iqa_bench.runner import RunOptions, run_benchmark

    t0 = time.perf_counter()
    run_benchmark(
        str(root),
        metrics,
        out,
        RunOptions(batch_size=batch_size, workers=workers, progress=False),
        log=lambda m: None,
    )
    return time.perf_counter() - t0


def time_reference(
    root: Path, metrics: list[str], states: dict, batch_size: int, workers: int
) -> float:
    t0 = time.perf_counter()
    for metric in metrics:
        score_reference(root, metric, states, batch_size, workers)
    return time.perf_counter() - t0


def peak_rss_mb(root: Path, out: Path, metrics: list[str]) -> float:
    code = (
        "import resource, sys; from iqa_bench.runner import RunOptions, run_benchmark;"
        f"run_benchmark({str(root)!r}, {metrics!r}, {str(out)!r}, RunOptions(progress=False),"
        " log=lambda m: None);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-subset", type=int, default=200, help="2AFC triplets per val subset")
    parser.add_argument("--jnd-per-subset", type=int, default=300, help="JND pairs per subset")
    parser.add_argument("--batch-size", type=int, default=50, help="both sides (reference default)")
    parser.add_argument("--workers", type=int, default=2, help="loader workers/threads, both sides")
    parser.add_argument("--skip-table", action="store_true", help="only (a) lpips-alex")
    parser.add_argument(
        "--no-vgg",
        action="store_true",
        help="leave the VGG16 metrics out of (b), as make bench does without them",
    )
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        states = prepare_weights(tmp / "weights")
        os.environ["IQA_BENCH_WEIGHTS"] = str(tmp / "weights")
        os.environ["IQA_BENCH_OFFLINE"] = "1"
        root = make_bapps_layout(
            tmp / "bapps",
            {s: args.per_subset for s in SUBSETS},
            {"traditional": args.jnd_per_subset, "cnn": args.jnd_per_subset},
        )
        n = f"{len(SUBSETS) * args.per_subset} triplets + {2 * args.jnd_per_subset} JND pairs"
        print(
            f"dataset: {n}, batch {args.batch_size}, {args.workers} workers, "
            f"torch threads {torch.get_num_threads()}"
        )
        results = {}
        table = [m for m in TABLE if not (args.no_vgg and "vgg" in m)]
        cases = [("a", ["lpips-alex"])] + ([] if args.skip_table else [("b", table)])
        for label, metrics in cases:
            ref = time_reference(root, metrics, states, args.batch_size, args.workers)
            ours = time_iqa(root, metrics, tmp / f"run-{label}", args.batch_size, args.workers)
            results[label] = {
                "metrics": len(metrics),
                "reference_s": round(ref, 2),
                "iqa_bench_s": round(ours, 2),
                "speedup": round(ref / ours, 2),
            }
            print(
                f"({label}) {len(metrics)} metric(s): reference {ref:.1f} s, iqa-bench {ours:.1f} s,"
                f" speed-up x{ref / ours:.2f}"
            )
        if not args.skip_rss:
            big = make_bapps_layout(
                tmp / "bapps4",
                {s: 4 * args.per_subset for s in SUBSETS},
                {"traditional": 4 * args.jnd_per_subset, "cnn": 4 * args.jnd_per_subset},
            )
            one = peak_rss_mb(root, tmp / "rss1", ["l2", "lpips-alex"])
            four = peak_rss_mb(big, tmp / "rss4", ["l2", "lpips-alex"])
            results["rss"] = {
                "1x_mb": round(one, 1),
                "4x_mb": round(four, 1),
                "ratio": round(four / one, 3),
            }
            print(
                f"peak RSS (l2 + lpips-alex): 1x {one:.0f} MB, 4x {four:.0f} MB, ratio {four / one:.2f}"
            )
        print(json.dumps(results))


if __name__ == "__main__":
    main()
