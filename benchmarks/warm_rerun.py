"""Warm rerun (every result reused) on a BAPPS-val-shaped set: what checking the data costs.

Each ``--src`` checkout (default: this one) runs in its own process on the same generated set:
one cold run of ``l2`` into its own folder, then ``--rounds`` warm reruns that reuse everything.
Comparing the checkout before and after a change of the reuse checks, in one invocation, shows
their cost as a difference against a peer measured under the same machine load:

    python benchmarks/warm_rerun.py --scale 1.0 --src /tmp/old-checkout --src .
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import iqa_bench
from iqa_bench.runner import RunOptions, run_benchmark
root, out, rounds = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
opts = RunOptions(progress=False, device="cpu")
run_benchmark(root, ["l2"], out, opts, log=lambda m: None)
times = []
for _ in range(rounds):
    t = time.perf_counter()
    run_benchmark(root, ["l2"], out, opts, log=lambda m: None)
    times.append(time.perf_counter() - t)
print(json.dumps({"src": iqa_bench.__file__, "times": times}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="share of BAPPS val's size")
    parser.add_argument("--rounds", type=int, default=5, help="warm reruns per checkout")
    parser.add_argument("--src", action="append", type=Path, help="checkout (repeatable)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from benchmarks._data import make_val_like

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dict(os.environ, IQA_BENCH_CACHE=str(work / "cache"), IQA_BENCH_OFFLINE="1")
        t = time.perf_counter()
        root = make_val_like(work / "bapps", args.scale, pool=200)
        print(f"generated scale {args.scale} in {time.perf_counter() - t:.1f} s")
        for i, src in enumerate(args.src or [REPO]):
            out = work / f"run{i}"
            cmd = [sys.executable, "-c", _CHILD, str(src.resolve()), str(root), str(out)]
            proc = subprocess.run(
                [*cmd, str(args.rounds)], env=env, capture_output=True, text=True, check=True
            )
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            times = [round(x, 3) for x in result["times"]]
            print(f"{result['src']}: warm reruns {times} s, median {statistics.median(times):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
