"""The batched runner: every sample decoded once, scored by every metric, stored with provenance.

It computes no statistics: it writes per-sample distances and a
:class:`~iqa_bench.records.RunManifest` (see ``docs/ARCHITECTURE.md``). The CPU allocator setting
is the entry point's to make (:mod:`.allocator`); the manifest records the one in force.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..bridge_specs import BRIDGES, is_bridged_name, library_version
from ..catalog import card_higher_is_better
from ..config import load_metric_card, metric_aliases, metric_cards
from ..datasets import Dataset, open_dataset
from ..device import DTYPES, check_autocast, cuda_float32_precision, default_workers, resolve_device
from ..download import DEFAULT_STALL_TIMEOUT
from ..errors import InputError, MissingExtraError, RunDirBusyError
from ..metrics import Metric, create_metric
from ..metrics.base import COMPILE_MODES
from ..records import (
    BadSampleRecord,
    DatasetRecord,
    EnvironmentRecord,
    FailedSampleRecord,
    MetricRecord,
    PackageRecord,
    RunManifest,
    TaskRecord,
    TimingsRecord,
    to_json,
)
from ..weights import WeightsUnavailableError
from . import store
from .allocator import allocator_in_force
from .distributed import DistContext, dist_context
from .provenance import environment_info, new_run_id, now_iso, package_info
from .task_run import TaskRun, numbers_identity

Log = Callable[[str], None]


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
        overlap_decoding: Decode the next batches while the metrics score the current one
            (True), or decode a whole chunk first and then score it (False). None (default)
            overlaps on CUDA, where decoding runs on otherwise idle cores, and not on CPU, where
            the decoding threads would take cores from PyTorch's threads (overlapped cold runs
            measured 1.03-1.25x slower on 2 cores by ``benchmarks/decode_overlap.py``). Speed
            only.
        per_layer: Also store each LPIPS-family metric's per-layer distances beside its scores
            (``<field>_layers`` arrays, (N, L), and the ``taps``), for ``report --per-layer``.
            Part of those metrics' fingerprints: results without them are never reused as
            results with them.
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
    overlap_decoding: bool | None = None
    per_layer: bool = False

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Check the values (again at the start of a run: the options are mutable), so a bad
        one fails before any work instead of scoring nothing.

        Raises:
            InputError: Naming the attribute, the bad value and the accepted range.
        """
        from numbers import Integral

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
    """What ``run_benchmark`` produced: the run directory, its manifest and the skipped metrics."""

    run_dir: Path
    record: RunManifest
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def manifest(self) -> dict:
        """The manifest as written to ``manifest.json`` (plain JSON values)."""
        return to_json(self.record)


@dataclass(frozen=True)
class OpenOptions:
    """How to open a dataset given by name or path (see ``open_dataset``)."""

    data_root: str | Path | None = None
    split: str = "val"
    download: bool = False
    stall_timeout: float = DEFAULT_STALL_TIMEOUT


def build_metrics(names: Sequence[str] | str, device: torch.device, log) -> tuple[dict, dict]:
    """Instantiate metrics; with ``"all"`` unavailable weights or a missing optional library (a
    bridged card without its extra) skip a metric, when named they fail."""
    explicit = names != "all" and list(names) != ["all"]
    # Aliases (pyiqa's ``lpips+``) resolve to their card: results are stored under its name.
    aliases = metric_aliases()
    wanted = list(metric_cards()) if not explicit else [aliases.get(n, n) for n in names]
    wanted = list(dict.fromkeys(wanted))
    metrics: dict[str, Metric] = {}
    skipped: dict[str, str] = {}
    for name in wanted:
        try:
            metric = create_metric(name, device=device)
        except (WeightsUnavailableError, MissingExtraError) as exc:
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


