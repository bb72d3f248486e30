"""Fingerprint every number a run produces, to show that a refactoring changed none of them.

Runs every available metric (``--metrics all``: metrics whose weights are absent are skipped and
listed) on the ``synthetic`` set and on a seeded BAPPS-layout fixture, then hashes each metric's
per-sample scores (float64 bytes with their sample ids) and the report's tidy ``results.csv``.

    python benchmarks/numbers_fingerprint.py --save before.json   # on the old code
    python benchmarks/numbers_fingerprint.py --check before.json  # on the new code: exit 1 if any differ

Scores depend on the machine and the torch build (float32 convolutions), so compare fingerprints
taken on one machine with one environment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes() if a.dtype != object else str(a).encode())
    return h.hexdigest()


def _fingerprint_run(run_dir: Path, reports: Path) -> dict[str, str]:
    from iqa_bench.reports import write_report
    from iqa_bench.tasks import TASKS

    out: dict[str, str] = {}
    for path in sorted((run_dir / "scores").glob("*/*.npz")):
        with np.load(path) as data:  # the numbers only, not provenance stored beside them
            fields = ("sample_id", *TASKS[path.stem].scores)
            out[f"{path.parent.name}/{path.stem}"] = _digest(*(data[k] for k in fields))
    folder = write_report(run_dir, reports, n_boot=200, n_perm=500, seed=0)
    csv = (folder / "results.csv").read_bytes()
    out["results.csv"] = hashlib.sha256(csv).hexdigest()
    return out


def fingerprint(work: Path) -> dict[str, dict[str, str]]:
    """``{dataset: {"<metric>/<task>": digest, "results.csv": digest}}`` of fresh runs in ``work``."""
    os.environ["IQA_BENCH_CACHE"] = str(work / "cache")
    os.environ["IQA_BENCH_DATA"] = str(work / "data")
    from iqa_bench.datasets.bapps_layout import make_bapps_layout
    from iqa_bench.runner import RunOptions, run_benchmark

    bapps = make_bapps_layout(
        work / "bapps", {"traditional": 24, "cnn": 20}, {"traditional": 16, "cnn": 12}, seed=3
    )
    options = RunOptions(progress=False, batch_size=16, decode_cache=False)
    out = {}
    for name, dataset in (("synthetic", "synthetic"), ("bapps-layout", str(bapps))):
        download = name == "synthetic"  # generated on first use
        result = run_benchmark(dataset, "all", work / "runs" / name, options, download=download)
        out[name] = _fingerprint_run(result.run_dir, work / "reports")
        out[name]["skipped"] = ",".join(sorted(result.skipped))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the fingerprint to this JSON file")
    group.add_argument("--check", type=Path, help="compare with this JSON file; exit 1 on a change")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        current = fingerprint(Path(tmp))
    if args.save:
        args.save.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        print(f"saved {sum(len(v) for v in current.values())} digests to {args.save}")
        return 0
    before = json.loads(args.check.read_text())
    changed = [
        f"{ds}: {key}"
        for ds in sorted(set(before) | set(current))
        for key in sorted(set(before.get(ds, {})) | set(current.get(ds, {})))
        if before.get(ds, {}).get(key) != current.get(ds, {}).get(key)
    ]
    for line in changed:
        print(f"changed: {line}")
    total = sum(len(v) for v in current.values())
    print(f"{total - len(changed)} of {total} digests identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
