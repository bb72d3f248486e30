"""Command-line interface: ``iqa-bench list | score | run | report | download | bench | compare |
table | train-lin | backbones``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence


def _bounded(
    kind: type[int] | type[float],
    low: float,
    high: float | None = None,
    *,
    above: bool = False,
    note: str = "",
    span: str | None = None,
) -> Callable[[str], int | float]:
    """An argparse ``type=`` for a finite number in ``[low, high)`` (``(low, high)`` with ``above``).

    Errors are ``ArgumentTypeError``, which argparse prints after the option's name, so a bad
    value stops the command before any work (``--workers -1`` would otherwise score nothing).

    Args:
        kind: ``int`` or ``float``.
        low: Smallest accepted value (exclusive with ``above``).
        high: First value no longer accepted; None = no upper bound.
        above: Exclude ``low`` itself.
        note: Appended to the message, e.g. what leaving the option out does.
        span: What the message asks for instead of the range, e.g. ``"a positive number of
            seconds"``.

    Example:
        >>> _bounded(int, 1)("4")
        4
        >>> _bounded(int, 1)("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: '0' is not a whole number >= 1.
        >>> _bounded(float, 0, above=True, span="a positive number of seconds")("soon")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: 'soon' is not a positive number of seconds.
    """
    if span is None:
        span = f"{'a whole number' if kind is int else 'a number'} {'>' if above else '>='} "
        span += f"{kind(low)}" + (f" and < {kind(high)}" if high is not None else "")

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not (
            math.isfinite(value)
            and (value > low if above else value >= low)
            and (high is None or value < high)
        ):
            raise argparse.ArgumentTypeError(f"{text!r} is not {span}{note}.")
        return value

    return parse


def _resample_count(text: str) -> int:
    """``--n-boot``/``--n-perm``: at least the statistics' minimum (0 is an error there too, but
    only after a whole ``run`` has scored)."""
    from .stats.bootstrap import MIN_RESAMPLES  # scipy: seconds, so only when the option is given

    return int(_bounded(int, MIN_RESAMPLES, note=" (1000 or more for reported numbers)")(text))


def _device(text: str) -> str:
    """``--device``: a device this machine has (the message lists them), checked before any work."""
    from .device import resolve_device
    from .errors import InputError

    try:
        resolve_device(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("device: ")) from None
    return text


def _metric_names(text: str) -> str:
    """``--metrics``: ``all`` or comma-separated names; nothing at all is an error, not ``all``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no metric; give comma-separated names (see `iqa-bench list`) or all."
        )
    if "all" in names and names != ["all"]:
        raise argparse.ArgumentTypeError(
            f"{text!r}: 'all' already means every metric; give all or a list of names, not both."
        )
    return text