def metric_record(
    metric: Metric, timings: dict[str, float], compiled: str | None = None
) -> MetricRecord:
    """The manifest record of a metric that was scored."""
    card = metric.card
    return MetricRecord(
        name=card.name,
        status="ok",
        card_version=card.version,
        type=card.type,
        group=card.group,
        higher_is_better=bool(metric.higher_is_better),
        description=card.description,
        params=dict(card.params),
        weight_hashes=dict(metric.weight_hashes),
        timings=timings,
        compiled=compiled,
        library=getattr(metric, "library", None) or None,
        library_version=getattr(metric, "library_version", None),
    )


def skipped_record(name: str, reason: str) -> MetricRecord:
    """The manifest record of a metric that could not be built (``reason`` says why)."""
    card = load_metric_card(name)
    bridged = card.type in BRIDGES
    return MetricRecord(
        name=name,
        status="skipped",
        reason=reason,
        card_version=card.version,
        type=card.type,
        group=card.group,
        higher_is_better=card_higher_is_better(card),
        description=card.description,
        params=dict(card.params),
        library=card.type if bridged else None,
        library_version=library_version(card.type) if bridged else None,
    )


def dataset_record(ds: Dataset) -> DatasetRecord:
    """The manifest record of an opened dataset."""
    return DatasetRecord(
        name=ds.name,
        card_version=ds.version,
        adapter=ds.card.adapter if ds.card else type(ds).__name__,
        synthetic=bool(ds.synthetic),
        notice=ds.notice,
        human_ceiling=ds.human_ceiling,
        root=str(ds.root),
        split=ds.split,
        load_size=ds.load_size,
        mos_higher_is_better=getattr(ds, "mos_higher_is_better", None),
        description=ds.card.description if ds.card else "",
        source=ds.card.source if ds.card else "",
    )


def dataset_fingerprint(record: DatasetRecord) -> dict:
    """The dataset fields that go into every score's fingerprint."""
    fp = {
        "name": record.name,
        "card_version": record.card_version,
        "synthetic": record.synthetic,
        "split": record.split,
    }
    if record.load_size is not None:  # absent when None, so earlier results keep their fingerprints
        fp["load_size"] = record.load_size
    # Another folder with the same name and sample ids is other data.
    fp["root"] = str(Path(record.root).resolve())
    return fp


