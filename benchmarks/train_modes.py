"""Cost of one epoch of ``train-lin`` in each mode (lin, tune, scratch) on a generated split.

    IQA_BENCH_WEIGHTS=../shared/weights python benchmarks/train_modes.py --n 500 --backbone alex

Writes a BAPPS-layout train split of ``--n`` 64 x 64 triplets (``make_bapps_layout``, random
judgments), then trains each mode for one epoch at the paper's batch size (50) in a fresh process
and prints, per mode: wall time of the process, the manifest's feature time (lin: trunk pass over
the split, cached; tune/scratch: none), the epoch's training time, and the process's peak RSS
(``ru_maxrss``, which includes the interpreter and torch: ~0.3-0.4 GB before any work).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from iqa_bench.datasets.bapps_layout import make_bapps_layout  # noqa: E402

_CODE = """
import resource, sys
from iqa_bench.cli import main
code = main(sys.argv[1:])
print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def one_epoch(mode: str, root: Path, out: Path, backbone: str, device: str) -> dict:
    args = ["train-lin", "--mode", mode, "--backbone", backbone, "--dataset", str(root),
            "--out", str(out), "--epochs", "1", "--epochs-decay", "0", "--quiet",
            "--cache-dir", str(out.parent / "cache"), "--device", device]  # fmt: skip
    if mode == "scratch":
        args.append("--no-pretrained")
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CODE, *args], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t0
    rss = next(line for line in done.stdout.splitlines() if line.startswith("peak_rss_kib"))
    manifest = json.loads(out.with_suffix(".json").read_text())
    return {
        "mode": mode,
        "wall_s": round(wall, 1),
        "features_s": manifest["timings"]["features_s"],
        "epoch_s": manifest["history"][-1]["seconds"],
        "peak_rss_mib": round(int(rss.split()[1]) / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="training triplets (default 500)")
    parser.add_argument("--backbone", default="alex")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", default="lin,tune,scratch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_bapps_layout(Path(tmp) / "data", {"mix": args.n}, None, "train")
        for mode in args.modes.split(","):
            out = Path(tmp) / "out" / f"{args.backbone}-{mode}-cost.pth"
            print(json.dumps(one_epoch(mode, root, out, args.backbone, args.device)), flush=True)


if __name__ == "__main__":
    main()
