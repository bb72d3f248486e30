"""Bridged metrics through the runner against each library's own loop, same images, same process.

    python benchmarks/bridges_throughput.py --n 128 --size 64

Builds a BAPPS-layout 2AFC set of ``--n`` triplets of ``--size`` px, scores it with each bridged
metric through ``run_benchmark`` (batch 64; the metric's scoring time from the manifest, decoding
excluded, as it overlaps scoring in worker threads) and with a plain loop over the same decoded
images in batches of 64 calling the library directly (distorted, reference), and prints image
pairs per second of both (median of ``--rounds``), their ratio, and whether the scores agree.
Metrics whose minimum size exceeds ``--size`` are left out (MS-SSIM needs ``--size 161``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from iqa_bench import create_metric  # noqa: E402
from iqa_bench.datasets.bapps_layout import make_bapps_layout  # noqa: E402
from iqa_bench.images import read_image_uint8  # noqa: E402
from iqa_bench.runner import RunOptions, run_benchmark, store  # noqa: E402

METRICS = [
    "fsim", "fsimc", "gmsd", "haarpsi", "mdsi", "ms-ssim", "vif-p", "vsi",
    "torchmetrics:ssim", "torchmetrics:vif", "pyiqa:gmsd",
]  # fmt: skip
BATCH = 64


def _images(root: Path, field: str) -> torch.Tensor:
    files = sorted((root / "2afc" / "val" / "cnn" / field).glob("*.png"))
    return torch.stack([torch.from_numpy(read_image_uint8(f)).permute(2, 0, 1) for f in files])


def library_loop(name: str, images: dict[str, torch.Tensor]) -> tuple[float, np.ndarray]:
    """Seconds of the library's own calls over the set, and its d0 scores."""
    metric = create_metric(name)
    spec, kwargs = metric.spec, {**metric.spec.fixed, **metric.options}
    # pyiqa's own InferenceModel, or the library function the bridge resolved (piq.x, ...)
    call = metric.model if metric.library == "pyiqa" else metric._fn

    def fn(dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return call(dist, ref) if metric.library == "pyiqa" else call(dist, ref, **kwargs)

    seconds, d0 = 0.0, []
    n = len(images["ref"])
    for start in range(0, n, BATCH):
        ref = images["ref"][start : start + BATCH].float() / 255 * spec.input_scale
        for field in ("p0", "p1"):
            dist = images[field][start : start + BATCH].float() / 255 * spec.input_scale
            t0 = time.perf_counter()
            with torch.inference_mode():
                if spec.batched:
                    out = fn(dist, ref)
                else:
                    out = torch.cat([fn(d[None], r[None]).reshape(-1) for d, r in zip(dist, ref)])
            seconds += time.perf_counter() - t0
            if field == "p0":
                d0.append(out.reshape(-1).numpy())
    return seconds, np.concatenate(d0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=128, help="2AFC triplets")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--metrics", default=",".join(METRICS), help="comma-separated names")
    args = parser.parse_args()
    metrics = [m for m in args.metrics.split(",") if create_metric(m).min_size <= args.size]
    print(f"torch threads {torch.get_num_threads()}; {args.n} triplets of {args.size} px")
    print(f"{'metric':<18} {'runner pairs/s':>15} {'library pairs/s':>16} {'ratio':>6}  scores")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_bapps_layout(tmp / "set", {"cnn": args.n}, None, size=args.size)
        images = {f: _images(root, f) for f in ("ref", "p0", "p1")}
        opts = RunOptions(batch_size=BATCH, progress=False, reuse=False, decode_cache=False)
        pairs = 2 * args.n
        for name in metrics:
            ours, theirs = [], []
            for r in range(args.rounds):
                result = run_benchmark(str(root), [name], tmp / f"run{r}", opts, log=lambda m: None)
                ours.append(result.manifest["metrics"][name]["timings"]["2afc"])
                seconds, d0 = library_loop(name, images)
                theirs.append(seconds)
            with np.load(store.final_path(result.run_dir, name, "2afc")) as data:
                same = np.array_equal(data["d0"].astype(np.float32), d0.astype(np.float32))
            a, b = pairs / statistics.median(ours), pairs / statistics.median(theirs)
            print(
                f"{name:<18} {a:>15.1f} {b:>16.1f} {a / b:>6.2f}  {'equal' if same else 'DIFFER'}"
            )


if __name__ == "__main__":
    main()
