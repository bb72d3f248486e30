"""Images per second of LPIPS per trunk: iqa-bench against the reference ``lpips`` package.

    python benchmarks/throughput.py --rounds 5

For each trunk (alex, squeeze, vgg16) and size (64x64, 256x256), at equal batch size in the same
process, the two implementations are timed in alternating rounds on the same tensors (so drifting
machine load hits both), and the median per-round ratio is printed, for two workloads:

- ``pair``: ``d(x, y)`` for a batch of image pairs (images/s counts both images);
- ``2afc``: ``d(ref, p0)`` and ``d(ref, p1)`` per triplet, as the benchmark loop scores BAPPS
  (the reference calls its metric twice; iqa-bench embeds ``ref`` once, and like its runner runs
  the trunk once over ref, p0 and p1 concatenated).

iqa-bench runs as its runner does (channels-last trunk, inference mode, no input checks, and
``torch.compile`` with ``--compile``); the reference runs under ``torch.no_grad`` with
``normalize=True``. ``torchmetrics``' LPIPS module (its ``_LPIPS``, given the same trunk weights)
is timed too when installed. The achieved TFLOP/s of iqa-bench's trunk passes (FLOPs from
``torch.utils.flop_counter``; the LPIPS head not counted, its time is) is printed on every
device, with its share of what a float32 2048x2048 matrix product reaches, timed in the same
rounds (the rate this device sustains in practice, drift included), and of ``--peak-tflops``
when given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
warnings.filterwarnings("ignore", category=UserWarning)

NETS = {
    "alex": ("alex", "lpips-alex"),
    "squeeze": ("squeeze", "lpips-squeeze"),
    "vgg16": ("vgg", "lpips-vgg"),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _reference(net: str, ours, device: torch.device):
    import lpips

    ref = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval().to(device)
    state = ours.trunk.trunk_state_dict()
    ref.net.load_state_dict(
        {
            k: state[re.sub(r"^(slice\d+|slices\.\d+)\.", "features.", k)]
            for k in ref.net.state_dict()
        }
    )
    return ref


def _torchmetrics(net: str, ours, device: torch.device):
    """torchmetrics' LPIPS module with the same trunk weights (its own download fails offline)."""
    try:
        from torchmetrics.functional.image.lpips import _LPIPS
    except ImportError:
        return None
    tm = _LPIPS(pretrained=True, net=net, pnet_rand=True).eval().to(device)
    state = ours.trunk.trunk_state_dict()
    tm.net.load_state_dict(
        {
            k: state[re.sub(r"^(slice\d+|slices\.\d+)\.", "features.", k)]
            for k in tm.net.state_dict()
        }
    )
    return lambda x, y: tm(x, y, normalize=True)


def _matmul(device: torch.device, n: int = 2048):
    """An n x n float32 matrix product and its FLOPs: the peer the trunk's rate is divided by,
    timed in the same rounds so that the machine's drift hits both."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(n, n, generator=g).to(device) for _ in range(2))
    # At the convolutions' float32 precision: cuDNN may use TF32 by default, matmul may not.
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
    return (lambda: a @ b), 2 * n**3


def _trunk_flops_per_image(ours, side: int, device: torch.device) -> int:
    """FLOPs of one trunk pass (LPIPS head excluded) on a side x side image; before compiling."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ours.embed(torch.zeros(1, 3, side, side, device=device))
    return counter.get_total_flops()