def _cmd_list(args: argparse.Namespace) -> int:
    from .catalog import list_metrics  # reads cards only: no torch
    from .config import metric_cards

    cards = metric_cards()
    rows = [
        (
            m.name + "".join(f" ({alias})" for alias in cards[m.name].aliases),
            m.version,
            "higher=better" if m.higher_is_better else "lower=better",
            m.group,
            m.library or "native",
            m.description,
        )
        for m in list_metrics()
    ]
    width = max(len(r[0]) for r in rows)
    lib = max(len("computed by"), *(len(r[4]) for r in rows))
    print(
        f"{'metric':<{width}}  ver  orientation    group          {'computed by':<{lib}}  description"
    )
    for name, version, orient, group, library, desc in rows:
        print(f"{name:<{width}}  v{version:<3} {orient:<14} {group:<14} {library:<{lib}}  {desc}")
    if args.all:
        from .backbones import BACKBONES

        print("\nbackbones:")
        for name in BACKBONES:
            spec = BACKBONES.get(name)
            print(f"  {name}: taps {', '.join(spec.taps)}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    import torch

    from .device import cuda_float32_precision
    from .images import read_image_uint8
    from .metrics import create_metric

    metric = create_metric(args.metric, device=args.device)
    tensors = []
    for path in (args.img0, args.img1):
        array = read_image_uint8(path)
        tensors.append(
            torch.from_numpy(array).permute(2, 0, 1)[None].float().div(255).to(metric.device)
        )
    with torch.inference_mode(), cuda_float32_precision("fp32"):  # as `run --dtype fp32`
        value = float(metric(*tensors)[0])
        per_layer = _layer_values(metric, tensors) if args.per_layer else None
    print(f"{value:.6f}")
    for tap, layer in per_layer or ():
        print(f"  {tap}: {layer:.6f}")
    return 0


def _layer_values(metric, tensors) -> list[tuple[str, float]]:
    """``(tap, distance)`` of each layer for ``score --per-layer``.

    Raises:
        InputError: The metric has no per-layer distances.
    """
    from .errors import InputError

    if not hasattr(metric, "layer_distances"):
        raise InputError(
            f"--per-layer: {metric.name!r} has no per-layer distances; use an LPIPS-family "
            "metric (lpips-*, see `iqa-bench list`) or drop --per-layer."
        )
    return list(zip(metric.taps, metric.layer_distances(*tensors)[0].tolist()))


def _split_metrics(text: str) -> list[str] | str:
    names = [n.strip() for n in text.split(",") if n.strip()]  # --metrics checked it names some
    return "all" if names == ["all"] else names


def _run(args: argparse.Namespace, download: bool):
    from .runner import RunOptions, run_benchmark
    from .runner.allocator import keep_freed_memory

    if not args.return_freed_memory:  # process-wide, so made here at the entry point only
        keep_freed_memory()
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
        compile=args.compile,
        max_batch_pixels=args.max_batch_pixels,
        per_layer=args.per_layer,
    )
    return run_benchmark(
        args.dataset,
        _split_metrics(args.metrics),
        args.out,
        options,
        data_root=args.data_root,
        split=args.split,
        download=download or args.download,
        stall_timeout=args.stall_timeout,
    )


def _report(run_dir, args: argparse.Namespace, after_run: bool = False) -> int:
    from .reports import StatsOptions, summarize, terminal_summary, write_report
    from .results import load_run

    run = load_run(run_dir)
    options = StatsOptions().with_overrides(n_boot=args.n_boot, n_perm=args.n_perm, seed=args.seed)
    layers = None
    if args.per_layer and after_run and "2afc" not in run.tasks():
        # The distances were stored; only the table is 2AFC-only, so the scored run is not an error.
        print(
            f"per-layer: stored in {run_dir}/scores; the per-layer table scores 2AFC agreement "
            f"and this run has none (tasks: {', '.join(run.tasks())})."
        )
    elif args.per_layer:  # before the summary: a run without layers fails at once
        from .reports.layers import layer_table

        layers = layer_table(run, options)
    summary = summarize(run, options)
    folder = write_report(run_dir, reports_root=args.reports_dir, summary=summary, layers=layers)
    print(terminal_summary(summary))
    if layers is not None:
        from .reports.layers import layer_markdown, layer_note

        print(f"\nper-layer 2AFC (%):\n{layer_markdown(layers)}\n{layer_note(layers)}")
    print(f"\nreport: {folder}/report.html (also report.md, report.tex, results.csv, figures/)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    return _score_then_report(args, download=False, report=not args.no_report)


def _cmd_bench(args: argparse.Namespace) -> int:
    return _score_then_report(args, download=True, report=True)


def _score_then_report(args: argparse.Namespace, download: bool, report: bool) -> int:
    """Score (every torchrun rank), then print and report (rank 0 only)."""
    from .settings import torchrun_rank

    result = _run(args, download=download)
    if torchrun_rank()[1] != 0:
        return 0
    print(f"results: {result.run_dir}")
    return _report(result.run_dir, args, after_run=True) if report else 0


def _cmd_report(args: argparse.Namespace) -> int:
    return _report(args.run_dir, args)


def _cmd_compare(args: argparse.Namespace) -> int:
    from .reports import compare_runs
    from .results import load_run

    text = compare_runs(
        load_run(args.run_a),
        load_run(args.run_b),
        task=args.task,
        n_boot=args.n_boot,
        n_perm=args.n_perm,
        seed=args.seed,
    )
    print(text)
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from .reports.cross_table import cross_table, render_cross_table, write_cross_table
    from .stats import StatsOptions

    wanted = _split_metrics(args.metrics)
    table = cross_table(
        args.run_dirs,
        StatsOptions(n_boot=args.n_boot, seed=args.seed),
        metrics=None if wanted == "all" else wanted,
    )
    if args.out is None:
        print(render_cross_table(table, args.format), end="")
        return 0
    paths = write_cross_table(table, args.out)
    print(f"table: {paths['html']} (also {', '.join(p.name for p in paths.values())})")
    return 0


def _add_table_parser(sub) -> None:
    p = sub.add_parser(
        "table",
        help="several runs side by side: metrics x each dataset's headline, with CIs",
        description="One row per metric, one column per run x task headline (2AFC avg, JND mAP, "
        "MOS SRCC and PLCC), with bootstrap CIs and the best per column in bold. Prints "
        "Markdown (or --format) to stdout, or writes table.md/.tex/.csv/.html into --out.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories, in order")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--format",
        choices=["md", "tex", "csv", "html"],
        default="md",
        help="what to print: Markdown (default), a LaTeX document, tidy CSV or an HTML page",
    )
    where.add_argument("--out", default=None, help="write all four formats into this folder")
    p.add_argument(
        "--metrics", type=_metric_names, default="all", help="comma-separated metrics, or all"
    )
    p.add_argument(
        "--n-boot", type=_resample_count, default=1000, help="bootstrap resamples for CIs"
    )
    p.add_argument("--seed", type=_bounded(int, 0), default=0, help="seed of the resampling")
    p.set_defaults(func=_cmd_table)


