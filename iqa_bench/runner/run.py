"""The batched runner: every sample decoded once, scored by every metric, stored with provenance.

It computes no statistics: it writes per-sample distances (see ``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..config import metric_cards
from ..datasets import Dataset, open_dataset
from ..download import DEFAULT_STALL_TIMEOUT
from ..errors import InputError, RunDirBusyError
from ..metrics import Metric, create_metric
from ..metrics.base import COMPILE_MODES
from ..weights import WeightsUnavailableError
from . import store
from .allocator import allocator_note, keep_freed_memory
from .distributed import DistContext, dist_context
from .provenance import environment_info, new_run_id, now_iso, package_info
from .task_run import DTYPES, TaskRun, check_autocast, cuda_float32_precision, default_workers


@dataclass
class RunOptions:
    """How to run (none of it changes which samples are scored).

    Attributes:
        device: ``cpu``, ``cuda``, ``cuda:1``...; None picks CUDA when present.
        dtype: ``fp32`` (IEEE float32, also for cuDNN convolutions), ``tf32`` (TF32 convolutions
            and matrix products on CUDA; same as fp32 elsewhere), or ``bf16``/``fp16`` autocast
            (feature normalisation stays float32).
        batch_size: Samples per batch; halved automatically on out-of-memory.
        chunk_size: Samples per resumable chunk on disk.
        skip_bad: Record undecodable samples as failed (NaN) instead of stopping.
        workers: Image-decoding threads; None = ``default_workers()`` (2 on a 2-core machine,
            up to 8 where there are more cores to keep a GPU fed).
        progress: Show progress bars on stderr.
        resize: Resize every image to ``resize`` x ``resize`` (bilinear, antialiased) before
            scoring, the convention some MOS papers use; None = native resolution (default).
            Changes the numbers, so it is part of the results' fingerprint and the manifest.
        decode_cache: Keep decoded images in ``<cache>/decoded`` (memory-mapped uint8) so later
            runs skip PNG decoding.
        reuse: Reuse finished per-sample results in the run directory (False recomputes).
        max_batch_pixels: At most this many pixels (batch size x height x width) per image
            field go to a metric at once, so large images score in smaller batches (default:
            64 images of 256x256); batches of 64x64 patches are not affected.
        compile: ``torch.compile`` mode for network metrics (``default`` or
            ``max-autotune-no-cudagraphs``); None runs them eagerly. Values agree with eager
            execution to float32 rounding, so finished results are reused either way.
        keep_freed_memory: Let glibc keep freed blocks of up to 1 GiB in this process for reuse
            instead of returning them to the kernel (see :mod:`.allocator`): large CPU tensors
            are then not page-faulted in again for every batch. Speed and resident memory only;
            process-wide and not undone after the run.
        overlap_decoding: Decode the next batches while the metrics score the current one
            (True), or decode a whole chunk first and then score it (False). None (default)
            overlaps on CUDA, where decoding runs on otherwise idle cores, and not on CPU, where
            the decoding threads would take cores from PyTorch's threads (overlapped cold runs
            measured 1.03-1.25x slower on 2 cores by ``benchmarks/decode_overlap.py``). Speed
            only.
    """

    device: str | None = None
    dtype: str = "fp32"
    batch_size: int = 64
    chunk_size: int = 4096
    skip_bad: bool = False
    workers: int | None = None
    progress: bool = True
    resize: int | None = None
    decode_cache: bool = True
    reuse: bool = True
    max_batch_pixels: int = 64 * 256 * 256
    compile: str | None = None
    keep_freed_memory: bool = True
    overlap_decoding: bool | None = None

    def __post_init__(self) -> None:
        """Check the values now, so a bad one fails before any work instead of scoring nothing.

        Raises:
            InputError: Naming the attribute, the bad value and the accepted range.
        """
        from numbers import Integral

        from ..errors import InputError

        counts = {  # attribute: (value, what None means; "" where None is not accepted)
            "batch_size": (self.batch_size, ""),
            "chunk_size": (self.chunk_size, ""),
            "max_batch_pixels": (self.max_batch_pixels, ""),
            "workers": (self.workers, "default_workers(), one per core from 2 to 8"),
            "resize": (self.resize, "native resolution"),
        }
        for name, (value, none_means) in counts.items():
            if value is None and none_means:
                continue
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                alternative = f", or None for {none_means}" if none_means else ""
                raise InputError(
                    f"{name}: {value!r} is not allowed; give a whole number >= 1{alternative}."
                )
        if self.dtype not in DTYPES:
            raise InputError(f"dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}.")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise InputError(
                f"compile: {self.compile!r} is not one of {', '.join(COMPILE_MODES)} (or None)."
            )
        if self.device is not None:
            resolve_device(self.device)


@dataclass
class RunResult:
    """What ``run_benchmark`` produced."""

    run_dir: Path
    manifest: dict
    skipped: dict[str, str] = field(default_factory=dict)


def resolve_device(
    device: str | torch.device | None, ctx: DistContext | None = None
) -> torch.device:
    """The device to run on, checked to exist on this machine.

    Args:
        device: ``cpu``, ``cuda``, ``cuda:1``, ``mps``...; None picks CUDA when present, else CPU.
        ctx: Under torchrun, a bare ``cuda`` becomes this process's ``LOCAL_RANK`` GPU.

    Raises:
        InputError: ``device`` is not a torch device name, or names one this machine lacks (for
            ``cuda``: no GPU, no driver, or a CPU-only torch build); the message lists the
            devices there are.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    from ..errors import InputError

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    available = ["cpu"]
    for kind in ("cuda", "xpu", "mps"):
        backend = getattr(torch, kind, None)
        if backend is not None and backend.is_available():
            available += [kind, *(f"{kind}:{i}" for i in range(backend.device_count()))]
    fix = (
        f"devices here: {', '.join(available)}; pass one of them, or no device to use "
        f"{'cuda' if 'cuda' in available else 'cpu'}"
    )
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device: {device!r} is not a torch device name; {fix}.") from None
    if dev.type != "cpu" and str(dev) not in available:
        count = sum(name.startswith(f"{dev.type}:") for name in available)
        found = (
            f"torch finds {count} {dev.type} device(s)"
            if count
            else f"torch finds no {dev.type} device: no GPU, no driver, or a torch build without it"
        )
        raise InputError(f"device: {device!r} is not available ({found}); {fix}.")
    if dev.type == "cuda" and dev.index is None and ctx is not None and ctx.world_size > 1:
        dev = torch.device("cuda", ctx.local_rank)
    return dev


