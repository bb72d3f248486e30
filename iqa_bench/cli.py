"""Command-line interface: ``iqa-bench list | score | run | report | download | bench | compare``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_list(args: argparse.Namespace) -> int:
    from .metrics import list_metrics

    rows = [
        (
            m.name,
            m.version,
            "higher=better" if m.higher_is_better else "lower=better",
            m.group,
            m.description,
        )
        for m in list_metrics()
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  ver  orientation    group          description")
    for name, version, orient, group, desc in rows:
        print(f"{name:<{width}}  v{version:<3} {orient:<14} {group:<14} {desc}")
    if args.all:
        from .backbones import BACKBONES

        print("\nbackbones:")
        for name in BACKBONES:
            spec = BACKBONES.get(name)
            print(f"  {name}: taps {', '.join(spec.taps)}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    import torch

    from .images import read_image_uint8
    from .metrics import create_metric

    metric = create_metric(args.metric, device=args.device)
    tensors = []
    for path in (args.img0, args.img1):
        array = read_image_uint8(path)
        tensors.append(
            torch.from_numpy(array).permute(2, 0, 1)[None].float().div(255).to(metric.device)
        )
    with torch.inference_mode():
        value = float(metric(*tensors)[0])
    print(f"{value:.6f}")
    return 0


def _split_metrics(text: str) -> list[str] | str:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return "all" if names in ([], ["all"]) else names


def _run(args: argparse.Namespace, download: bool):
    from .runner import RunOptions, run_benchmark

    options = RunOptions(
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        skip_bad=args.skip_bad,
        workers=args.workers,
        progress=not args.quiet,
        resize=args.resize,
        decode_cache=not args.no_decode_cache,
        reuse=not args.recompute,
    )
    return run_benchmark(
        args.dataset,
        _split_metrics(args.metrics),
        args.out,
        options,
        data_root=args.data_root,
        split=args.split,
        download=download or args.download,
    )


def _report(run_dir, args: argparse.Namespace) -> int:
    from .reports import summarize, terminal_summary, write_report

    summary = summarize(run_dir, n_boot=args.n_boot, n_perm=args.n_perm, seed=args.seed)
    folder = write_report(run_dir, reports_root=args.reports_dir, summary=summary)
    print(terminal_summary(summary))
    print(f"\nreport: {folder}/report.html (also report.md, report.tex, results.csv, figures/)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    result = _run(args, download=False)
    if int(__import__("os").environ.get("RANK", "0")) != 0:
        return 0
    print(f"results: {result.run_dir}")
    return 0 if args.no_report else _report(result.run_dir, args)


def _cmd_bench(args: argparse.Namespace) -> int:
    result = _run(args, download=True)
    if int(__import__("os").environ.get("RANK", "0")) != 0:
        return 0
    print(f"results: {result.run_dir}")
    return _report(result.run_dir, args)


def _cmd_report(args: argparse.Namespace) -> int:
    return _report(args.run_dir, args)


def _cmd_compare(args: argparse.Namespace) -> int:
    from .reports import compare_runs
    from .results import load_run

    print(
        compare_runs(load_run(args.run_a), load_run(args.run_b), n_perm=args.n_perm, seed=args.seed)
    )
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .datasets import download_dataset

    parts = [p for p in (args.parts or "").split(",") if p] or None
    path = download_dataset(args.name, data_root=args.data_root, parts=parts, force=args.force)
    print(f"{args.name}: ready in {path}")
    return 0


def _add_stats_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reports-dir", default="reports", help="root of report folders (default reports)"
    )
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--n-perm", type=int, default=10000, help="permutations for significance")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")


def _add_run_options(p: argparse.ArgumentParser, default_dataset: str | None) -> None:
    p.add_argument(
        "--dataset",
        required=default_dataset is None,
        default=default_dataset,
        help="dataset card name (synthetic, bapps) or a path in BAPPS layout / CSV",
    )
    p.add_argument("--metrics", default="all", help="comma-separated metric names, or all")
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA if present)")
    p.add_argument(
        "--dtype",
        default="fp32",
        choices=["fp32", "bf16", "fp16"],
        help="autocast precision of the trunks (feature normalisation stays fp32)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--chunk-size", type=int, default=4096, help="samples per resumable chunk")
    p.add_argument("--workers", type=int, default=2, help="image-decoding threads")
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="record undecodable samples as failed (counted in the manifest)",
    )
    p.add_argument("--data-root", default=None, help="data root (default $IQA_BENCH_DATA)")
    p.add_argument("--split", default="val", help="2AFC split (val or train)")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--no-decode-cache",
        action="store_true",
        help="do not keep decoded images in the cache (decode the image files every run)",
    )
    p.add_argument(
        "--recompute",
        action="store_true",
        help="recompute every score instead of reusing finished results in --out",
    )
    p.add_argument(
        "--resize",
        type=int,
        default=None,
        help="resize images to N x N before scoring (default: native resolution)",
    )
    _add_stats_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iqa-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="show the metric registry with orientation and card version")
    p.add_argument("--all", action="store_true", help="also list backbones and their taps")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("score", help="print the score of one metric for two image files")
    p.add_argument("--metric", required=True, help="metric name (see `iqa-bench list`)")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default cpu)")
    p.add_argument("img0")
    p.add_argument("img1")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("run", help="score a dataset with metrics; write results and a report")
    _add_run_options(p, None)
    p.add_argument("--no-report", action="store_true", help="only write the per-sample results")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("bench", help="download (if needed) -> run -> report, for make bench")
    _add_run_options(p, "synthetic")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("report", help="(re)write the report of a run directory")
    p.add_argument("run_dir")
    _add_stats_options(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("compare", help="per-metric differences between two runs, with significance")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--n-perm", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("download", help="download (or generate) a dataset into the data root")
    p.add_argument("name", help="dataset card name, e.g. bapps")
    p.add_argument("--parts", default=None, help="comma-separated parts (see the card)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--force", action="store_true", help="download again even if present")
    p.set_defaults(func=_cmd_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``iqa-bench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"iqa-bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