def _cmd_download(args: argparse.Namespace) -> int:
    from .datasets import download_dataset

    parts = [p for p in (args.parts or "").split(",") if p] or None
    path = download_dataset(
        args.name, args.data_root, parts, force=args.force, stall_timeout=args.stall_timeout
    )
    print(f"{args.name}: ready in {path}")
    return 0


def _with_plugins(func):
    """Wrap a command so that plugins (``--plugin``, ``IQA_BENCH_PLUGINS``) load before it runs."""

    def run(args: argparse.Namespace) -> int:
        from .plugins import load_plugins

        load_plugins(getattr(args, "plugin", None) or ())
        return func(args)

    return run


def _with_metric_cards(func):
    """Wrap ``run``/``bench``: register ``--metric-card`` files and add them to ``--metrics``."""

    def run(args: argparse.Namespace) -> int:
        from .config import load_metric_card_file

        names = [load_metric_card_file(path).name for path in args.metric_card or []]
        wanted = _split_metrics(args.metrics)
        if names and wanted != "all":  # "all" already includes registered cards
            args.metrics = ",".join([*wanted, *[n for n in names if n not in wanted]])
        return func(args)

    return run


def _with_dataset_card(func, default_dataset: str | None):
    """Wrap ``run``/``bench``: register the ``--dataset-card`` file and score its dataset."""

    def run(args: argparse.Namespace) -> int:
        from .config import load_dataset_card_file
        from .errors import InputError

        if args.dataset_card is not None:
            name = load_dataset_card_file(args.dataset_card).name
            if args.dataset not in (None, name):
                raise InputError(
                    f"--dataset {args.dataset} and --dataset-card {args.dataset_card} (dataset "
                    f"{name!r}) name two datasets; give one of them."
                )
            args.dataset = name
        args.dataset = args.dataset or default_dataset
        if args.dataset is None:
            raise InputError(
                "--dataset: none given; give a dataset card name (see --help), a path, or "
                "--dataset-card YAML."
            )
        return func(args)

    return run