def build_metrics(names: Sequence[str] | str, device: torch.device, log) -> tuple[dict, dict]:
    """Instantiate metrics; with ``"all"`` unavailable weights skip a metric, when named they fail."""
    explicit = names != "all" and list(names) != ["all"]
    wanted = list(metric_cards()) if not explicit else list(names)
    metrics: dict[str, Metric] = {}
    skipped: dict[str, str] = {}
    for name in wanted:
        try:
            metric = create_metric(name, device=device)
        except WeightsUnavailableError as exc:
            if explicit:
                raise
            skipped[name] = str(exc)
            continue
        metric.check_inputs = False  # the runner feeds decoded uint8/255: range and shape hold
        metric.use_channels_last()
        metrics[name] = metric
    by_cause: dict[str, list[str]] = {}
    for name, reason in skipped.items():
        by_cause.setdefault(reason.split(":")[0], []).append(name)
    for cause, names_ in by_cause.items():
        log(f"skipped {', '.join(names_)}: {cause} (reason and fix in the report)")
    return metrics, skipped


def metric_record(metric: Metric) -> dict:
    card = metric.card
    return {
        "status": "ok",
        "card_version": card.version,
        "type": card.type,
        "group": card.group,
        "higher_is_better": bool(metric.higher_is_better),
        "description": card.description,
        "params": dict(card.params),
        "weight_hashes": dict(metric.weight_hashes),
        "timings": {},
    }


def skipped_record(name: str, reason: str) -> dict:
    card = metric_cards()[name]
    from ..metrics import METRIC_TYPES

    return {
        "status": "skipped",
        "reason": reason,
        "card_version": card.version,
        "type": card.type,
        "group": card.group,
        "higher_is_better": bool(METRIC_TYPES.get(card.type).higher_is_better),
        "description": card.description,
        "params": dict(card.params),
    }