def _workloads(ref, ours, tm, x, p0, p1, batch: int) -> dict:
    """mode -> (reference call, iqa-bench call, torchmetrics call or None, images per call)."""

    def ours_2afc():  # as the runner does: one trunk pass over ref, p0 and p1 together
        feats = ours.features(torch.cat([x, p0, p1]))
        e, e0, e1 = (
            ours.embed_features({tap: v[i * batch : (i + 1) * batch] for tap, v in feats.items()})
            for i in range(3)
        )
        return ours.compare(e, e0), ours.compare(e, e1)

    return {
        "pair": (
            lambda: ref(x, p0, normalize=True),
            lambda: ours(x, p0),
            (lambda: tm(x, p0)) if tm else None,
            2 * batch,
        ),
        "2afc": (
            lambda: (ref(x, p0, normalize=True), ref(x, p1, normalize=True)),
            ours_2afc,
            (lambda: (tm(x, p0), tm(x, p1))) if tm else None,
            3 * batch,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-64", type=int, default=50, help="batch size at 64x64")
    parser.add_argument("--batch-256", type=int, default=8, help="batch size at 256x256")
    parser.add_argument("--trunks", default="alex,squeeze,vgg16")
    parser.add_argument("--sizes", default="64,256", help="image sides to time (64 and/or 256)")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak for the dtype used (e.g. 67 for H100 SXM fp32; for a CPU, cores x "
        "GHz x FLOPs per cycle per core, e.g. 2 x 2.5 x 64 / 1000 = 0.32 for two AVX-512 cores "
        "with two FMA units)",
    )
    parser.add_argument(
        "--compile",
        default=None,
        choices=["default", "max-autotune-no-cudagraphs"],
        help="torch.compile iqa-bench's metric (compiled during the warm-up call)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    os.environ.setdefault("IQA_BENCH_OFFLINE", "1")
    import tempfile

    import iqa_bench
    from benchmarks._data import weights_folder

    tmp = tempfile.mkdtemp()
    os.environ["IQA_BENCH_WEIGHTS"] = str(weights_folder(Path(tmp) / "weights"))
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, rounds {args.rounds}, "
        f"compile {args.compile}, cuDNN TF32 {torch.backends.cudnn.allow_tf32}"
    )
    matmul, matmul_flops = _matmul(device)
    sizes = {int(side) for side in args.sizes.split(",")}
    rows = []
    for trunk in args.trunks.split(","):
        net, name = NETS[trunk]
        ours = iqa_bench.create_metric(name, device=device)
        ours.check_inputs = False
        ours.use_channels_last()
        flops_per_image = {side: _trunk_flops_per_image(ours, side, device) for side in sizes}
        if args.compile:
            ours.compile_for_inference(args.compile)
        ref = _reference(net, ours, device)
        tm = _torchmetrics(net, ours, device)
        for size, batch in ((64, args.batch_64), (256, args.batch_256)):
            if size not in sizes:
                continue
            g = torch.Generator().manual_seed(0)
            x, p0, p1 = (torch.rand(batch, 3, size, size, generator=g).to(device) for _ in range(3))
            work = _workloads(ref, ours, tm, x, p0, p1, batch)
            for mode, (f_ref, f_ours, f_tm, images) in work.items():
                with torch.inference_mode():
                    f_ref(), f_ours()  # warm-up (allocators, cuDNN/oneDNN algorithm choice)
                    matmul()
                    t_ref, t_ours, t_tm, t_mm = [], [], [], []
                    for _ in range(args.rounds):
                        t_ref.append(_timed(f_ref, device))
                        t_ours.append(_timed(f_ours, device))
                        if f_tm:
                            t_tm.append(_timed(f_tm, device))
                        t_mm.append(_timed(matmul, device))
                ratio = statistics.median(r / o for r, o in zip(t_ref, t_ours))
                row = {
                    "trunk": trunk,
                    "size": size,
                    "batch": batch,
                    "mode": mode,
                    "ref_img_s": round(images / statistics.median(t_ref), 1),
                    "iqa_img_s": round(images / statistics.median(t_ours), 1),
                    "ratio": round(ratio, 2),
                }
                if mode == "2afc":
                    row["iqa_triplets_s"] = round(row["iqa_img_s"] / 3, 1)
                if t_tm:
                    row["torchmetrics_img_s"] = round(images / statistics.median(t_tm), 1)
                passes = 3 if mode == "2afc" else 2  # trunk passes per triplet / pair
                flops = flops_per_image[size] * passes * batch
                row["iqa_tflops"] = round(flops / statistics.median(t_ours) / 1e12, 3)
                # Per round, the trunk's rate over the matrix product's, then the median.
                row["matmul_tflops"] = round(matmul_flops / statistics.median(t_mm) / 1e12, 3)
                row["of_matmul"] = round(
                    statistics.median(
                        (flops / o) / (matmul_flops / m) for o, m in zip(t_ours, t_mm)
                    ),
                    3,
                )
                if args.peak_tflops:
                    row["of_peak"] = round(row["iqa_tflops"] / args.peak_tflops, 3)
                rows.append(row)
                print(
                    f"{trunk:>7} {size:>3}px b{batch:<3} {mode:<4}  reference {row['ref_img_s']:>8} img/s"
                    f"  iqa-bench {row['iqa_img_s']:>8} img/s  ratio x{ratio:.2f}"
                    + (f" ({row['iqa_triplets_s']} triplets/s)" if mode == "2afc" else "")
                    + (f"  torchmetrics {row['torchmetrics_img_s']}" if t_tm else "")
                    + f"  {row['iqa_tflops']} TFLOP/s (trunk; {100 * row['of_matmul']:.0f}% of a "
                    f"2048 matrix product's {row['matmul_tflops']})"
                    + (f", {100 * row['of_peak']:.0f}% of peak" if "of_peak" in row else "")
                )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