def _cmd_train_lin(args: argparse.Namespace) -> int:
    from .errors import InputError
    from .training import TrainLinConfig, train_lin

    if args.epochs + args.epochs_decay < 1:
        raise InputError(
            f"--epochs {args.epochs} and --epochs-decay {args.epochs_decay} train nothing; give "
            "at least one epoch in total (the paper: --epochs 5 --epochs-decay 5)."
        )
    taps = tuple(t.strip() for t in args.taps.split(",") if t.strip()) if args.taps else None
    trunk_train = args.trunk_train and tuple(
        t.strip() for t in args.trunk_train.split(",") if t.strip()
    )
    config = TrainLinConfig(
        mode=args.mode,
        backbone=args.backbone,
        taps=taps,
        version=args.version,
        pretrained=False if args.no_pretrained else None,
        dataset=args.dataset,
        split=args.split,
        data_root=args.data_root,
        val_split=args.val_split,
        lr=args.lr,
        beta1=args.beta1,
        batch_size=args.batch_size,
        n_epochs=args.epochs,
        n_epochs_decay=args.epochs_decay,
        chn_mid=args.chn_mid,
        init=args.init,
        dropout=args.dropout,
        features=args.features,
        trunk_lr=args.trunk_lr,
        trunk_train=trunk_train or None,
        seed=args.seed,
        device=args.device,
        feature_batch_size=args.feature_batch_size,
        workers=args.workers,
        resize=args.resize,
        cache_dir=args.cache_dir,
    )
    result = train_lin(config, args.out, resume=args.resume, progress=not args.quiet)
    last = result.manifest["history"][-1]
    print(f"weights:  {result.outputs.weights}")
    print(f"manifest: {result.outputs.manifest}")
    print(f"card:     {result.outputs.card}")
    print(
        f"train 2AFC {last['train_2afc']:.4f}"
        + (
            f", held-out 2AFC {last['val_2afc']:.4f} (unweighted baseline "
            f"{result.manifest['val']['baseline_2afc']:.4f})"
            if last.get("val_2afc") is not None
            else ""
        )
    )
    print(f"evaluate: iqa-bench run --metric-card {result.outputs.card} --dataset {args.dataset}")
    return 0


def _cmd_backbones(args: argparse.Namespace) -> int:
    from .backbones import BACKBONES

    if not args.name:
        for name in BACKBONES:
            spec = BACKBONES.get(name)
            print(f"{name}: taps {', '.join(spec.taps) or '(none declared)'}")
        print(
            "\nAlso: torchvision:<model> (any torchvision classification model) and timm:<model> "
            "(with timm installed); `iqa-bench backbones torchvision:resnet18` lists its modules."
        )
        return 0
    from .backbones import describe_backbone

    rows = describe_backbone(args.name, size=args.size, depth=args.depth)
    width = max((len(r[0]) for r in rows), default=6)
    print(f"{'module':<{width}}  {'type':<22} output shape at {args.size}x{args.size}")
    for module, kind, shape in rows:
        print(f"{module:<{width}}  {kind:<22} {shape if shape is not None else '-'}")
    return 0


def _add_train_mode_options(p) -> None:
    """``train-lin``'s mode, trunk, and how the trunk is used (features cached, or trained)."""
    p.add_argument(
        "--mode",
        default="lin",
        choices=["lin", "tune", "scratch"],
        help="lin: frozen trunk (default); tune: trunk trained from ImageNet weights; scratch: "
        "trunk trained from random weights",
    )
    p.add_argument("--backbone", default="alex", help="alex, vgg16, torchvision:resnet18, ...")
    p.add_argument("--taps", default=None, help="comma-separated module names (zoo backbones)")
    p.add_argument("--version", default="0.1", choices=["0.1", "0.0"], help="LPIPS input scaling")
    p.add_argument(
        "--dropout",
        type=_bounded(float, 0, 1),
        default=None,
        help="on per-position differences; needs --features none (default: 0 for lin, the "
        "paper's 0.5 for tune/scratch)",
    )
    p.add_argument(
        "--features",
        default=None,
        choices=["disk", "memory", "none"],
        help="trunk features: cached on disk (lin default), in memory, or recomputed every "
        "batch (none: tune/scratch take only this, as their trunk changes every step)",
    )
    p.add_argument(
        "--trunk-lr",
        type=_bounded(float, 0, above=True),
        default=None,
        help="tune/scratch: trunk learning rate, on the same schedule (default: --lr, as the "
        "paper)",
    )
    p.add_argument(
        "--trunk-train",
        default=None,
        metavar="GLOBS",
        help="tune/scratch: comma-separated globs of the trunk parameters that train, named as "
        "in the full network (alex: 'features.6.*,features.8.*,features.10.*'); default: all",
    )