def run_benchmark(
    dataset: str | Dataset,
    metrics: Sequence[str] | str = "all",
    out_dir: str | Path | None = None,
    options: RunOptions | None = None,
    *,
    data_root: str | Path | None = None,
    split: str = "val",
    download: bool = False,
    log=None,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
) -> RunResult:
    """Score every sample of a dataset with every requested metric and store the results.

    Args:
        dataset: A dataset card name (``synthetic``, ``bapps``), a path in BAPPS layout or a
            folder CSV, or an opened ``Dataset``.
        metrics: Metric names, or ``"all"`` (metrics whose weights are unavailable are skipped
            with the reason; a named metric that cannot load is an error).
        out_dir: Run directory; default ``runs/<dataset>``. Finished results in it are reused
            where their metric, data and image files are unchanged, and metrics of earlier
            runs into it stay in the manifest while their results are still valid.
        options: Device, dtype, batch size, ... (see :class:`RunOptions`).
        data_root, split, download, stall_timeout: Passed to ``open_dataset``.
        log: Callable for terminal messages (default: print to stderr).

    Returns:
        The run directory, its manifest and the skipped metrics.

    Raises:
        RunDirBusyError: Another run is writing ``out_dir``.
        InputError: ``out_dir`` holds a ``manifest.json`` that is not valid JSON.

    Example:
        >>> result = run_benchmark("synthetic", ["l2", "lpips-alex"], "runs/demo")  # doctest: +SKIP
    """
    opts = options or RunOptions()
    if opts.dtype not in DTYPES:
        raise ValueError(f"dtype: {opts.dtype!r} is not one of {', '.join(DTYPES)}.")
    if opts.batch_size < 1 or opts.chunk_size < 1 or opts.max_batch_pixels < 1:
        raise ValueError("batch_size, chunk_size and max_batch_pixels must be positive integers.")
    if opts.compile is not None and opts.compile not in COMPILE_MODES:
        raise ValueError(f"compile: {opts.compile!r} is not one of {', '.join(COMPILE_MODES)}.")
    allocator = keep_freed_memory() if opts.keep_freed_memory else {"reason": "not requested"}
    ctx = dist_context(opts.device)
    device = resolve_device(opts.device, ctx)
    check_autocast(device, opts.dtype)
    log = log or (lambda msg: print(f"iqa-bench: {msg}", file=sys.stderr) if ctx.is_main else None)
    t_start, cpu_start = time.perf_counter(), time.process_time()
    ds = (
        dataset
        if isinstance(dataset, Dataset)
        else open_dataset(
            str(dataset),
            data_root=Path(data_root) if data_root else None,
            split=split,
            skip_bad=opts.skip_bad,
            download=download,
            progress=opts.progress,
            stall_timeout=stall_timeout,
        )
    )
    run_dir = Path(out_dir or Path("runs") / ds.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(run_dir, ctx):
        built, skipped = build_metrics(metrics, device, log)
        compiled = {
            n for n, m in built.items() if opts.compile and m.compile_for_inference(opts.compile)
        }
        manifest, previous, dataset_fp = _new_manifest(
            ds, run_dir, built, skipped, opts, device, ctx, allocator, log
        )
        for name in compiled:
            manifest["metrics"][name]["compiled"] = opts.compile
        decode_s, decode_cpu_s, cache_hits = 0.0, 0.0, 0
        task_runs = []
        for task in ds.tasks():
            task_run = TaskRun(ds, task, built, run_dir, opts, device, ctx, dataset_fp)
            task_runs.append(task_run)
            subsets: dict[str, int] = {}
            for s in task_run.samples:
                subsets[s.subset] = subsets.get(s.subset, 0) + 1
            manifest["tasks"][task] = {"n": len(task_run.samples), "subsets": subsets}
            if ctx.is_main:
                store.write_judgments(run_dir, task, task_run.samples)
            with cuda_float32_precision(opts.dtype):
                task_run.run(log)
            decode_s += task_run.decode_s
            decode_cpu_s += task_run.decode_cpu_s
            cache_hits += task_run.decode_cache_hits
            for name, seconds in task_run.timings.items():
                manifest["metrics"][name]["timings"][task] = round(seconds, 4)
        _keep_earlier_metrics(previous, manifest, task_runs, log)
        manifest["failed_samples"] = _failed_samples(task_runs)
        manifest["timings"] = {
            "total_s": round(time.perf_counter() - t_start, 3),
            "cpu_s": round(time.process_time() - cpu_start, 3),
            "decode_s": round(decode_s, 3),
            "decode_cpu_s": round(decode_cpu_s, 3),
            "decode_cache_chunks_reused": cache_hits,
        }
        if manifest["failed_samples"]:
            log(
                f"{len(manifest['failed_samples'])} samples failed and are recorded in the manifest"
            )
        if ctx.is_main:
            store.write_manifest(run_dir, manifest)
        ctx.barrier()
    return RunResult(run_dir, manifest, skipped)


@contextlib.contextmanager
def _exclusive(run_dir: Path, ctx: DistContext) -> Iterator[None]:
    """Hold the run directory's lock for the run (rank 0 only, under torchrun).

    Every rank learns whether rank 0 got it, so all of them stop with the same error instead
    of the others waiting forever in a collective.
    """
    lock, error = None, None
    if ctx.is_main:
        try:
            lock = store.RunDirLock(run_dir, now_iso()).__enter__()
        except RunDirBusyError as exc:
            error = str(exc)
    holder_error = ctx.gather(error)[0]
    if holder_error is not None:
        raise RunDirBusyError(holder_error)
    try:
        yield
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)