def run_benchmark(
    dataset: str | Dataset,
    metrics: Sequence[str] | str = "all",
    out_dir: str | Path | None = None,
    options: RunOptions | None = None,
    *,
    data_root: str | Path | None = None,
    split: str = "val",
    download: bool = False,
    log: Log | None = None,
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
        InputError: A bad option, or ``out_dir`` holds a ``manifest.json`` that breaks the
            run contract (unless ``options.reuse`` is False).

    Example:
        >>> result = run_benchmark("synthetic", ["l2", "lpips-alex"], "runs/demo")  # doctest: +SKIP
    """
    opts = options or RunOptions()
    opts.check()
    ctx = dist_context(opts.device)
    device = resolve_device(opts.device, ctx.local_rank if ctx.world_size > 1 else None)
    check_autocast(device, opts.dtype)
    started = (time.perf_counter(), time.process_time())
    opening = OpenOptions(data_root, split, download, stall_timeout)
    ds = dataset if isinstance(dataset, Dataset) else _open(str(dataset), opts, opening)
    run_dir = Path(out_dir or Path("runs") / ds.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    session = _Session(ds, run_dir, opts, device, ctx, log or _stderr_log(ctx))
    with _exclusive(run_dir, ctx):
        built, skipped = build_metrics(metrics, device, session.log)
        compiled = {
            n for n, m in built.items() if opts.compile and m.compile_for_inference(opts.compile)
        }
        previous = _previous_manifest(session)
        manifest = _new_manifest(session, previous)
        task_runs = [_score_task(session, task, built) for task in ds.tasks()]
        records = _metric_records(built, skipped, task_runs, compiled, opts.compile)
        records |= _keep_earlier_metrics(previous, records, task_runs, session.log)
        manifest = _finished(manifest, task_runs, records, started, session.log)
        if ctx.is_main:
            store.write_manifest(run_dir, manifest)
        ctx.barrier()
    ctx.close()
    return RunResult(run_dir, manifest, skipped)


@dataclass(frozen=True)
class _Session:
    """What every step of one run shares."""

    ds: Dataset
    run_dir: Path
    opts: RunOptions
    device: torch.device
    ctx: DistContext
    log: Log


def _stderr_log(ctx: DistContext) -> Log:
    def log(msg: str) -> None:
        if ctx.is_main:
            print(f"iqa-bench: {msg}", file=sys.stderr)

    return log


def _open(name: str, opts: RunOptions, opening: OpenOptions) -> Dataset:
    return open_dataset(
        name,
        data_root=Path(opening.data_root) if opening.data_root else None,
        split=opening.split,
        skip_bad=opts.skip_bad,
        download=opening.download,
        progress=opts.progress,
        stall_timeout=opening.stall_timeout,
    )


def _metric_records(
    built: dict[str, Metric],
    skipped: dict[str, str],
    task_runs: list[TaskRun],
    compiled: set[str],
    mode: str | None,
) -> dict[str, MetricRecord]:
    """Records of the metrics this run built (timings; ``mode`` if compiled) and skipped."""
    records = {}
    for name, metric in built.items():
        timings = {t.task: round(t.timings[name], 4) for t in task_runs}
        records[name] = metric_record(metric, timings, mode if name in compiled else None)
        reason = _nothing_scored(name, task_runs)
        if reason is not None:
            records[name] = replace(records[name], status="skipped", reason=reason)
            for task_run in task_runs:  # its samples are not excluded from the other metrics
                task_run.failed = {
                    k: [n for n in v if n != name]
                    for k, v in task_run.failed.items()
                    if v != [name]
                }
    return records | {n: skipped_record(n, r) for n, r in skipped.items()}


def _nothing_scored(name: str, task_runs: list[TaskRun]) -> str | None:
    """Why ``name`` scored no sample of any task (e.g. every image smaller than it accepts),
    else None: such a metric is reported as skipped, not as a row without samples."""
    reasons: set[str] = set()
    for task_run in task_runs:
        failed = [key[2] for key, names in task_run.failed.items() if name in names]
        if len(failed) < len(task_run.samples):
            return None
        reasons.update(failed)
    if not reasons:
        return None
    return f"no sample could be scored: {'; '.join(sorted(reasons))}"


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


def _previous_manifest(session: _Session) -> RunManifest | None:
    """The run directory's earlier manifest; None when there is none, or when it is unreadable
    and ``--recompute`` replaces it."""
    try:
        return store.read_manifest(session.run_dir)
    except InputError:
        if session.opts.reuse:
            raise
        session.log(
            f"{session.run_dir / 'manifest.json'} is unreadable; --recompute writes a new one"
        )
        return None


def _new_manifest(session: _Session, previous: RunManifest | None) -> RunManifest:
    """This run's manifest before scoring: provenance and settings, no tasks or metrics yet."""
    ds, opts, device = session.ds, session.opts, session.device
    environment = environment_info(device) | {"cpu_allocator": allocator_in_force()}
    return RunManifest(
        run_id=previous.run_id if previous and previous.run_id else new_run_id(ds.name),
        created=now_iso(),
        package=PackageRecord(**package_info()),
        environment=EnvironmentRecord(**environment),
        dataset=dataset_record(ds),
        device=str(device),
        dtype=opts.dtype,
        batch_size=opts.batch_size,
        max_batch_pixels=opts.max_batch_pixels,
        workers=opts.workers or default_workers(),
        resize=opts.resize,
        compile=opts.compile,
        world_size=session.ctx.world_size,
        metrics={},
        bad_samples=tuple(
            BadSampleRecord(**(asdict(b) | {"path": str(b.path)})) for b in ds.bad_samples
        ),
    )


def _score_task(session: _Session, task: str, built: dict[str, Metric]) -> TaskRun:
    """Store the judgments of ``task`` and score it with every metric that still needs it."""
    s = session
    fingerprint = dataset_fingerprint(dataset_record(s.ds))
    task_run = TaskRun(s.ds, task, built, s.run_dir, s.opts, s.device, s.ctx, fingerprint)
    if s.ctx.is_main:
        store.write_judgments(s.run_dir, task, task_run.samples)
    with cuda_float32_precision(s.opts.dtype):
        task_run.run(s.log)
    return task_run


def _task_record(task_run: TaskRun) -> TaskRecord:
    subsets: dict[str, int] = {}
    for s in task_run.samples:
        subsets[s.subset] = subsets.get(s.subset, 0) + 1
    return TaskRecord(n=len(task_run.samples), subsets=subsets)


def _finished(
    manifest: RunManifest,
    task_runs: list[TaskRun],
    records: dict[str, MetricRecord],
    started: tuple[float, float],
    log: Log,
) -> RunManifest:
    """``manifest`` completed with the tasks, metrics, failed samples and timings of the run."""
    failed = _failed_samples(task_runs)
    if failed:
        log(f"{len(failed)} samples failed and are recorded in the manifest")
    timings = TimingsRecord(
        total_s=round(time.perf_counter() - started[0], 3),
        cpu_s=round(time.process_time() - started[1], 3),
        decode_s=round(sum(t.decode_s for t in task_runs), 3),
        decode_cpu_s=round(sum(t.decode_cpu_s for t in task_runs), 3),
        decode_cache_chunks_reused=sum(t.decode_cache_hits for t in task_runs),
    )
    return replace(
        manifest,
        tasks={t.task: _task_record(t) for t in task_runs},
        metrics=records,
        failed_samples=failed,
        timings=timings,
    )


def _keep_earlier_metrics(
    previous: RunManifest | None,
    records: dict[str, MetricRecord],
    task_runs: list[TaskRun],
    log: Log,
) -> dict[str, MetricRecord]:
    """The records of metrics that earlier runs into this directory scored and this one did
    not, while their finished files are valid for this run's data and settings.

    Valid means each task's finished file carries the fingerprint this run would give that
    metric (same card, recorded weights, dataset, sample ids, image files, dtype and resize);
    its failed samples are kept with it. Others are dropped from the manifest, and said so.
    """
    cards = metric_cards()
    kept: dict[str, MetricRecord] = {}
    dropped = []
    for name, record in (previous.metrics if previous else {}).items():
        if name in records:
            continue
        failures = (
            _valid_earlier_failures(name, record, cards, task_runs)
            if record.status == "ok" and (name in cards or is_bridged_name(name))
            else None
        )
        if failures is None:
            dropped.append(name)
            continue
        kept[name] = record
        for task_run, failed in zip(task_runs, failures):
            task_run.add_failures(name, failed)
    if kept:
        log(f"kept the finished results of earlier runs for {', '.join(kept)}")
    if dropped:
        log(
            f"dropped {', '.join(dropped)} of earlier runs from the manifest: not scored on "
            "this data and settings (run them again to add them)"
        )
    return kept


def _valid_earlier_failures(
    name: str, record: MetricRecord, cards: dict, task_runs: list[TaskRun]
) -> list[list] | None:
    """Per task, the failed samples of an earlier metric's still valid finished files; None when
    a task's file is missing, unreadable or stale."""
    card = numbers_identity(
        (cards[name] if name in cards else load_metric_card(name)).identity(),
        record.library_version,
    )
    failures = []
    for task_run in task_runs:
        final = store.load_final(task_run.run_dir, name, task_run.task, scores=False)
        fp = task_run.final_fingerprint(name, card, dict(record.weight_hashes))
        if final is None or final["fingerprint"] != fp:
            return None
        failures.append(final["failed"])
    return failures


def _failed_samples(task_runs: list[TaskRun]) -> tuple[FailedSampleRecord, ...]:
    """The manifest's failed samples: one entry per task, sample and reason, naming the metrics
    whose score of the sample is NaN for that reason."""
    return tuple(
        FailedSampleRecord(
            task=task_run.task,
            sample_id=task_run.samples[pos].sample_id,
            path=path,
            reason=reason,
            metrics=tuple(sorted(set(names))),
        )
        for task_run in task_runs
        for (pos, path, reason), names in sorted(task_run.failed.items())
    )