def _add_train_lin_parser(sub) -> None:
    p = sub.add_parser(
        "train-lin",
        help="learn LPIPS weights for a backbone on 2AFC judgments (--mode lin|tune|scratch)",
        description="Train an LPIPS metric as the LPIPS paper does (ranking network, BCE against "
        "the human fraction, Adam; linear weights clamped >= 0). --mode lin (default): frozen "
        "trunk, per-channel weights, trunk features cached. tune: the ImageNet trunk trains "
        "too; scratch: a random trunk trains too; both run the trunk every step (no feature "
        "cache) and write the trunk into OUT. Writes OUT (.pth), a manifest (.json), a metric "
        "card (.yaml) and per-epoch checkpoints.",
    )
    _add_train_mode_options(p)
    p.add_argument(
        "--no-pretrained", action="store_true", help="random trunk (lin smoke tests; scratch)"
    )
    p.add_argument("--dataset", default="bapps", help="dataset card name or BAPPS-layout path")
    p.add_argument("--split", default="train", help="2AFC split to train on (default train)")
    p.add_argument("--val-split", default=None, help="held-out 2AFC split scored every epoch")
    p.add_argument("--data-root", default=None, help="data root (default $IQA_BENCH_DATA)")
    p.add_argument("--out", required=True, help="weights file to write, e.g. runs/alex-lin.pth")
    positive = _bounded(int, 1)
    p.add_argument(
        "--lr",
        type=_bounded(float, 0, above=True),
        default=1e-4,
        help="Adam learning rate (paper 1e-4)",
    )
    p.add_argument(
        "--beta1", type=_bounded(float, 0, 1), default=0.5, help="Adam beta1 (paper 0.5)"
    )
    p.add_argument("--batch-size", type=positive, default=50, help="triplets per step (paper 50)")
    epochs = _bounded(int, 0)  # one of the two may be 0; _cmd_train_lin checks their sum
    p.add_argument("--epochs", type=epochs, default=5, help="epochs at the initial rate (paper 5)")
    p.add_argument("--epochs-decay", type=epochs, default=5, help="epochs decaying to 0 (paper 5)")
    p.add_argument("--chn-mid", type=positive, default=32, help="ranking network width (paper 32)")
    p.add_argument("--init", default="random", choices=["random", "ones"], help="initial weights")
    p.add_argument("--cache-dir", default=None, help="feature cache (default <cache>/features)")
    p.add_argument(
        "--seed",
        # Epoch orders are seeded with seed * 1_000_003 + epoch, which must fit in torch's 64-bit
        # seeds (2**45 already overflows); 2**32 keeps it far inside.
        type=_bounded(int, 0, 2**32),
        default=0,
        help="seed of the initial weights and order",
    )
    p.add_argument(
        "--device",
        type=_device,
        default=None,
        help="cpu, cuda, cuda:1 (default: CUDA if present)",
    )
    p.add_argument("--workers", type=positive, default=2, help="image-decoding threads")
    p.add_argument(
        "--feature-batch-size", type=positive, default=64, help="triplets per trunk batch"
    )
    p.add_argument("--resize", type=positive, default=None, help="resize images to N x N first")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train_lin)

    p = sub.add_parser("backbones", help="list backbones, or the modules (taps) of one")
    p.add_argument("name", nargs="?", default=None, help="e.g. alex or torchvision:resnet18")
    p.add_argument(
        "--depth", type=_bounded(int, 1), default=2, help="module name depth to list (default 2)"
    )
    p.add_argument(
        "--size", type=_bounded(int, 1), default=224, help="dry-run input side (default 224)"
    )
    p.set_defaults(func=_cmd_backbones)


def _add_resampling_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--n-boot", type=_resample_count, default=1000, help="bootstrap resamples for CIs"
    )
    p.add_argument(
        "--n-perm", type=_resample_count, default=10000, help="permutations for significance"
    )
    # numpy.random.default_rng takes no negative seed.
    p.add_argument("--seed", type=_bounded(int, 0), default=0, help="seed of the resampling")