def _new_manifest(
    ds, run_dir, built, skipped, opts, device, ctx, allocator, log
) -> tuple[dict, dict, dict]:
    """This run's manifest before scoring, the run directory's earlier manifest (or {}), and
    the dataset fields that go into the scores' fingerprints."""
    dataset_info = {
        "name": ds.name,
        "card_version": ds.version,
        "adapter": ds.card.adapter if ds.card else type(ds).__name__,
        "synthetic": bool(ds.synthetic),
        "notice": ds.notice,
        "human_ceiling": ds.human_ceiling,
        "root": str(ds.root),
        "split": ds.split,
        "load_size": ds.load_size,
        "mos_higher_is_better": getattr(ds, "mos_higher_is_better", None),
        "description": ds.card.description if ds.card else "",
        "source": ds.card.source if ds.card else "",
    }
    dataset_fp = {k: dataset_info[k] for k in ("name", "card_version", "synthetic", "split")}
    if ds.load_size is not None:  # absent when None, so earlier results keep their fingerprints
        dataset_fp["load_size"] = ds.load_size
    # Another folder with the same name and sample ids is other data.
    dataset_fp["root"] = str(Path(str(ds.root)).resolve())
    try:
        previous = store.read_manifest(run_dir) or {}
    except InputError:
        if opts.reuse:
            raise
        log(f"{run_dir / 'manifest.json'} is unreadable; --recompute writes a new one")
        previous = {}
    manifest = {
        "schema": 1,
        "run_id": previous.get("run_id") or new_run_id(ds.name),
        "created": now_iso(),
        "package": package_info(),
        "environment": environment_info(device) | {"cpu_allocator": allocator_note(allocator)},
        "dataset": dataset_info,
        "device": str(device),
        "dtype": opts.dtype,
        "batch_size": opts.batch_size,
        "max_batch_pixels": opts.max_batch_pixels,
        "workers": opts.workers or default_workers(),
        "resize": opts.resize,
        "compile": opts.compile,
        "world_size": ctx.world_size,
        "tasks": {},
        "metrics": {name: metric_record(m) for name, m in built.items()},
        "failed_samples": [],
        "bad_samples": [asdict(b) | {"path": str(b.path)} for b in ds.bad_samples],
        "timings": {},
    }
    manifest["metrics"].update({n: skipped_record(n, r) for n, r in skipped.items()})
    return manifest, previous, dataset_fp


def _keep_earlier_metrics(previous: dict, manifest: dict, task_runs: list[TaskRun], log) -> None:
    """Add the records of metrics that earlier runs into this directory scored and this one did
    not, while their finished files are valid for this run's data and settings.

    Valid means each task's finished file carries the fingerprint this run would give that
    metric (same card, recorded weights, dataset, sample ids, image files, dtype and resize);
    its failed samples are kept with it. Others are dropped from the manifest, and said so.
    """
    cards = metric_cards()
    kept, dropped = [], []
    for name, record in (previous.get("metrics") or {}).items():
        if name in manifest["metrics"]:
            continue
        failures = (
            _valid_earlier_failures(name, record, cards, task_runs)
            if isinstance(record, dict) and record.get("status") == "ok" and name in cards
            else None
        )
        if failures is None:
            dropped.append(name)
            continue
        manifest["metrics"][name] = record
        kept.append(name)
        for task_run, failed in zip(task_runs, failures):
            task_run.add_failures(name, failed)
    if kept:
        log(f"kept the finished results of earlier runs for {', '.join(kept)}")
    if dropped:
        log(
            f"dropped {', '.join(dropped)} of earlier runs from the manifest: not scored on "
            "this data and settings (run them again to add them)"
        )


def _valid_earlier_failures(name, record, cards, task_runs) -> list[list] | None:
    """Per task, the failed samples of an earlier metric's still valid finished files; None when
    a task's file is missing, unreadable or stale."""
    card = asdict(cards[name])
    weights = record.get("weight_hashes") or {}
    failures = []
    for task_run in task_runs:
        final = store.load_final(task_run.run_dir, name, task_run.task, scores=False)
        if final is None or final["fingerprint"] != task_run.final_fingerprint(name, card, weights):
            return None
        failures.append(final["failed"])
    return failures


def _failed_samples(task_runs: list[TaskRun]) -> list[dict]:
    """The manifest's failed samples: one entry per task, sample and reason, naming the metrics
    whose score of the sample is NaN for that reason."""
    return [
        {
            "task": task_run.task,
            "sample_id": task_run.samples[pos].sample_id,
            "path": path,
            "reason": reason,
            "metrics": sorted(set(names)),
        }
        for task_run in task_runs
        for (pos, path, reason), names in sorted(task_run.failed.items())
    ]
