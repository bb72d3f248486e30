"""Start-up: whole-process wall time of short iqa-bench commands against ``import torch``.

Each command runs in a fresh interpreter, the commands alternating round by round (so a change of
machine load hits all of them alike); the best and the median of the rounds are printed.

- ``import torch``: ``python -c "import torch"``, the floor of any torch program;
- ``lpips package``: the ``lpips`` README's three lines (``lpips.LPIPS(net='alex')``, two
  ``lpips.im2tensor(...)`` of the images read by PIL (``lpips.load_image`` needs OpenCV, not
  installed here), one call) on the same pair. torchvision loads the whole
  AlexNet checkpoint from ``$TORCH_HOME``; offline, the script writes one there from the real
  features file plus a random classifier (the file's size, not its values, matters here);
- ``iqa-bench score``: ``score --metric lpips-alex`` on one 64x64 pair;
- ``iqa-bench list``;
- ``iqa-bench run (small)``: ``run --no-report`` of ``lpips-alex,l2`` on 60 BAPPS-layout triplets and
  20 JND pairs;
- with ``--large``: ``run --no-report`` of ``lpips-alex,lpips-squeeze,l2`` on 1,500 triplets and 500
  JND pairs, beside the reference evaluation loop (``reference_loop.py``) on the same set and
  metrics, in a process of its own.

``--baseline DIR`` adds the same iqa-bench commands run from another checkout (e.g. the main
branch) in the same rounds, for a before/after comparison.

    python benchmarks/startup.py --rounds 5
    python benchmarks/startup.py --rounds 3 --large --baseline ../main

Trunk weights: the real alex/squeeze files from ``IQA_BENCH_WEIGHTS`` (default ``../shared/weights``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SUBSETS = ("traditional", "cnn", "superres", "deblur", "color", "frameinterp")
LARGE_METRICS = "lpips-alex,lpips-squeeze,l2"

LPIPS_THREE_LINES = """
import lpips, sys, numpy as np
from PIL import Image
loss_fn = lpips.LPIPS(net="alex", verbose=False)
img0, img1 = (lpips.im2tensor(np.asarray(Image.open(p).convert("RGB"))) for p in sys.argv[1:3])
print(float(loss_fn(img0, img1)))
"""

REFERENCE_LOOP = """
import sys, torch
from pathlib import Path
sys.path.insert(0, {repo!r})
from benchmarks.reference_loop import score_reference
folder = Path({weights!r})
states = {{net: torch.load(folder / name, weights_only=True) for net, name in {files!r}.items()}}
for metric in {metrics!r}:
    score_reference(Path({root!r}), metric, states, 50, 2)
"""


def write_torch_hub_alexnet(torch_home: Path, weights: Path) -> None:
    """torchvision's AlexNet checkpoint file where ``lpips`` looks for it (offline stand-in)."""
    import torch

    from iqa_bench import trunks

    target = torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    target.parent.mkdir(parents=True, exist_ok=True)
    state = trunks.alexnet().state_dict()
    state.update(torch.load(weights / "alexnet-owt-7be5be79-features.pth", weights_only=True))
    torch.save(state, target)


def make_data(tmp: Path) -> dict[str, Path]:
    """The image pair and the small BAPPS-layout set (and nothing large)."""
    import numpy as np
    from PIL import Image

    from iqa_bench.datasets.bapps_layout import make_bapps_layout

    rng = np.random.default_rng(0)
    pair = [tmp / "a.png", tmp / "b.png"]
    for path in pair:
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    small = make_bapps_layout(
        tmp / "small", {s: 10 for s in SUBSETS}, {"traditional": 10, "cnn": 10}
    )
    return {"a": pair[0], "b": pair[1], "small": small}


def iqa_commands(data: dict[str, Path], out: Path, large: Path | None) -> dict[str, list[str]]:
    """The iqa-bench commands, as arguments after ``python -m iqa_bench.cli``."""
    commands = {
        "score": ["score", "--metric", "lpips-alex", str(data["a"]), str(data["b"])],
        "list": ["list"],
        "run (small)": ["run", "--dataset", str(data["small"]), "--metrics", "lpips-alex,l2"]
        + ["--out", str(out / "small"), "--no-report", "--quiet", "--recompute"],
    }
    if large is not None:
        commands["run (large)"] = ["run", "--dataset", str(large), "--metrics", LARGE_METRICS]
        commands["run (large)"] += ["--out", str(out / "large"), "--no-report", "--quiet"]
        commands["run (large)"] += ["--recompute", "--no-decode-cache"]
    return commands


def all_commands(args, data, tmp: Path, large: Path | None) -> dict[str, tuple[list[str], dict]]:
    """Every timed command: name -> (argv, extra environment)."""
    py = sys.executable
    commands = {
        "import torch": ([py, "-c", "import torch"], {}),
        "lpips package": (
            [py, "-c", LPIPS_THREE_LINES, str(data["a"]), str(data["b"])],
            {"TORCH_HOME": str(tmp / "torch")},
        ),
    }
    checkouts = {"iqa-bench": REPO}
    if args.baseline:
        checkouts["baseline"] = Path(args.baseline).resolve()
    for label, checkout in checkouts.items():
        for name, argv in iqa_commands(data, tmp / label, large).items():
            commands[f"{label} {name}"] = (
                [py, "-m", "iqa_bench.cli", *argv],
                {"PYTHONPATH": str(checkout)},
            )
    if large is not None:
        files = {
            "alex": "alexnet-owt-7be5be79-features.pth",
            "squeeze": "squeezenet1_1-b8a52dc0-features.pth",
        }
        code = REFERENCE_LOOP.format(
            repo=str(REPO),
            weights=os.environ["IQA_BENCH_WEIGHTS"],
            files=files,
            metrics=LARGE_METRICS.split(","),
            root=str(large),
        )
        commands["reference loop (large)"] = ([py, "-c", code], {})
    return commands


def time_once(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall time of one fresh process; ``cwd`` is neutral so ``-m`` imports the PYTHONPATH checkout."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])} ... failed:\n{done.stderr[-2000:]}")
    return elapsed


def report(times: dict[str, list[float]]) -> None:
    torch_best = min(times["import torch"])
    print(f"\n{'command':<34} {'best s':>7} {'median s':>9} {'best / import torch':>20}")
    for name, values in times.items():
        best = min(values)
        print(f"{name:<34} {best:7.2f} {statistics.median(values):9.2f} {best / torch_best:19.2f}x")
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--large", action="store_true", help="add the 1,500 + 500 sample runs")
    parser.add_argument("--baseline", help="another checkout to time the same commands from")
    args = parser.parse_args()
    os.environ.setdefault("IQA_BENCH_WEIGHTS", str(REPO.parent / "shared" / "weights"))
    os.environ["IQA_BENCH_OFFLINE"] = "1"
    os.environ["TQDM_DISABLE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["IQA_BENCH_CACHE"] = str(tmp / "cache")
        data = make_data(tmp)
        write_torch_hub_alexnet(tmp / "torch", Path(os.environ["IQA_BENCH_WEIGHTS"]))
        large = None
        if args.large:
            from iqa_bench.datasets.bapps_layout import make_bapps_layout

            large = make_bapps_layout(
                tmp / "large", {s: 250 for s in SUBSETS}, {"traditional": 250, "cnn": 250}
            )
        commands = all_commands(args, data, tmp, large)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for r in range(args.rounds):
            for name, (argv, env) in commands.items():
                times[name].append(time_once(argv, env, tmp))
            print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.2f}" for n, v in times.items()))
        report(times)


if __name__ == "__main__":
    main()