def _add_stats_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reports-dir", default="reports", help="root of report folders (default reports)"
    )
    p.add_argument(
        "--per-layer",
        action="store_true",
        help="run: also store each LPIPS-family metric's per-layer distances; report: add the "
        "per-layer 2AFC table (metric x tap; needs a run scored with --per-layer)",
    )
    _add_resampling_options(p)


def _add_stall_timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stall-timeout",
        type=_bounded(
            float,
            0,
            above=True,
            span="a positive number of seconds",
            note="; give e.g. 60 (the default) or 300 for a slow connection",
        ),
        default=60.0,  # iqa_bench.download.DEFAULT_STALL_TIMEOUT (not imported: fast start)
        metavar="SECONDS",
        help="give up a download attempt after this many seconds without data (default 60; "
        "each archive gets 4 attempts, each resuming where the last stopped)",
    )


def _add_data_options(p: argparse.ArgumentParser, default_dataset: str | None) -> None:
    """What ``run``/``bench`` score: dataset, metrics, cards, where the data and results go."""
    p.add_argument(
        "--dataset",
        default=None,
        help="dataset card name (equal-mse, synthetic, bapps, nights, tid2013, kadid10k, csiq, live) or a "
        "path: BAPPS layout, a study CSV (2AFC/JND, or MOS with ref,dist,mos|dmos), or an "
        "extracted TID2013/KADID-10k/CSIQ/LIVE/NIGHTS folder"
        + (f" (default {default_dataset})" if default_dataset else ""),
    )
    p.add_argument(
        "--dataset-card",
        default=None,
        metavar="YAML",
        help="register this dataset card file and score its dataset (data in <data root>/<name>/)",
    )
    p.add_argument(
        "--metrics",
        type=_metric_names,
        default="all",
        help="comma-separated metric names, or all",
    )
    p.add_argument(
        "--metric-card",
        action="append",
        default=[],
        metavar="YAML",
        help="also score the metric of this card file (repeatable; e.g. from train-lin)",
    )
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>)")
    p.add_argument("--data-root", default=None, help="data root (default $IQA_BENCH_DATA)")
    p.add_argument(
        "--split",
        default="val",
        help="split to score, by dataset: bapps, synthetic and BAPPS-layout folders: val "
        "(default) or train (2AFC; JND is always val); nights: train, val or test (DreamSim "
        "reports test); MOS sets (tid2013, kadid10k, csiq, live, MOS CSVs) have no splits: val, "
        "all and test each score every image; 2AFC/JND study CSVs: val only",
    )
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    _add_stall_timeout(p)
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="record undecodable samples as failed (counted in the manifest)",
    )


def _add_execution_options(p: argparse.ArgumentParser) -> None:
    """How ``run``/``bench`` score: device, precision, batches, threads, caches."""
    p.add_argument(
        "--device",
        type=_device,
        default=None,
        help="cpu, cuda, cuda:1 (default: CUDA if present)",
    )
    p.add_argument(
        "--dtype",
        default="fp32",
        choices=["fp32", "tf32", "bf16", "fp16"],
        help="fp32 = IEEE float32 everywhere; tf32 = TF32 convolutions on CUDA; bf16/fp16 = "
        "autocast of the trunks (feature normalisation stays fp32; measured tolerances in the "
        "README, 'Precision')",
    )
    p.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=None,
        choices=["default", "max-autotune-no-cudagraphs"],
        help="run network metrics through torch.compile (pays off on a GPU; the first batch of "
        "each shape compiles, which takes seconds to a minute)",
    )
    positive = _bounded(int, 1)
    p.add_argument("--batch-size", type=positive, default=64)
    p.add_argument("--chunk-size", type=positive, default=4096, help="samples per resumable chunk")
    p.add_argument(
        "--max-batch-pixels",
        type=positive,
        default=64 * 256 * 256,
        help="at most this many pixels (batch x height x width) per batch, so large images "
        "score in smaller batches (default: 64 images of 256x256)",
    )
    p.add_argument(
        "--return-freed-memory",
        action="store_true",
        help="leave glibc's malloc thresholds alone (by default freed blocks up to 1 GiB stay in "
        "the process, so large CPU tensors are not page-faulted in again each batch)",
    )
    p.add_argument(
        "--workers",
        type=_bounded(int, 1, note=" (leave it out for one per core, 2 to 8)"),
        default=None,
        help="image-decoding threads (default: one per core, 2 to 8)",
    )
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
        type=_bounded(int, 1, note=" (leave it out for native resolution)"),
        default=None,
        help="resize images to N x N before scoring (default: native resolution)",
    )


def _add_run_parser(sub, name: str, help: str, func, default_dataset: str | None) -> None:
    """``run`` or ``bench``: the same options; ``bench`` scores ``default_dataset`` by default."""
    p = sub.add_parser(name, help=help)
    _add_data_options(p, default_dataset)
    _add_execution_options(p)
    _add_stats_options(p)
    p.set_defaults(func=_with_dataset_card(_with_metric_cards(func), default_dataset))
    if name == "run":
        p.add_argument("--no-report", action="store_true", help="only write the per-sample results")


def _add_single_parsers(sub) -> None:
    """``list`` and ``score``."""
    p = sub.add_parser("list", help="show the metric registry with orientation and card version")
    p.add_argument("--all", action="store_true", help="also list backbones and their taps")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("score", help="print the score of one metric for two image files")
    p.add_argument("--metric", required=True, help="metric name (see `iqa-bench list`)")
    p.add_argument(
        "--device", type=_device, default=None, help="torch device, e.g. cuda (default cpu)"
    )
    p.add_argument(
        "--per-layer",
        action="store_true",
        help="LPIPS-family metrics: also print each tap's distance (they sum to the score)",
    )
    p.add_argument("img0", help="the image scored (x)")
    p.add_argument(
        "img1",
        help="the reference (y); it matters for asymmetric metrics: lpips-alex+/lpips-vgg+ "
        "average each layer with weights from the reference's features",
    )
    p.set_defaults(func=_cmd_score)


def _add_results_parsers(sub) -> None:
    """``report``, ``compare`` and ``download``."""
    p = sub.add_parser("report", help="(re)write the report of a run directory")
    p.add_argument("run_dir")
    _add_stats_options(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("compare", help="per-metric differences between two runs, with significance")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument(
        "--task",
        choices=["2afc", "jnd", "mos"],
        default=None,
        help="compare one task (default: every task both runs scored)",
    )
    _add_resampling_options(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("download", help="download (or generate) a dataset into the data root")
    p.add_argument(
        "name",
        help="dataset card name, e.g. bapps, nights, tid2013, kadid10k (csiq, live: by hand)",
    )
    p.add_argument("--parts", default=None, help="comma-separated parts (see the card)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--force", action="store_true", help="download again even if present")
    _add_stall_timeout(p)
    p.set_defaults(func=_cmd_download)


def build_parser() -> argparse.ArgumentParser:
    """The ``iqa-bench`` parser; each command's ``func`` loads plugins first."""
    parser = argparse.ArgumentParser(prog="iqa-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_single_parsers(sub)
    _add_run_parser(
        sub, "run", "score a dataset with metrics; write results and a report", _cmd_run, None
    )
    _add_run_parser(
        sub,
        "bench",
        "download (if needed) -> run -> report, for make bench",
        _cmd_bench,
        "equal-mse",
    )
    _add_results_parsers(sub)
    _add_table_parser(sub)
    _add_train_lin_parser(sub)
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="PY_OR_MODULE",
        help="import a file or module that registers backbones, metric and dataset cards (also "
        "$IQA_BENCH_PLUGINS); repeatable",
    )
    for p in sub.choices.values():
        p.set_defaults(func=_with_plugins(p.get_default("func")))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``iqa-bench`` console script.

    Returns 0 on success and 2 after printing the message of an :class:`IQABenchError` (the
    user's to fix); any other exception propagates with its traceback (exit status 1).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import IQABenchError

    try:
        return args.func(args)
    except IQABenchError as exc:  # anything else is a bug: its traceback shows where (exit 1)
        print(f"iqa-bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
